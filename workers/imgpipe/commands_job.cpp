#include <chrono>
#include <filesystem>
#include <fstream>
#include <functional>
#include <iomanip>
#include <iostream>
#include <map>
#include <memory>
#include <optional>
#include <span>
#include <thread>

#include "commands.hpp"
#include "imgpipe/job/broker_job.hpp"
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
// null) records progress for --resume; the job's record and journal are removed once it finished.
void run_on_broker(const ToolOptions& tool, const std::vector<JobInput>& to_publish,
                   const JobSettings& settings, const std::string& job_id, const JobOptions& options,
                   const std::filesystem::path& dir, JobJournal* journal, JobResults& results,
                   const Logger& log) {
  BrokerJobSettings broker_settings;
  broker_settings.job = settings;
  broker_settings.idle_timeout = std::chrono::seconds(options.idle_timeout_seconds);
  broker_settings.connection = publisher_connection(options);
  broker_settings.job_id = job_id;
  broker_settings.window.fixed_images = static_cast<std::size_t>(options.in_flight_images);
  broker_settings.window.max_bytes = static_cast<std::size_t>(options.in_flight_mb) << 20;
  broker_settings.window.drain_every_bytes = static_cast<std::size_t>(options.drain_every_mb) << 20;
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
  broker_settings.on_progress = [&](const JobResults& progress) {
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
  if (journal != nullptr) remove_job_record(dir, job_id);
  if (results.duplicates() > 0) {
    log.info("job " + job_id + ": ignored " + std::to_string(results.duplicates()) +
             " duplicate results (redeliveries)");
  }
}

// A new broker job: named up front, and recorded (inputs, settings) with its journal started before
// anything is published, so that `imgpipe submit --resume ID` can finish it if this process dies.
void execute_on_broker(const ToolOptions& tool, const std::vector<JobInput>& inputs,
                       const JobSettings& settings, const JobOptions& options, JobResults& results,
                       const Logger& log) {
  const BrokerList address = parse_broker(tool);  // a usage error before the job gets a record
  const std::string job_id = new_job_id();
  std::cerr << "job " << job_id << ": " << inputs.size() << " images\n";
  const auto dir = resolve_state_dir(options.state_dir);
  std::optional<JobJournal> journal;
  if (!dir.empty()) {
    try {
      write_job_record(dir, {job_id, settings, std::filesystem::current_path(), inputs});
      journal.emplace(dir, job_id);
    } catch (const std::exception& error) {
      log.warn(std::string("job " + job_id + " cannot be resumed if this process dies: ") + error.what());
    }
  }
  run_on_broker(tool, inputs, settings, job_id, options, dir, journal ? &*journal : nullptr, results, log);
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

void write_output(const std::string& output, OutputFormat format, const std::vector<JobInput>& inputs,
                  const JobResults& results, const std::string& model,
                  std::span<const std::string> truth = {}) {
  if (output.empty() || output == "-") {
    write_results(std::cout, format, inputs, results, model, truth);
    std::cout.flush();
    return;
  }
  std::ofstream out(output, std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write the results file " + output);
  write_results(out, format, inputs, results, model, truth);
  if (!out.flush()) throw std::runtime_error("cannot write the results file " + output);
}

// A job ready to run: the inputs that get one output line each, and how to fill their results.
struct PreparedJob {
  std::vector<JobInput> inputs;                   // paths as the user named them
  std::vector<std::filesystem::path> not_images;  // left out of walked folders by their extension
  std::string model;
  std::unique_ptr<JobResults> results;
  std::function<void(JobResults&)> run;
  std::filesystem::path working_dir;  // relative input paths are relative to this; empty = the current one
};

// --sort-into: each classified input's file; failed ones are counted, not placed.
std::vector<PhotoToPlace> photos_of(const PreparedJob& job) {
  std::vector<PhotoToPlace> photos;
  for (const auto& input : job.inputs) {
    if (input.object) continue;  // an object in a bucket has no file here to place
    const ImageResult* result = job.results->find(input.image_id);
    const auto source =
        input.path.is_absolute() || job.working_dir.empty() ? input.path : job.working_dir / input.path;
    photos.push_back({source, result && result->ok() ? std::optional(result->label) : std::nullopt});
  }
  return photos;
}

// Prepares and runs a job, writes one line per input, and picks the exit code.
int job_command(const ToolOptions& tool, const JobOptions& job,
                const std::function<PreparedJob(const Logger&)>& prepare) {
  Logger log("imgpipe");
  try {
    const OutputFormat format = parse_format(job.format);
    PreparedJob prepared = prepare(log);
    const auto& inputs = prepared.inputs;
    JobResults& results = *prepared.results;
    const auto start = std::chrono::steady_clock::now();
    try {
      prepared.run(results);
    } catch (const JobInterrupted& interrupted) {
      // Every input still gets its line: a result, or "no result (the job did not finish)".
      write_output(job.output, format, inputs, results, prepared.model);
      log.error(std::string(interrupted.what()) + "; " + std::to_string(results.done()) + " of " +
                std::to_string(results.total()) + " images had a result, written" +
                (job.output.empty() ? "" : " to " + job.output));
      if (!prepared.not_images.empty()) std::cerr << describe_not_images(prepared.not_images) << '\n';
      return exit_code::failed;
    }
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    write_output(job.output, format, inputs, results, prepared.model);
    if (!tool.quiet) {
      std::cerr << results.done() - results.failed() << " classified, " << results.failed() << " failed, "
                << std::fixed << std::setprecision(1) << seconds << " s";
      if (!job.output.empty()) std::cerr << ", results in " << job.output;
      std::cerr << '\n';
    }
    // Even with --quiet: these files have no result line, so this is the only place they are mentioned.
    if (!prepared.not_images.empty()) std::cerr << describe_not_images(prepared.not_images) << '\n';
    // After the results are safe in their file: a photo that cannot be placed costs the exit status only.
    if (!job.sort_into.empty() && !place_photos(photos_of(prepared), job.sort_into)) return exit_code::failed;
    return results.failed() > 0 ? exit_code::some_images_failed : exit_code::ok;
  } catch (const UsageError& error) {
    log.error(error.what());
    return exit_code::usage;
  } catch (const std::exception& error) {
    log.error(std::string("the job could not run: ") + error.what());
    return exit_code::failed;
  }
}

PreparedJob prepare_new_job(const ToolOptions& tool, const JobOptions& job, bool via_broker) {
  PreparedJob prepared;
  JobSettings settings = job_settings(tool, job.model, job.batch_size);
  settings.top_k = job.top_k;
  settings.max_file_bytes = job.max_file_bytes;
  settings.objects = object_store(tool);
  CollectedInputs collected = gather_inputs(job.inputs, settings.objects.get());
  prepared.inputs = std::move(collected.images);
  prepared.not_images = std::move(collected.not_images);
  if (prepared.inputs.empty()) {
    throw UsageError(
        "no images found in the given inputs" +
        (prepared.not_images.empty() ? "" : " (" + describe_not_images(prepared.not_images) + ")"));
  }
  prepared.model = job.model;
  prepared.results = std::make_unique<JobResults>(prepared.inputs);
  prepared.run = [&tool, &job, settings, via_broker, inputs = prepared.inputs](JobResults& results) {
    Logger log("imgpipe");
    execute(tool, via_broker, inputs, settings, job, results, log);
  };
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
  if (!std::filesystem::exists(job_record_file(dir, job_id))) {
    throw UsageError("job " + job_id + " cannot be resumed: " + job_record_file(dir, job_id).string() +
                     " is missing (it could not be written when the job was submitted)");
  }
  const JobRecord record = read_job_record(dir, job_id);
  const JournalReplay replay = JobJournal::replay(dir, job_id);

  PreparedJob prepared;
  prepared.inputs = record.inputs;
  prepared.working_dir = record.working_dir;
  prepared.model = record.settings.model;
  prepared.results = std::make_unique<JobResults>(record.inputs);
  for (const auto& [result, version] : replay.results) prepared.results->add(result, version);
  std::vector<JobInput> to_publish;
  std::size_t awaited = 0;
  for (const auto& input : record.readable_inputs()) {
    if (prepared.results->find(input.image_id) != nullptr) continue;
    if (replay.published.count(input.image_id) > 0) {
      ++awaited;
    } else {
      to_publish.push_back(input);
    }
  }

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
           std::to_string(record.inputs.size()) + " images answered before, " + std::to_string(awaited) +
           " published and awaited, " + std::to_string(to_publish.size()) + " to publish");

  JobSettings settings = record.settings;
  settings.show_progress = !tool.quiet;
  settings.stop = tool.stop;
  settings.objects = object_store(tool);
  prepared.run = [&tool, &job, settings, dir, job_id, to_publish](JobResults& results) {
    Logger run_log("imgpipe");
    JobJournal journal(dir, job_id);
    run_on_broker(tool, to_publish, settings, job_id, job, dir, &journal, results, run_log);
  };
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
  return job_command(tool, job, [&](const Logger&) { return prepare_new_job(tool, job, true); });
}
int run_command(const ToolOptions& tool, const JobOptions& job) {
  return job_command(tool, job, [&](const Logger&) { return prepare_new_job(tool, job, false); });
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
