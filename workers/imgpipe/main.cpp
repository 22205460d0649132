// imgpipe: the publisher tool. Submits jobs to the worker cluster, runs them locally, trains and
// evaluates models. Parses flags only; each subcommand is in this folder (commands.hpp), over the library.
#include <CLI/CLI.hpp>

#include <iostream>
#include <map>

#include "commands.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/ops/broker_address.hpp"
#include "imgpipe/ops/secret_url_flags.hpp"
#include "imgpipe/ops/stop_signal.hpp"
#include "imgpipe/storage/s3_flags.hpp"

namespace {

// Each subcommand has its own --broker flag; `broker_flags` keeps them apart so that the one parsed can be
// resolved afterwards (where the password may come from, see secret_url_flags.hpp).
void add_tool_flags(CLI::App& command, imgpipe::ToolOptions& tool,
                    std::map<const CLI::App*, imgpipe::SecretUrlFlags>& broker_flags) {
  auto& flags = broker_flags.try_emplace(&command, imgpipe::broker_url_option()).first->second;
  imgpipe::add_secret_url_flags(
      command, flags,
      std::string("Broker URL, amqp[s]://user@host:port/vhost, or several for a cluster: "
                  "amqp[s]://user@host1:port,host2:port/vhost (default ") + imgpipe::kDefaultBroker + ")");
  command.add_option("--models", tool.models, "Model store folder")
      ->envname("IMGPIPE_MODELS")
      ->capture_default_str();
  command.add_option("--threads", tool.threads, "Compute threads for local work (0 = one per core)")
      ->envname("IMGPIPE_THREADS")
      ->check(CLI::Range(0, 256));
  command
      .add_option("--engine", tool.engine, "Engine of local work's forward pass (default: the model's own)")
      ->envname("IMGPIPE_ENGINE")
      ->check(CLI::IsMember({"libtorch", "openvino"}));
  command
      .add_option(
          "--precision", tool.precision,
          "Arithmetic of local work's forward pass: f32, or bf16 on openvino (default: the model's own)")
      ->envname("IMGPIPE_PRECISION")
      ->check(CLI::IsMember({"f32", "bf16"}));
  command.add_flag("-q,--quiet", tool.quiet, "No progress output");
}

void add_job_flags(CLI::App& command, imgpipe::JobOptions& job, bool inputs_required = true) {
  command.add_option("--model", job.model, "Model name in the store")->capture_default_str();
  command.add_option("-o,--output", job.output, "Results file (default: standard output)");
  command.add_option("--format", job.format, "jsonl or csv")
      ->check(CLI::IsMember({"jsonl", "csv"}))
      ->capture_default_str();
  command
      .add_option("--top-k", job.top_k, "List the K best labels of each image with their scores (\"top\")")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  command.add_option("--batch-size", job.batch_size, "Images per message")
      ->check(CLI::Range(1, 4096))
      ->capture_default_str();
  command.add_option(
      "--sort-into", job.sort_into,
      "Afterwards, hard-link (or copy) each classified photo into DIR/<label>/; originals stay");
  command
      .add_option("--max-file-bytes", job.max_file_bytes,
                  "Largest image file or object accepted; larger ones get an error line")
      ->envname("IMGPIPE_MAX_FILE_BYTES")
      ->check(CLI::Range(std::size_t{1}, std::size_t{512} << 20))
      ->capture_default_str();
  auto* inputs = command.add_option(
      "INPUT", job.inputs,
      "Image files, folders (recursive), s3://bucket/prefix/ (listed), s3://bucket/key, or @list.txt");
  if (inputs_required) inputs->required();
}

}  // namespace

