#pragma once
// Private to src/io: the checkpoint dict without the file, for one-file models.
#include <torch/torch.h>

#include <string>

#include "tracetorch/core/load_options.h"
#include "tracetorch/io/checkpoint.h"

namespace tt::detail {

// The dict save_checkpoint writes (optimizer may be null); `path` names it in errors.
c10::IValue checkpoint_value(const torch::nn::Module& module, const torch::optim::Optimizer* optimizer,
                             const Checkpoint& checkpoint, const std::string& path);

// load_checkpoint on a file already read into `file`.
Checkpoint load_checkpoint_value(torch::nn::Module& module, torch::optim::Optimizer* optimizer, const c10::IValue& file,
                                 const std::string& path, const LoadOptions& options);

}  // namespace tt::detail
