// The `imgpipe` tool's subcommands. The main only parses flags; these do the work and return exit codes:
// 0 all images classified, 3 some images failed (each has its error line), 1 the job could not run,
// 2 usage error.
#pragma once

#include <atomic>
#include <cstddef>
#include <string>
#include <vector>

#include "imgpipe/models/backbone.hpp"
#include "imgpipe/report/sort_into.hpp"
#include "imgpipe/storage/s3_config.hpp"

namespace imgpipe {

namespace exit_code {
inline constexpr int ok = 0;
inline constexpr int failed = 1;
inline constexpr int usage = 2;
inline constexpr int some_images_failed = 3;
}  // namespace exit_code

struct ToolOptions {
  std::string broker;
  std::string models;
  int threads = 0;
  std::string engine;     // local work's forward pass: "libtorch" or "openvino"; empty = the model's own
  std::string precision;  // "f32" or "bf16"; empty = the model's own
  bool quiet = false;     // no progress
  S3Config s3{};          // submit, run: where s3:// inputs are listed (and fetched, in local mode)
  const std::atomic<bool>* stop = nullptr;  // SIGINT/SIGTERM: jobs stop and write what they have
};

// The feature engine settings of local work (run, train, eval, add-backbone); forward_batch 0 = the model's
// own.
ComputeOptions compute_options(const ToolOptions& tool, int forward_batch = 0);

struct JobOptions {
  std::vector<std::string> inputs;
  std::string model = "photos";
  std::string output;  // empty = stdout
  std::string format = "jsonl";
  int batch_size = 32;
  int top_k = 1;                           // labels listed per image
  std::size_t max_file_bytes = 64u << 20;  // larger files and objects get an error line, never travel
  int idle_timeout_seconds = 600;
  std::string state_dir;     // submit: where jobs/<id>.json goes; empty = the default (job_state.hpp)
  std::string resume;        // submit: finish this job instead of starting one (inputs must be empty)
  int publish_delay_ms = 0;  // submit, test knob: pause after each published batch
  // submit: x-delivery-limit of the stage queues it declares; must match the workers' (RabbitMQ refuses a
  // queue re-declared with another limit).
  int delivery_limit = 5;
  int quorum_group_size = 0;  // submit: x-quorum-initial-group-size of the stage queues; as the workers'
  int in_flight_images = 0;  // submit: the job's window in images; 0 adapts (in_flight_window.hpp)
  int in_flight_mb = 128;    // submit: the job's window in encoded MiB
  int drain_every_mb = 512;  // submit: MiB published between two moments with nothing in flight
  std::string sort_into;     // run/submit: afterwards, place each classified photo into sort_into/<label>/
};

int submit_command(const ToolOptions& tool, const JobOptions& job);
int run_command(const ToolOptions& tool, const JobOptions& job);

struct StatusOptions {
  std::string management;  // http://user:pass@host:port/; empty = derived from the broker URL
  std::string job;         // also show this job's progress, from its state file
  std::string state_dir;   // empty = the default (job_state.hpp)
  bool json = false;
};
// Stage queues (depth, consumers, rates) from the RabbitMQ management API, and optionally one job.
// Exit 1 when the API cannot be reached or refuses us, or the job's state file is missing.
int status_command(const ToolOptions& tool, const StatusOptions& options);

struct CancelOptions {
  std::string job;
  std::string state_dir;  // empty = the default (job_state.hpp)
};
// `imgpipe cancel JOB`: records the cancel on the broker (the publisher stops, workers drop the job's
// batches, its result queue goes) and in the job's state file when it is in this state folder. Exit 2 for
// a malformed id, a job this host knows finished, or a job neither the broker nor the state folder knows;
// 1 when the broker cannot be reached.
int cancel_command(const ToolOptions& tool, const CancelOptions& options);

struct EvalOptions {
  std::string model = "photos";
  std::string dataset;
  std::string mode = "local";  // or "broker"
  std::string output;          // optional results file
  int batch_size = 32;
};
int eval_command(const ToolOptions& tool, const EvalOptions& options);

struct TrainOptions {
  std::string model;
  std::string backbone;
  std::string dataset;
  std::vector<double> c_values = {1.0, 10.0, 100.0};
  int batch_size = 64;
  std::string description;
};
int train_command(const ToolOptions& tool, const TrainOptions& options);

struct AddBackboneOptions {
  std::string name;
  std::string file;
  int width = 224;
  int height = 224;
  int channels = 3;
  std::string resize = "center-crop";
  std::string interpolation = "linear";
  double crop = 1.0;  // center-crop: the part of the short side kept (torchvision's 224/256 = 0.875)
  std::vector<float> mean = {0.485f, 0.456f, 0.406f};
  std::vector<float> std = {0.229f, 0.224f, 0.225f};
  std::string architecture;
};
int add_backbone_command(const ToolOptions& tool, const AddBackboneOptions& options);
int models_command(const ToolOptions& tool, bool check);

struct ReportCommandOptions {
  std::string results;  // JSON Lines of run/submit/eval
  std::string output;   // empty = the results file with .html
  std::size_t max_per_category = 200;
  int threads = 0;
  bool quiet = false;
};
// One self-contained HTML page of the results. Exit 2 for a missing or malformed results file, 1 when the
// page cannot be written.
int report_command(const ReportCommandOptions& options);

// `imgpipe sort RESULTS DIR`: the classified photos of a results file into DIR/<label>/. Exit 2 for a
// missing or malformed results file, 1 when DIR cannot be made or a photo could not be placed.
int sort_command(const std::string& results, const std::string& dir);
// run/submit --sort-into and sort: places the photos and prints the summary (and each problem) on stderr;
// false when a classified photo could not be placed.
bool place_photos(const std::vector<PhotoToPlace>& photos, const std::string& dir);

int export_fashion_mnist_command(const std::string& out_dir, const std::string& dataset_dir);

}  // namespace imgpipe
