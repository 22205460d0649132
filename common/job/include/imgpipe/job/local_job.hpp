// `imgpipe run`: a whole job in this process (local mode), batch by batch through the local pipeline.
#pragma once

#include <vector>

#include "imgpipe/job/batching.hpp"
#include "imgpipe/job/results.hpp"
#include "imgpipe/models/backbone.hpp"
#include "imgpipe/models/model_store.hpp"

namespace imgpipe {

// Runs `inputs` through every stage and fills `results` with one result per image.
void run_local_job(const std::vector<JobInput>& inputs, const JobSettings& settings, const ModelStore& store,
                   const ComputeOptions& compute, JobResults& results);

}  // namespace imgpipe