int main(int argc, char** argv) {
  // First, before any thread exists: SIGINT/SIGTERM become a flag that jobs check, so an interrupted job
  // still writes a line for every input instead of dying mid-write.
  const imgpipe::StopSignal stop;
  CLI::App app("imgpipe: sort photos into categories with a RabbitMQ worker cluster, or locally", "imgpipe");
  app.require_subcommand(1);
  imgpipe::ToolOptions tool;
  tool.stop = &stop.flag();
  std::map<const CLI::App*, imgpipe::SecretUrlFlags> broker_flags;
  tool.models = imgpipe::default_model_dir();

  imgpipe::JobOptions submit_job;
  auto* submit = app.add_subcommand("submit", "Classify images through the worker cluster (RabbitMQ)");
  add_tool_flags(*submit, tool, broker_flags);
  add_job_flags(*submit, submit_job, /*inputs_required=*/false);  // not with --resume
  imgpipe::S3Flags submit_s3;
  imgpipe::add_s3_flags(*submit, submit_s3);
  submit
      ->add_option("--idle-timeout", submit_job.idle_timeout_seconds,
                   "Give up when no result arrived for this many seconds")
      ->capture_default_str();
  submit
      ->add_option("--state-dir", submit_job.state_dir,
                   "Where to keep jobs/<id>.json for `imgpipe status --job` (default "
                   "$XDG_STATE_HOME/imgpipe or ~/.local/state/imgpipe)")
      ->envname("IMGPIPE_STATE_DIR");
  submit->add_option("--resume", submit_job.resume,
                     "Finish job JOB whose submit died: publish what was never confirmed, collect the rest "
                     "(same --state-dir; no INPUT)");
  // Test knob, hidden from --help: lets a test kill the publisher while it is still publishing.
  submit->add_option("--test-publish-delay-ms", submit_job.publish_delay_ms)
      ->check(CLI::Range(0, 60000))
      ->group("");
  submit
      ->add_option("--delivery-limit", submit_job.delivery_limit,
                   "x-delivery-limit of the stage queues; the same as the workers' --delivery-limit")
      ->envname("IMGPIPE_DELIVERY_LIMIT")
      ->check(CLI::Range(1, 1000))
      ->capture_default_str();
  submit
      ->add_option("--quorum-group-size", submit_job.quorum_group_size,
                   "x-quorum-initial-group-size of the stage queues (0: the broker's default); the same as "
                   "the workers' --quorum-group-size")
      ->envname("IMGPIPE_QUORUM_GROUP_SIZE")
      ->check(CLI::Range(0, 99))
      ->capture_default_str();

  submit
      ->add_option("--in-flight-images", submit_job.in_flight_images,
                   "Images of the job in the broker at once (published, not yet answered); 0: adapt, from 4 "
                   "batches up to 4096, to keep the workers busy with little queueing (docs/architecture.md)")
      ->envname("IMGPIPE_IN_FLIGHT_IMAGES")
      ->check(CLI::Range(0, 1000000))
      ->capture_default_str();
  submit
      ->add_option("--in-flight-mb", submit_job.in_flight_mb,
                   "Encoded image bytes of the job in the broker at once, in MiB; keep it well below the "
                   "broker's free disk and memory (docs/deploy.md)")
      ->envname("IMGPIPE_IN_FLIGHT_MB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();

  submit
      ->add_option(
          "--drain-every-mb", submit_job.drain_every_mb,
          "After this many MiB published, wait until everything in flight is answered before "
          "publishing more, so the broker can truncate its queue logs (docs/deploy.md#broker-sizing)")
      ->envname("IMGPIPE_DRAIN_EVERY_MB")
      ->check(CLI::Range(1, 1 << 20))
      ->capture_default_str();

  imgpipe::StatusOptions status_options;
  auto* status =
      app.add_subcommand("status", "Queue depths, consumers and rates per stage; a job's progress");
  add_tool_flags(*status, tool, broker_flags);
  imgpipe::SecretUrlFlags management_flags{imgpipe::management_url_option()};
  imgpipe::add_secret_url_flags(*status, management_flags,
                                "RabbitMQ management API, http://user@host:port/ (default: the broker's host "
                                "and credentials, port 15672)");
  status->add_option("--job", status_options.job, "Also show this job's progress (the id submit printed)");
  status
      ->add_option("--state-dir", status_options.state_dir,
                   "Where submit keeps job state (default $XDG_STATE_HOME/imgpipe or ~/.local/state/imgpipe)")
      ->envname("IMGPIPE_STATE_DIR");
  status->add_flag("--json", status_options.json, "Print JSON instead of a table");

  imgpipe::CancelOptions cancel_options;
  auto* cancel = app.add_subcommand(
      "cancel", "Cancel a broker job: its publisher stops, workers drop its queued batches, its results go");
  add_tool_flags(*cancel, tool, broker_flags);
  cancel->add_option("JOB", cancel_options.job, "The job id that submit printed")->required();
  cancel
      ->add_option("--state-dir", cancel_options.state_dir,
                   "Where submit keeps job state (default $XDG_STATE_HOME/imgpipe or ~/.local/state/imgpipe)")
      ->envname("IMGPIPE_STATE_DIR");

  imgpipe::JobOptions run_job;
  auto* run = app.add_subcommand("run", "Classify images in this process, no broker (local mode)");
  add_tool_flags(*run, tool, broker_flags);
  add_job_flags(*run, run_job);
  imgpipe::S3Flags run_s3;
  imgpipe::add_s3_flags(*run, run_s3);

  imgpipe::TrainOptions train_options;
  auto* train =
      app.add_subcommand("train", "Train a linear SVM on a backbone's features of a labelled folder");
  add_tool_flags(*train, tool, broker_flags);
  train->add_option("--model", train_options.model, "Name of the new model")->required();
  train->add_option("--backbone", train_options.backbone, "Model store entry whose backbone to use")
      ->required();
  train->add_option("--c", train_options.c_values, "SVM C values to try (best on a held-out tenth wins)")
      ->capture_default_str();
  train->add_option("--batch-size", train_options.batch_size, "Images per forward pass")
      ->capture_default_str();
  train->add_option("--description", train_options.description, "Free text stored in model.json");
  train->add_option("DATASET", train_options.dataset, "Folder with one sub-folder of images per class")
      ->required();

  imgpipe::EvalOptions eval_options;
  auto* eval =
      app.add_subcommand("eval", "Classify a labelled folder; print accuracy and a confusion matrix");
  add_tool_flags(*eval, tool, broker_flags);
  eval->add_option("--model", eval_options.model, "Model name in the store")->capture_default_str();
  eval->add_option("--mode", eval_options.mode, "local, or broker (through the worker cluster)")
      ->check(CLI::IsMember({"local", "broker"}))
      ->capture_default_str();
  eval->add_option("-o,--output", eval_options.output, "Also write the results (JSON Lines) here");
  eval->add_option("--batch-size", eval_options.batch_size, "Images per message")->capture_default_str();
  eval->add_option("DATASET", eval_options.dataset, "Folder with one sub-folder of images per class")
      ->required();

  imgpipe::AddBackboneOptions backbone_options;
  auto* add_backbone =
      app.add_subcommand("add-backbone", "Put a TorchScript feature extractor into the store");
  add_tool_flags(*add_backbone, tool, broker_flags);
  add_backbone->add_option("--name", backbone_options.name, "Store entry name")->required();
  add_backbone->add_option("--width", backbone_options.width)->capture_default_str();
  add_backbone->add_option("--height", backbone_options.height)->capture_default_str();
  add_backbone->add_option("--channels", backbone_options.channels)
      ->check(CLI::IsMember({1, 3}))
      ->capture_default_str();
  add_backbone->add_option("--resize", backbone_options.resize)
      ->check(CLI::IsMember({"stretch", "center-crop"}))
      ->capture_default_str();
  add_backbone
      ->add_option("--interpolation", backbone_options.interpolation,
                   "area, linear, or antialiased-linear (torchvision's Resize on PIL images)")
      ->check(CLI::IsMember({"area", "linear", "antialiased-linear"}))
      ->capture_default_str();
  add_backbone
      ->add_option(
          "--crop", backbone_options.crop,
          "center-crop: part of the short side kept (0.875 = torchvision's Resize(256)+CenterCrop(224))")
      ->check(CLI::Range(0.01, 1.0))
      ->capture_default_str();
  add_backbone->add_option("--mean", backbone_options.mean, "Per-channel mean of pixel/255")
      ->capture_default_str();
  add_backbone->add_option("--std", backbone_options.std, "Per-channel std of pixel/255")
      ->capture_default_str();
  add_backbone->add_option("--architecture", backbone_options.architecture, "Free text, e.g. resnet50");
  add_backbone->add_option("FILE", backbone_options.file, "TorchScript file (torch.jit.script/trace, saved)")
      ->required();

  auto* models = app.add_subcommand("models", "List the models in the store");
  add_tool_flags(*models, tool, broker_flags);
  bool check_models = false;
  models->add_flag(
      "--check", check_models,
      "Also load each backbone on its engine and run one image through it (exit 1 if any fails)");

  imgpipe::ReportCommandOptions report_options;
  auto* report = app.add_subcommand(
      "report", "Make one self-contained HTML page of a results file: thumbnails by category, errors");
  report->add_option("RESULTS", report_options.results, "JSON Lines written by run, submit or eval -o")
      ->required();
  report->add_option("-o,--output", report_options.output, "The HTML file (default: RESULTS with .html)");
  report
      ->add_option("--max-per-category", report_options.max_per_category,
                   "Thumbnails per category at most (the best-scored); the page says how many were left out")
      ->check(CLI::Range(std::size_t{1}, std::size_t{1000000}))
      ->capture_default_str();
  report->add_option("--threads", report_options.threads, "Thumbnails made in parallel (0 = one per core)")
      ->envname("IMGPIPE_THREADS")
      ->check(CLI::Range(0, 256));
  report->add_flag("-q,--quiet", report_options.quiet, "No summary on standard error");

  std::string sort_results;
  std::string sort_dir;
  auto* sort = app.add_subcommand(
      "sort", "Hard-link (or copy) each classified photo of a results file into DIR/<label>/");
  sort->add_option("RESULTS", sort_results, "JSON Lines written by run, submit or eval -o")->required();
  sort->add_option("DIR", sort_dir, "Folder to sort into (created if missing)")->required();

  std::string export_dir;
  std::string fashion_data = "/usr/share/datasets/fashion-mnist";
  auto* export_fashion = app.add_subcommand(
      "export-fashion-mnist", "Write Debian's Fashion-MNIST as PNGs: DIR/{train,test}/<class>/");
  export_fashion->add_option("--data", fashion_data, "Folder of the IDX .gz files")->capture_default_str();
  export_fashion->add_option("DIR", export_dir, "Output folder")->required();

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& error) {
    const int code = app.exit(error);
    return code == 0 ? imgpipe::exit_code::ok : imgpipe::exit_code::usage;
  }
  try {
    for (const auto* command : app.get_subcommands()) {
      if (const auto flags = broker_flags.find(command); flags != broker_flags.end()) {
        tool.broker = flags->second.resolve(imgpipe::kDefaultBroker);
      }
    }
    if (*status) status_options.management = management_flags.resolve("");
    if (*submit) tool.s3 = submit_s3.resolve();
    if (*run) tool.s3 = run_s3.resolve();
  } catch (const imgpipe::CredentialError& error) {
    std::cerr << "imgpipe: " << error.what() << "\n";
    return imgpipe::exit_code::usage;
  }
  if (*submit) return imgpipe::submit_command(tool, submit_job);
  if (*run) return imgpipe::run_command(tool, run_job);
  if (*status) return imgpipe::status_command(tool, status_options);
  if (*cancel) return imgpipe::cancel_command(tool, cancel_options);
  if (*train) return imgpipe::train_command(tool, train_options);
  if (*eval) return imgpipe::eval_command(tool, eval_options);
  if (*add_backbone) return imgpipe::add_backbone_command(tool, backbone_options);
  if (*models) return imgpipe::models_command(tool, check_models);
  if (*report) return imgpipe::report_command(report_options);
  if (*sort) return imgpipe::sort_command(sort_results, sort_dir);
  if (*export_fashion) return imgpipe::export_fashion_mnist_command(export_dir, fashion_data);
  return imgpipe::exit_code::usage;
}
