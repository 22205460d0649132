#include <chrono>
#include <fstream>
#include <iomanip>
#include <iostream>
#include <map>
#include <optional>

#include "imgpipe/broker_job.hpp"
#include "imgpipe/commands.hpp"
#include "imgpipe/dataset.hpp"
#include "imgpipe/job_state.hpp"
#include "imgpipe/local_pipeline.hpp"
#include "imgpipe/logging.hpp"
#include "imgpipe/model_store.hpp"

namespace imgpipe {
namespace {

OutputFormat parse_format(const std::string& format) {
  if (format == "jsonl") return OutputFormat::jsonl;
  if (format == "csv") return OutputFormat::csv;
  throw UsageError("--format must be jsonl or csv, not " + format);
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

// Broker mode: names the job up front, so the user can ask `imgpipe status --job ID` while it runs, and
// keeps its state file current. A state file that cannot be written costs a warning, never the job.
void execute_on_broker(const ToolOptions& tool, const std::vector<JobInput>& inputs,
                       const JobSettings& settings, int idle_timeout_seconds, const std::string& state_dir,
                       int delivery_limit, JobResults& results, const Logger& log) {
  BrokerAddress address;
  try {
    address = BrokerAddress::parse(tool.broker);
  } catch (const std::invalid_argument& error) {
    throw UsageError(std::string("bad broker URL: ") + error.what());
  }
  BrokerJobSettings broker_settings;
  broker_settings.job = settings;
  broker_settings.idle_timeout = std::chrono::seconds(idle_timeout_seconds);
  broker_settings.connection.client_name = "imgpipe-publisher";
  broker_settings.connection.delivery_limit = delivery_limit;
  broker_settings.job_id = new_job_id();
  const std::string& job_id = broker_settings.job_id;
  std::cerr << "job " << job_id << ": " << inputs.size() << " images\n";

  std::optional<JobStateFile> state;
  const auto stop_keeping_state = [&](const std::exception& error) {
    log.warn(std::string("job state not kept, `imgpipe status --job` will not know this job: ") +
             error.what());
    state.reset();
  };
  try {
    const auto dir = resolve_state_dir(state_dir);
    if (dir.empty()) throw std::runtime_error("no --state-dir, IMGPIPE_STATE_DIR, XDG_STATE_HOME or HOME");
    JobState initial;
    initial.job = job_id;
    initial.model = settings.model;
    initial.total = inputs.size();
    initial.result_queue = queues::results_for(job_id);
    state.emplace(dir, std::move(initial));
  } catch (const std::exception& error) {
    stop_keeping_state(error);
  }
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
    run_broker_job(address, inputs, broker_settings, results, log.as_log_fn());
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

// Runs the job in the chosen mode and fills `results`; returns the elapsed seconds.
double execute(const ToolOptions& tool, bool via_broker, const std::vector<JobInput>& inputs,
               const JobSettings& settings, int idle_timeout_seconds, const std::string& state_dir,
               int delivery_limit, JobResults& results, const Logger& log) {
  const auto start = std::chrono::steady_clock::now();
  if (via_broker) {
    execute_on_broker(tool, inputs, settings, idle_timeout_seconds, state_dir, delivery_limit, results, log);
  } else {
    ComputeOptions compute{tool.threads, settings.batch_size > 0 ? static_cast<int>(settings.batch_size) : 32,
                           true};
    configure_compute(compute);
    run_local_job(inputs, settings, ModelStore(tool.models), compute, results);
  }
  return std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
}

void write_output(const std::string& output, OutputFormat format, const std::vector<JobInput>& inputs,
                  const JobResults& results, const std::string& model) {
  if (output.empty() || output == "-") {
    write_results(std::cout, format, inputs, results, model);
    std::cout.flush();
    return;
  }
  std::ofstream out(output, std::ios::trunc);
  if (!out) throw std::runtime_error("cannot write the results file " + output);
  write_results(out, format, inputs, results, model);
  if (!out.flush()) throw std::runtime_error("cannot write the results file " + output);
}

int job_command(const ToolOptions& tool, const JobOptions& job, bool via_broker) {
  Logger log("imgpipe");
  try {
    const OutputFormat format = parse_format(job.format);
    const JobSettings settings = job_settings(tool, job.model, job.batch_size);
    const auto inputs = collect_inputs(job.inputs);
    if (inputs.empty()) throw UsageError("no images found in the given inputs");
    JobResults results(inputs);
    double seconds = 0.0;
    try {
      seconds = execute(tool, via_broker, inputs, settings, job.idle_timeout_seconds, job.state_dir,
                        job.delivery_limit, results, log);
    } catch (const JobInterrupted& interrupted) {
      // Every input still gets its line: a result, or "no result (the job did not finish)".
      write_output(job.output, format, inputs, results, job.model);
      log.error(std::string(interrupted.what()) + "; " + std::to_string(results.done()) + " of " +
                std::to_string(results.total()) + " images had a result, written" +
                (job.output.empty() ? "" : " to " + job.output));
      return exit_code::failed;
    }
    write_output(job.output, format, inputs, results, job.model);
    if (!tool.quiet) {
      std::cerr << results.done() - results.failed() << " classified, " << results.failed() << " failed, "
                << std::fixed << std::setprecision(1) << seconds << " s";
      if (!job.output.empty()) std::cerr << ", results in " << job.output;
      std::cerr << '\n';
    }
    return results.failed() > 0 ? exit_code::some_images_failed : exit_code::ok;
  } catch (const UsageError& error) {
    log.error(error.what());
    return exit_code::usage;
  } catch (const BrokerError& error) {
    log.error(std::string("the job could not run: ") + error.what());
    return exit_code::failed;
  } catch (const std::exception& error) {
    log.error(std::string("the job could not run: ") + error.what());
    return exit_code::failed;
  }
}

}  // namespace

int submit_command(const ToolOptions& tool, const JobOptions& job) {
  return job_command(tool, job, true);
}
int run_command(const ToolOptions& tool, const JobOptions& job) {
  return job_command(tool, job, false);
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
    const double seconds = execute(tool, options.mode == "broker", dataset.inputs, settings, 600, "",
                                   ConnectionOptions{}.delivery_limit, results, log);
    if (!options.output.empty())
      write_output(options.output, OutputFormat::jsonl, dataset.inputs, results, options.model);

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
