#include "imgpipe/job/local_job.hpp"

#include "imgpipe/job/progress.hpp"
#include "imgpipe/transport/local/local_pipeline.hpp"

namespace imgpipe {

void run_local_job(const std::vector<JobInput>& inputs, const JobSettings& settings, const ModelStore& store,
                   const ComputeOptions& compute, JobResults& results) {
  LocalPipeline pipeline(store, compute);
  Progress progress("local", inputs.size(), settings.show_progress);
  const JobRef job{new_job_id(), "", settings.model, "", settings.top_k};
  auto sink = [&](const ImageResult& result, const std::string& version) {
    results.add(result, version);
    progress.update(results.done(), results.failed());
  };
  for_each_batch(
      inputs, job, settings,
      [&](ImageBatch&& batch) {
        for (const ResultBatch& answer : pipeline.run(batch)) {
          for (const auto& result : answer.results) sink(result, answer.job.model_version);
        }
      },
      sink);
  progress.finish(results.done(), results.failed());
}

}  // namespace imgpipe
