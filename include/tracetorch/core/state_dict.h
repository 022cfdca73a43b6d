#pragma once
// Python-ordered state_dicts (parameters and buffers) of any module, and their checked,
// transactional loading, as PyTorch's Module.state_dict() / load_state_dict().
//
// Keys and order are PyTorch's: for each module, its parameters, then its (defined) buffers,
// then its children recursively (`0.weight`, `0.bias`, `1.raw_beta`). Hidden states are not
// here: they are saved and loaded by core/model.h's save_states / load_states.
// Throws: tt::LoadError (keys or shapes do not fit; the message names every offending key and
// both shapes), tt::FileError (the file cannot be read or written). A failing load changes
// nothing. Thread safety: loading writes the module's tensors; do not run the module meanwhile.
#include <torch/torch.h>

#include <string>

#include "tracetorch/core/load_options.h"
#include "tracetorch/core/load_report.h"
#include "tracetorch/io/pt_file.h"

namespace tt {

// The module's parameters and buffers under PyTorch's keys (tensors shared, not copied).
io::TensorDict state_dict(const torch::nn::Module& module);

// Copies values into the module's parameters and buffers (dtype and device converted to theirs,
// as PyTorch's load_state_dict). Uses strict and strip_prefix; map_location applies to reading a
// file. All checks run first: a failing load changes nothing.
LoadReport load_state_dict(torch::nn::Module& module, const io::TensorDict& dict, const LoadOptions& options = {});

// File versions (Python-compatible .pt; saves are atomic).
void save_state_dict(const torch::nn::Module& module, const std::string& path);
LoadReport load_state_dict(torch::nn::Module& module, const std::string& path, const LoadOptions& options = {});

}  // namespace tt
