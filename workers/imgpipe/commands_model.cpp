#include <chrono>
#include <iomanip>
#include <iostream>

#include "commands.hpp"
#include "imgpipe/job/batching.hpp"
#include "imgpipe/job/progress.hpp"
#include "imgpipe/models/linear_classifier.hpp"
#include "imgpipe/models/model_store.hpp"
#include "imgpipe/ops/logging.hpp"
#include "imgpipe/training/labelled_dataset.hpp"
#include "imgpipe/training/svm_training.hpp"
#include "imgpipe/transport/local/local_pipeline.hpp"

namespace imgpipe {
namespace fs = std::filesystem;

ComputeOptions compute_options(const ToolOptions& tool, int forward_batch) {
  return compute_options_from(tool.threads, forward_batch, tool.engine, tool.precision);
}

int train_command(const ToolOptions& tool, const TrainOptions& options) {
  Logger log("imgpipe train");
  try {
    const ModelStore store(tool.models);
    if (!is_valid_model_name(options.model))
      throw UsageError("\"" + options.model + "\" is not a valid model name");
    if (options.c_values.empty()) throw UsageError("--c needs at least one value");
    const ModelConfig backbone = store.load(options.backbone);
    const LabelledDataset dataset = load_labelled_folder(options.dataset);
    const auto start = std::chrono::steady_clock::now();

    const ComputeOptions compute = compute_options(tool, options.batch_size);
    configure_compute(compute);
    LocalPipeline pipeline(store, compute);
    JobSettings settings;
    settings.model = options.backbone;
    settings.batch_size = static_cast<std::size_t>(options.batch_size);
    const JobRef job{new_job_id(), "", options.backbone, ""};

    std::map<std::string, std::size_t> label_of;
    for (std::size_t i = 0; i < dataset.inputs.size(); ++i)
      label_of[dataset.inputs[i].image_id] = dataset.labels[i];
    std::vector<std::vector<float>> features;
    std::vector<std::size_t> labels;
    std::size_t failed = 0;
    Progress progress("features", dataset.inputs.size(), !tool.quiet);
    auto report_failure = [&](const ImageResult& error, const std::string&) {
      ++failed;
      log.warn("skipping an image that failed: " + error.error);
    };
    for_each_batch(
        dataset.inputs, job, settings,
        [&](ImageBatch&& batch) {
          std::vector<ImageResult> errors;
          FeatureBatch extracted = pipeline.features(batch, errors);
          for (const auto& error : errors) report_failure(error, "");
          for (auto& feature : extracted.features) {
            labels.push_back(label_of.at(feature.image_id));
            features.push_back(std::move(feature.values));
          }
          progress.update(features.size() + failed, failed);
        },
        report_failure);
    progress.finish(features.size() + failed, failed);
    if (features.empty()) throw std::runtime_error("no training image could be read");

    SvmTrainingOptions svm;
    svm.c_values = options.c_values;
    svm.threads = tool.threads > 0 ? tool.threads : 2;
    auto [classifier, report] = train_linear_classifier(features, labels, dataset.classes.size(), svm);

    // Assemble the new model folder: the backbone file, the classifier, then model.json last. The version
    // there now is kept first (versions/), so batches stamped with it finish on it after its files change.
    const fs::path dir = store.dir_of(options.model);
    store.keep_current(options.model);
    fs::create_directories(dir);
    const fs::path backbone_target = dir / "backbone.pt";
    if (fs::weakly_canonical(backbone.backbone_path()) != fs::weakly_canonical(backbone_target)) {
      fs::copy_file(backbone.backbone_path(), backbone_target, fs::copy_options::overwrite_existing);
    }
    // The engine file of the same network goes along, so the new model runs on the backbone's engine.
    if (backbone.backbone.onnx) {
      const fs::path onnx_target = dir / "backbone.onnx";
      if (fs::weakly_canonical(backbone.onnx_path()) != fs::weakly_canonical(onnx_target)) {
        fs::copy_file(backbone.onnx_path(), onnx_target, fs::copy_options::overwrite_existing);
      }
    }
    classifier->save(dir / "classifier.dat");
    ModelConfig config = backbone;
    config.name = options.model;
    config.description = options.description.empty() ? "linear SVM over " + options.backbone +
                                                           " features, trained on " + options.dataset
                                                     : options.description;
    config.backbone.file = "backbone.pt";
    if (config.backbone.onnx) config.backbone.onnx->file = "backbone.onnx";
    config.classifier = ClassifierSpec{"classifier.dat", sha256_hex_of_file(dir / "classifier.dat"),
                                       backbone.backbone.sha256};
    config.classes = dataset.classes;
    const std::string version = store.save(config);
    store.load(options.model);  // proves what we wrote reads back and verifies

    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::cout << "trained model " << options.model << "@" << version << " in " << dir.string() << "\n"
              << "images: " << features.size() << " used, " << failed
              << " skipped; classes: " << dataset.classes.size() << "\n";
    for (const auto& [c, accuracy] : report.accuracy_by_c) {
      std::cout << "  C=" << c << ": held-out accuracy " << std::fixed << std::setprecision(2)
                << 100.0 * accuracy << "%\n";
    }
    std::cout << "chosen C=" << report.chosen_c << ", " << std::fixed << std::setprecision(1) << seconds
              << " s\n";
    return exit_code::ok;
  } catch (const UsageError& error) {
    log.error(error.what());
    return exit_code::usage;
  } catch (const std::exception& error) {
    log.error(std::string("training failed: ") + error.what());
    return exit_code::failed;
  }
}

int add_backbone_command(const ToolOptions& tool, const AddBackboneOptions& options) {
  Logger log("imgpipe add-backbone");
  try {
    const ModelStore store(tool.models);
    const fs::path dir = store.dir_of(options.name);
    if (!fs::is_regular_file(options.file)) throw UsageError("no TorchScript file at " + options.file);
    store.keep_current(options.name);
    fs::create_directories(dir);
    const fs::path target = dir / "backbone.pt";
    if (fs::weakly_canonical(options.file) != fs::weakly_canonical(target)) {
      fs::copy_file(options.file, target, fs::copy_options::overwrite_existing);
    }
    ModelConfig config;
    config.name = options.name;
    config.description = "backbone imported from " + options.file;
    config.input = {options.width,
                    options.height,
                    options.channels,
                    options.resize == "stretch" ? ResizeMode::stretch : ResizeMode::center_crop,
                    options.interpolation == "area"                 ? Interpolation::area
                    : options.interpolation == "antialiased-linear" ? Interpolation::antialiased_linear
                                                                    : Interpolation::linear,
                    options.mean,
                    options.std,
                    options.crop};
    config.backbone.file = "backbone.pt";
    config.backbone.sha256 = sha256_hex_of_file(target);
    config.backbone.architecture = options.architecture;
    ModelConfig::from_json(
        [&] {  // validates the input spec before running anything
          auto json = config.to_json();
          json["backbone"]["feature_dim"] = 1;
          return json;
        }(),
        config.name);
    // Running one blank image proves the module loads and runs, and tells its feature size.
    const ComputeOptions compute = compute_options(tool, 1);
    configure_compute(compute);
    config.dir = dir;
    config.backbone.feature_dim = Backbone::load(config, compute)->measure_feature_dim();
    const std::string version = store.save(config);
    std::cout << "added backbone " << options.name << "@" << version << ": " << config.backbone.feature_dim
              << " features from " << options.width << "x" << options.height << "x" << options.channels
              << " input\n";
    return exit_code::ok;
  } catch (const UsageError& error) {
    log.error(error.what());
    return exit_code::usage;
  } catch (const std::exception& error) {
    log.error(std::string("cannot add the backbone: ") + error.what());
    return exit_code::failed;
  }
}

int models_command(const ToolOptions& tool, bool check) {
  const ModelStore store(tool.models);
  const auto names = store.names();
  if (names.empty()) std::cout << "no models in " << store.root().string() << "\n";
  const ComputeOptions compute = compute_options(tool, 1);
  if (check) configure_compute(compute);
  bool all_good = true;
  for (const auto& name : names) {
    try {
      const ModelConfig config = store.load(name);
      std::cout << name << "@" << config.version << "  " << config.input.width << "x" << config.input.height
                << "x" << config.input.channels << " -> " << config.backbone.feature_dim << " features -> "
                << (config.classifier ? std::to_string(config.classes.size()) + " classes"
                                      : std::string("(backbone only)"))
                << "  engine " << to_string(config.backbone.engine)
                << (config.backbone.precision == Precision::f32 ? "" : " bf16") << "  " << config.description
                << "\n";
      std::string kept;
      for (const auto& version : store.kept_versions(name)) {
        if (version != config.version) kept += (kept.empty() ? "" : ", ") + version;
      }
      if (!kept.empty()) std::cout << "  earlier versions kept: " << kept << "\n";
      if (check) {
        // Loads the network on the engine it would run on and passes one blank image through it.
        const auto backbone = Backbone::load(config, compute);
        const int features = backbone->measure_feature_dim();
        if (features != config.backbone.feature_dim) {
          throw ModelError("the backbone gives " + std::to_string(features) + " features, model.json says " +
                           std::to_string(config.backbone.feature_dim));
        }
        std::cout << "  check: runs on " << backbone->device() << ", " << features << " features\n";
      }
    } catch (const ModelError& error) {
      all_good = false;
      std::cout << name << "  BROKEN: " << error.what() << "\n";
    }
  }
  return check && !all_good ? exit_code::failed : exit_code::ok;
}

}  // namespace imgpipe
