#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <span>
#include <thread>

#include "commands.hpp"
#include "imgpipe/job/broker_job.hpp"
#include "imgpipe/job/input_file.hpp"
#include "imgpipe/job/journal.hpp"
#include "imgpipe/job/local_job.hpp"
#include "imgpipe/job/progress.hpp"
#include "imgpipe/job/state.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/ops/logging.hpp"
#include "imgpipe/storage/s3_client.hpp"
#include "imgpipe/training/labelled_dataset.hpp"
#include "imgpipe/transport/amqp/broker_session.hpp"

namespace imgpipe {
namespace {

OutputFormat parse_format(const std::string& format) {
  if (format == "jsonl") return OutputFormat::jsonl;
  if (format == "csv") return OutputFormat::csv;
  throw UsageError("--format must be jsonl or csv, not " + format);
}

// The object store of s3:// inputs. Making one contacts nobody: only a malformed endpoint fails here.
std::shared_ptr<const S3Client> object_store(const ToolOptions& tool) {
  try {
    return std::make_shared<S3Client>(tool.s3);
  } catch (const std::invalid_argument& error) {
    throw UsageError(std::string("--s3-endpoint: ") + error.what());
  }
}

JobSettings job_settings(const ToolOptions& tool, const std::string& model, int batch_size) {
  if (!is_valid_model_name(model)) throw UsageError("\"" + model + "\" is not a valid model name");
  JobSettings settings;
  settings.model = model;
  settings.batch_size = static_cast<std::size_t>(std::max(1, batch_size));
  settings.show_progress = !tool.quiet;
  settings.stop = tool.stop;
  return settings;
}

BrokerList parse_broker(const ToolOptions& tool) {
  try {
    return BrokerList::parse(tool.broker);
  } catch (const std::invalid_argument& error) {
    throw UsageError(std::string("bad broker URL: ") + error.what());
  }
}

// The stage queues' delivery limit is part of their declaration: it must be the workers' (see
// JobOptions::delivery_limit).
PublisherOptions publisher_connection(const JobOptions& job) {
  PublisherOptions options;
  options.client_name = "imgpipe-publisher";
  options.delivery_limit = job.delivery_limit;
  options.quorum_group_size = job.quorum_group_size;
  return options;
}

// One broker job, new or resumed: keeps its state file current so the user can ask `imgpipe status --job
// ID` while it runs. A state file that cannot be written costs a warning, never the job. `journal` (may be
// null) records progress for --resume. `on_results` (may be empty) is called whenever results came in (a
// streamed job writes its lines there); `max_held_results` bounds what such a job holds (broker_job.hpp).
void run_on_broker(const ToolOptions& tool, InputSource& to_publish, const JobSettings& settings,
                   const std::string& job_id, const JobOptions& options, const std::filesystem::path& dir,
                   JobJournal* journal, JobResults& results, const Logger& log,
                   const std::function<void(JobResults&)>& on_results = {},
                   std::size_t max_held_results = 0) {
  BrokerJobSettings broker_settings;
  broker_settings.job = settings;
  broker_settings.idle_timeout = std::chrono::seconds(options.idle_timeout_seconds);
  broker_settings.connection = publisher_connection(options);
  broker_settings.job_id = job_id;
  broker_settings.window.fixed_images = static_cast<std::size_t>(options.in_flight_images);
  broker_settings.window.max_bytes = static_cast<std::size_t>(options.in_flight_mb) << 20;
  broker_settings.window.drain_every_bytes = static_cast<std::size_t>(options.drain_every_mb) << 20;
  broker_settings.max_held_results = max_held_results;
  broker_settings.journal = journal;
  if (options.publish_delay_ms > 0) {
    broker_settings.after_publish = [delay = std::chrono::milliseconds(options.publish_delay_ms)] {
      std::this_thread::sleep_for(delay);
    };
  }

  std::optional<JobStateFile> state;
  const auto stop_keeping_state = [&](const std::exception& error) {
    log.warn(std::string("job state not kept, `imgpipe status --job` will not know this job: ") +
             error.what());
    state.reset();
  };
  try {
    if (dir.empty()) throw std::runtime_error("no --state-dir, IMGPIPE_STATE_DIR, XDG_STATE_HOME or HOME");
    JobState initial;
    initial.job = job_id;
    initial.model = settings.model;
    initial.total = results.total();
    initial.done = results.done();
    initial.failed = results.failed();
    initial.result_queue = queues::results_for(job_id);
    initial.batch_size = settings.batch_size;
    state.emplace(dir, std::move(initial));
  } catch (const std::exception& error) {
    stop_keeping_state(error);
  }
  broker_settings.on_cancelled = [&] {
    if (state) state->mark_cancelled();
  };
  broker_settings.on_progress = [&](JobResults& progress) {
    if (on_results) on_results(progress);
    if (!state) return;
    try {
      state->update(progress);
    } catch (const std::exception& error) {
      stop_keeping_state(error);
    }
  };

  const auto finish_state = [&](const std::string& error) {
    if (!state) return;
    try {
      state->finish(results, error);
    } catch (const std::exception& write_error) {
      stop_keeping_state(write_error);
    }
  };
  try {
    run_broker_job(parse_broker(tool), to_publish, broker_settings, results, log.as_log_fn());
  } catch (const std::exception& error) {
    finish_state(error.what());
    throw;
  }
  finish_state("");
  if (results.duplicates() > 0) {
    log.info("job " + job_id + ": ignored " + std::to_string(results.duplicates()) +
             " duplicate results (redeliveries)");
  }
}

// A job's inputs file, written as the inputs named by `arguments` are found: beside its record in the state
// folder, where `--resume` finds it; else (no state folder, or one that cannot be written) a temporary file,
// and the job cannot be resumed. Throws UsageError when there are no inputs.
struct WrittenInputs {
  std::filesystem::path file;
  std::size_t count = 0;
  std::vector<std::filesystem::path> not_images;
  bool resumable = false;
  std::shared_ptr<TemporaryFile> temporary;  // set when the file is not the state folder's
};

WrittenInputs write_inputs(const std::vector<std::string>& arguments, const S3Client* objects,
                           const std::filesystem::path& dir, const std::string& job_id, const Logger& log) {
  WrittenInputs written;
  std::optional<InputFileWriter> writer;
  if (!dir.empty()) {
    try {
      writer.emplace(job_inputs_file(dir, job_id));
      written.resumable = true;
    } catch (const std::exception& error) {
      log.warn("job " + job_id + " cannot be resumed if this process dies: " + error.what());
    }
  } else {
    log.warn("job " + job_id +
             " cannot be resumed if this process dies: no --state-dir, IMGPIPE_STATE_DIR, XDG_STATE_HOME or "
             "HOME");
  }
  if (!writer) {
    written.temporary = std::make_shared<TemporaryFile>(std::filesystem::temp_directory_path() /
                                                        ("imgpipe-" + job_id + ".inputs"));
    writer.emplace(written.temporary->path());
  }
  written.file = writer->path();
  try {
    written.not_images = stream_inputs(arguments, objects, [&](JobInput&& input) { writer->add(input); });
    writer->close();
  } catch (...) {
    if (written.resumable) remove_job_record(dir, job_id);
    throw;
  }
  written.count = writer->count();
  if (written.count == 0) {
    if (written.resumable) remove_job_record(dir, job_id);
    throw UsageError(
        "no images found in the given inputs" +
        (written.not_images.empty() ? "" : " (" + describe_not_images(written.not_images) + ")"));
  }
  return written;
}

// A new broker job for `imgpipe eval`: its inputs are in memory already; recorded like a submitted job.
void execute_on_broker(const ToolOptions& tool, const std::vector<JobInput>& inputs,
                       const JobSettings& settings, const JobOptions& options, JobResults& results,
                       const Logger& log) {
  parse_broker(tool);  // a usage error before the job gets a record
  const std::string job_id = new_job_id();
  std::cerr << "job " << job_id << ": " << inputs.size() << " images\n";
  const auto dir = resolve_state_dir(options.state_dir);
  std::optional<JobJournal> journal;
  if (!dir.empty()) {
    try {
      InputFileWriter writer(job_inputs_file(dir, job_id));
      for (const auto& input : inputs) writer.add(input);
      writer.close();
      write_job_record(dir, {job_id, settings, std::filesystem::current_path(), inputs.size()});
      journal.emplace(dir, job_id);
    } catch (const std::exception& error) {
      log.warn(std::string("job " + job_id + " cannot be resumed if this process dies: ") + error.what());
    }
  }
  VectorInputSource source(inputs);
  run_on_broker(tool, source, settings, job_id, options, dir, journal ? &*journal : nullptr, results, log);
  if (journal) remove_job_record(dir, job_id);
}

// Runs the job in the chosen mode and fills `results`; returns the elapsed seconds.
double execute(const ToolOptions& tool, bool via_broker, const std::vector<JobInput>& inputs,
               const JobSettings& settings, const JobOptions& options, JobResults& results,
               const Logger& log) {
  const auto start = std::chrono::steady_clock::now();
  if (via_broker) {
    execute_on_broker(tool, inputs, settings, options, results, log);
  } else {
    const ComputeOptions compute = compute_options(tool);
    configure_compute(compute);
    run_local_job(inputs, settings, ModelStore(tool.models), compute, results);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

// stdout, or the file named by -o, opened when the first line is written (a job that never ran leaves an
// existing file as it was).
class OutputTarget {
 public:
  explicit OutputTarget(std::string output) : output_(std::move(output)) {}
  std::ostream& stream() {
    if (output_.empty() || output_ == "-") return std::cout;
    if (!file_.is_open()) {
      file_.open(output_, std::ios::trunc);
      if (!file_) throw std::runtime_error("cannot write the results file " + output_);
    }
    return file_;
  }
  void close() {
    std::ostream& out = stream();
    if (!out.flush()) throw std::runtime_error("cannot write the results file " + output_);
  }

 private:
  std::string output_;
  std::ofstream file_;
};

void write_output(const std::string& output, OutputFormat format, const std::vector<JobInput>& inputs,
                  const JobResults& results, const std::string& model,
                  std::span<const std::string> truth = {}) {
  OutputTarget target(output);
  write_results(target.stream(), format, inputs, results, model, truth);
  target.close();
}

// A job ready to run: how to fill its results and write one line per input.
struct PreparedJob {
  std::vector<std::filesystem::path> not_images;  // left out of walked folders by their extension
  std::unique_ptr<JobResults> results;
  std::function<void(JobResults&)> run;
  // Writes every line not written yet: all of them for a job held in memory, the rest for a streamed one.
  std::function<void(JobResults&)> write_lines;
  // After a run that failed: the same for a job whose lines were already going out (a streamed job that
  // started), nothing otherwise.
  std::function<void(JobResults&)> write_lines_after_failure;
  // --sort-into: each input's file and its label, once the lines are written.
  std::function<std::vector<PhotoToPlace>()> photos;
};

PhotoToPlace photo_of(const JobInput& input, const ImageResult* result, const std::filesystem::path& dir) {
  const auto source = input.path.is_absolute() || dir.empty() ? input.path : dir / input.path;
  return {source, result && result->ok() ? std::optional(result->label) : std::nullopt};
}

// Prepares and runs a job, writes one line per input, and picks the exit code.
int job_command(const ToolOptions& tool, const JobOptions& job,
                const std::function<PreparedJob(const Logger&)>& prepare) {
  Logger log("imgpipe");
  try {
    parse_format(job.format);
    PreparedJob prepared = prepare(log);
    JobResults& results = *prepared.results;
    const auto start = std::chrono::steady_clock::now();
    try {
      prepared.run(results);
    } catch (const JobInterrupted& interrupted) {
      // Every input still gets its line: a result, or "no result (the job did not finish)".
      prepared.write_lines(results);
      log.error(std::string(interrupted.what()) + "; " + std::to_string(results.done()) + " of " +
                std::to_string(results.total()) + " images had a result, written" +
                (job.output.empty() ? "" : " to " + job.output));
      if (!prepared.not_images.empty()) std::cerr << describe_not_images(prepared.not_images) << '\n';
      return exit_code::failed;
    } catch (const std::exception&) {
      if (prepared.write_lines_after_failure) prepared.write_lines_after_failure(results);
      throw;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    prepared.write_lines(results);
    if (!tool.quiet) {
      std::cerr << results.done() - results.failed() << " classified, " << results.failed() << " failed, "
                << std::fixed << std::setprecision(1) << seconds << " s";
      if (!job.output.empty()) std::cerr << ", results in " << job.output;
      std::cerr << '\n';
    }
    // Even with --quiet: these files have no result line, so this is the only place they are mentioned.
    if (!prepared.not_images.empty()) std::cerr << describe_not_images(prepared.not_images) << '\n';
    // After the results are safe in their file: a photo that cannot be placed costs the exit status only.
    if (!job.sort_into.empty() && !place_photos(prepared.photos(), job.sort_into)) return exit_code::failed;
    return results.failed() > 0 ? exit_code::some_images_failed : exit_code::ok;
  } catch (const UsageError& error) {
    log.error(error.what());
    return exit_code::usage;
  } catch (const std::exception& error) {
    log.error(std::string("the job could not run: ") + error.what());
    return exit_code::failed;
  }
}

// `imgpipe run`: every input in memory, every line written at the end.
PreparedJob prepare_local_job(const ToolOptions& tool, const JobOptions& job) {
  JobSettings settings = job_settings(tool, job.model, job.batch_size);
  settings.top_k = job.top_k;
  settings.max_file_bytes = job.max_file_bytes;
  settings.objects = object_store(tool);
  CollectedInputs collected = gather_inputs(job.inputs, settings.objects.get());
  if (collected.images.empty()) {
    throw UsageError(
        "no images found in the given inputs" +
        (collected.not_images.empty() ? "" : " (" + describe_not_images(collected.not_images) + ")"));
  }
  PreparedJob prepared;
  prepared.not_images = std::move(collected.not_images);
  auto inputs = std::make_shared<const std::vector<JobInput>>(std::move(collected.images));
  prepared.results = std::make_unique<JobResults>(*inputs);
  prepared.run = [&tool, &job, settings, inputs](JobResults& results) {
    Logger log("imgpipe");
    execute(tool, false, *inputs, settings, job, results, log);
  };
  const OutputFormat format = parse_format(job.format);
  JobResults* results = prepared.results.get();
  prepared.write_lines = [&job, format, inputs](JobResults& done) {
    write_output(job.output, format, *inputs, done, job.model);
  };
  prepared.photos = [inputs, results] {
    std::vector<PhotoToPlace> photos;
    for (const auto& input : *inputs) {
      if (!input.object) photos.push_back(photo_of(input, results->find(input.image_id), {}));
    }
    return photos;
  };
  return prepared;
}

// A broker job streamed from its inputs file: the publisher holds what is in flight and the results
// between the oldest unanswered image and the newest answer, never the whole job (broker_job.hpp).
struct StreamedJob {
  std::string job_id;
  std::filesystem::path dir;          // the state folder; empty when there is none
  std::filesystem::path inputs_file;  // one line per input, paths as named
  std::filesystem::path working_dir;  // relative paths in it are relative to this
  bool resumable = false;             // the record and journal are in `dir`
  std::shared_ptr<TemporaryFile> temporary;
  OutputTarget output;
  OutputFormat format;
  std::string model;
  bool collect_photos = false;
  std::vector<PhotoToPlace> photos;
  std::unique_ptr<ResultLineWriter> writer;  // made once the job runs

  StreamedJob(const JobOptions& job)
      : output(job.output), format(parse_format(job.format)), model(job.model) {}

  ResultLineWriter& lines() {
    if (!writer) {
      ResultLineWriter::LineFn on_line;
      if (collect_photos) {
        on_line = [this](const JobInput& input, const ImageResult* result) {
          if (!input.object) photos.push_back(photo_of(input, result, working_dir));
        };
      }
      writer = std::make_unique<ResultLineWriter>(
          output.stream(), format, model, std::make_unique<InputFileReader>(inputs_file), std::move(on_line));
    }
    return *writer;
  }
};

// Results a streamed job holds at most before it pauses publishing (broker_job.hpp): about 10 MB.
constexpr std::size_t kMaxHeldResults = 65536;

// Fills `prepared`'s run and output for a streamed job; `publish` (may be empty) says which unanswered inputs
// to publish (a resumed job skips those published and awaited).
void stream_job(PreparedJob& prepared, const std::shared_ptr<StreamedJob>& streamed, const ToolOptions& tool,
                const JobOptions& job, const JobSettings& settings,
                std::function<bool(const JobInput&)> publish) {
  prepared.run = [&tool, &job, settings, streamed, publish](JobResults& results) {
    Logger log("imgpipe");
    std::optional<JobJournal> journal;
    if (streamed->resumable) journal.emplace(streamed->dir, streamed->job_id);
    InputFileReader readable(streamed->inputs_file, streamed->working_dir);
    FilteredInputSource to_publish(readable, [&](const JobInput& input) {
      return !results.answered(input.image_id) && (!publish || publish(input));
    });
    // The output is opened at the first result (or first publishing round): a job that cannot reach the
    // broker writes no line.
    run_on_broker(
        tool, to_publish, settings, streamed->job_id, job, streamed->dir, journal ? &*journal : nullptr,
        results, log, [&](JobResults& progress) { streamed->lines().write_ready(progress); },
        kMaxHeldResults);
    streamed->lines().finish(results);
    streamed->output.close();
    if (streamed->resumable) remove_job_record(streamed->dir, streamed->job_id);
  };
  prepared.write_lines = [streamed](JobResults& results) {
    streamed->lines().finish(results);
    streamed->output.close();
  };
  prepared.write_lines_after_failure = [streamed](JobResults& results) {
    if (!streamed->writer) return;  // the job never started: no line went out
    streamed->writer->finish(results);
    streamed->output.close();
  };
  prepared.photos = [streamed] { return streamed->photos; };
}

// `imgpipe submit INPUT...`: the inputs are written to the job's inputs file as they are found (a manifest
// of millions of lines is never held), recorded with the job's settings before anything is published, so
// that `imgpipe submit --resume ID` can finish it if this process dies.
PreparedJob prepare_submitted_job(const ToolOptions& tool, const JobOptions& job, const Logger& log) {
  JobSettings settings = job_settings(tool, job.model, job.batch_size);
  settings.top_k = job.top_k;
  settings.max_file_bytes = job.max_file_bytes;
  settings.objects = object_store(tool);
  parse_broker(tool);  // a usage error before the job gets a record
  auto streamed = std::make_shared<StreamedJob>(job);
  streamed->job_id = new_job_id();
  streamed->dir = resolve_state_dir(job.state_dir);
  streamed->working_dir = std::filesystem::current_path();
  streamed->collect_photos = !job.sort_into.empty();
  WrittenInputs written =
      write_inputs(job.inputs, settings.objects.get(), streamed->dir, streamed->job_id, log);
  streamed->inputs_file = written.file;
  streamed->temporary = written.temporary;
  streamed->resumable = written.resumable;
  if (streamed->resumable) {
    try {
      write_job_record(streamed->dir, {streamed->job_id, settings, streamed->working_dir, written.count});
    } catch (const std::exception& error) {
      log.warn("job " + streamed->job_id + " cannot be resumed if this process dies: " + error.what());
      streamed->resumable = false;
    }
  }
  std::cerr << "job " << streamed->job_id << ": " << written.count << " images\n";
  PreparedJob prepared;
  prepared.not_images = std::move(written.not_images);
  prepared.results = std::make_unique<JobResults>(JobResults::indexed(written.count));
  stream_job(prepared, streamed, tool, job, settings, {});
  return prepared;
}

// `imgpipe submit --resume ID`: the job as recorded, its answers so far from the journal; publishes again
// only what the broker never confirmed and collects the rest from the job's (durable) result queue.
PreparedJob prepare_resumed_job(const ToolOptions& tool, const JobOptions& job, const Logger& log) {
  const std::string& job_id = job.resume;
  if (!job.inputs.empty()) throw UsageError("--resume takes no INPUT: the job's inputs are in its record");
  if (!is_valid_job_id(job_id)) throw UsageError("'" + job_id + "' is not a job id");
  const auto dir = resolve_state_dir(job.state_dir);
  if (dir.empty())
    throw UsageError("no --state-dir, IMGPIPE_STATE_DIR, XDG_STATE_HOME or HOME to find job " + job_id);
  JobState state;
  try {
    state = JobState::read(dir, job_id);
  } catch (const std::exception& error) {
    throw UsageError("unknown job " + job_id + ": " + error.what());
  }
  const std::string phase = state.phase();
  if (phase == "finished") {
    throw UsageError("job " + job_id + " already finished (" + std::to_string(state.done) + " images, " +
                     std::to_string(state.failed) + " failed): nothing to resume");
  }
  if (phase == "cancelled") {
    throw UsageError("job " + job_id + " was cancelled (imgpipe cancel): nothing to resume");
  }
  if (phase == "running") {
    throw UsageError("job " + job_id + " is still running (pid " + std::to_string(state.pid) + " on " +
                     (state.host.empty() ? std::string("an unknown host") : state.host) +
                     "): stop it before resuming it");
  }
  for (const auto& file : {job_record_file(dir, job_id), job_inputs_file(dir, job_id)}) {
    if (!std::filesystem::exists(file)) {
      throw UsageError("job " + job_id + " cannot be resumed: " + file.string() +
                       " is missing (it could not be written when the job was submitted)");
    }
  }
  const JobRecord record = read_job_record(dir, job_id);
  JournalReplay replay = JobJournal::replay(dir, job_id);

  PreparedJob prepared;
  prepared.results = std::make_unique<JobResults>(JobResults::indexed(record.input_count));
  for (const auto& [result, version] : replay.results) prepared.results->add(result, version);
  replay.results.clear();
  // Published and unanswered: their results are awaited from the job's result queue, not published again.
  auto awaited_ids = std::make_shared<std::set<std::string>>();
  for (const auto& id : replay.published) {
    if (!prepared.results->answered(id)) awaited_ids->insert(id);
  }
  const std::size_t awaited = awaited_ids->size();
  const std::size_t to_publish = record.input_count - prepared.results->done() - awaited;

  const BrokerList address = parse_broker(tool);
  const std::string queue = queues::results_for(job_id);
  if (awaited > 0) {
    // Declaring the queue again would create it empty and wait for results nobody will send.
    try {
      BrokerSession(address, publisher_connection(job)).message_count(queue);
    } catch (const BrokerRefused& error) {
      throw BrokerError("job " + job_id + " cannot be resumed: its result queue " + queue +
                        " is gone (result queues expire 24 h after their last consumer left, or it was "
                        "deleted), so the results of " +
                        std::to_string(awaited) +
                        " published images are lost; submit those images again as a new job (" +
                        error.what() + ")");
    }
  }
  log.info("resuming job " + job_id + ": " + std::to_string(prepared.results->done()) + " of " +
           std::to_string(record.input_count) + " images answered before, " + std::to_string(awaited) +
           " published and awaited, " + std::to_string(to_publish) + " to publish");

  JobSettings settings = record.settings;
  settings.show_progress = !tool.quiet;
  settings.stop = tool.stop;
  settings.objects = object_store(tool);
  auto streamed = std::make_shared<StreamedJob>(job);
  streamed->job_id = job_id;
  streamed->dir = dir;
  streamed->inputs_file = job_inputs_file(dir, job_id);
  streamed->working_dir = record.working_dir;
  streamed->resumable = true;
  streamed->collect_photos = !job.sort_into.empty();
  stream_job(prepared, streamed, tool, job, settings,
             [awaited_ids](const JobInput& input) { return awaited_ids->count(input.image_id) == 0; });
  return prepared;
}

}  // namespace

int submit_command(const ToolOptions& tool, const JobOptions& job) {
  if (!job.resume.empty())
    return job_command(tool, job, [&](const Logger& log) { return prepare_resumed_job(tool, job, log); });
  if (job.inputs.empty()) {
    Logger("imgpipe").error("submit needs INPUT (image files, folders or @list.txt), or --resume JOB");
    return exit_code::usage;
  }
  return job_command(tool, job, [&](const Logger& log) { return prepare_submitted_job(tool, job, log); });
}
int run_command(const ToolOptions& tool, const JobOptions& job) {
  return job_command(tool, job, [&](const Logger&) { return prepare_local_job(tool, job); });
}

int eval_command(const ToolOptions& tool, const EvalOptions& options) {
  Logger log("imgpipe");
  try {
    if (options.mode != "local" && options.mode != "broker")
      throw UsageError("--mode must be local or broker");
    const JobSettings settings = job_settings(tool, options.model, options.batch_size);
    const ModelConfig config = ModelStore(tool.models).load(options.model);
    const LabelledDataset dataset = load_labelled_folder(options.dataset);
    JobResults results(dataset.inputs);
    const JobOptions job;  // the default state folder and idle timeout
    const double seconds =
        execute(tool, options.mode == "broker", dataset.inputs, settings, job, results, log);
    if (!options.output.empty()) {
      // Each line carries its true class, so that `imgpipe report` can draw the confusion matrix.
      std::vector<std::string> truth;
      for (const auto label : dataset.labels) truth.push_back(dataset.classes[label]);
      write_output(options.output, OutputFormat::jsonl, dataset.inputs, results, options.model, truth);
    }

    // Rows: the dataset's classes. Columns: the model's classes, then errors.
    std::map<std::string, std::size_t> column_of;
    for (std::size_t i = 0; i < config.classes.size(); ++i) column_of[config.classes[i]] = i;
    const std::size_t error_column = config.classes.size();
    std::vector<std::vector<std::size_t>> confusion(dataset.classes.size(),
                                                    std::vector<std::size_t>(config.classes.size() + 1, 0));
    std::size_t correct = 0;
    for (std::size_t i = 0; i < dataset.inputs.size(); ++i) {
      const ImageResult* result = results.find(dataset.inputs[i].image_id);
      const bool ok = result && result->ok();
      const std::size_t column =
          ok && column_of.count(result->label) ? column_of[result->label] : error_column;
      ++confusion[dataset.labels[i]][column];
      if (ok && result->label == dataset.classes[dataset.labels[i]]) ++correct;
    }
    const double accuracy = static_cast<double>(correct) / static_cast<double>(dataset.inputs.size());
    std::cout << "model " << options.model << "@" << config.version << " on " << options.dataset << " ("
              << options.mode << " mode)\n";
    std::cout << "images: " << dataset.inputs.size() << "  correct: " << correct
              << "  errors: " << results.failed() << "\naccuracy: " << std::fixed << std::setprecision(2)
              << 100.0 * accuracy << "%\n";
    std::cout << "throughput: " << std::setprecision(1)
              << static_cast<double>(dataset.inputs.size()) / seconds << " images/s (" << seconds << " s)\n";
    std::cout << "confusion matrix (rows: true class, columns: predicted)\n";
    std::size_t name_width = 6;
    for (const auto& name : dataset.classes) name_width = std::max(name_width, name.size());
    std::cout << std::setw(static_cast<int>(name_width)) << "" << ' ';
    for (std::size_t c = 0; c <= error_column; ++c)
      std::cout << std::setw(6) << (c == error_column ? "error" : std::to_string(c));
    std::cout << '\n';
    for (std::size_t row = 0; row < dataset.classes.size(); ++row) {
      std::cout << std::setw(static_cast<int>(name_width)) << dataset.classes[row] << ' ';
      for (std::size_t count : confusion[row]) std::cout << std::setw(6) << count;
      std::cout << '\n';
    }
    std::cout << "columns: ";
    for (std::size_t c = 0; c < config.classes.size(); ++c) std::cout << c << '=' << config.classes[c] << ' ';
    std::cout << '\n';
    if (!options.output.empty()) std::cout << "results: " << options.output << '\n';
    return exit_code::ok;
  } catch (const UsageError& error) {
    log.error(error.what());
    return exit_code::usage;
  } catch (const std::exception& error) {
    log.error(std::string("evaluation could not run: ") + error.what());
    return exit_code::failed;
  }
}

}  // namespace imgpipe
