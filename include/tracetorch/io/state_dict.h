#pragma once
// Python-ordered state_dicts of any module, and their checked, transactional loading.
//
// Keys and order are PyTorch's: for each module, its parameters, then its (defined) buffers,
// then its children recursively (`0.weight`, `0.bias`, `1.raw_beta`).
#include <torch/torch.h>

#include <optional>
#include <string>

#include "tracetorch/core/load_report.h"
#include "tracetorch/io/pt_file.h"

namespace tt::io {

TensorDict state_dict(const torch::nn::Module& module);

struct StateDictOptions {
  // Reject missing and unexpected keys (listing every one). A size mismatch is always an error.
  bool strict = true;
  // Drop a leading "module." from every key (checkpoints of DataParallel-wrapped models).
  bool strip_module_prefix = false;
};

// Copies values into the module's parameters and buffers (dtype and device converted to theirs,
// as PyTorch's load_state_dict). All checks run first: a failing load changes nothing.
// Throws tt::LoadError whose message names every offending key and both shapes.
LoadReport load_state_dict(torch::nn::Module& module, const TensorDict& dict, const StateDictOptions& options = {});

// File versions (Python-compatible .pt; saves are atomic).
void save_state_dict(const torch::nn::Module& module, const std::string& path);
LoadReport load_state_dict(torch::nn::Module& module, const std::string& path, const StateDictOptions& options = {});

}  // namespace tt::io
