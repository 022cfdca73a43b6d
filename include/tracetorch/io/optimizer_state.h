#pragma once
// Optimizer state in PyTorch's own layout, so that an optimizer's state crosses between Python and
// LibTorch in both directions:
//
//   {'state': {0: {'step': tensor(10.), 'exp_avg': ..., 'exp_avg_sq': ...}, 1: {...}},
//    'param_groups': [{'lr': 0.001, 'betas': (0.9, 0.999), 'eps': 1e-08, 'weight_decay': 0,
//                      'amsgrad': False, ..., 'params': [0, 1]}]}
//
// Supported: torch::optim::Adam, AdamW, SGD (with or without momentum) and RMSprop, whose Python
// counterparts keep the same per-parameter state. Parameters are numbered in order across the
// param groups, as Python does; a file's indices are matched to the optimizer's parameters by
// position within each group, so only the group sizes need to agree.
// Hyperparameters (lr, betas, momentum, ...) are loaded too, as Python's load_state_dict does;
// Python-only switches that LibTorch cannot honour (maximize=True) are an error, the others
// (foreach, capturable, differentiable, fused, initial_lr) are ignored with a report warning.
//
// Ownership: the returned dict shares the optimizer's tensors (no copy), like Python's
// state_dict(). Throws: tt::LoadError when the state does not fit the optimizer (group or parameter
// counts, shapes, missing entries; the message names the parameter index, key and both shapes),
// tt::ValueError for an optimizer type that is not supported, tt::FileError for files. A failing
// load changes nothing. Thread safety: do not step the optimizer while loading into it.
#include <torch/torch.h>

#include <string>

#include "tracetorch/core/load_options.h"
#include "tracetorch/core/load_report.h"

namespace tt {

// The optimizer's state as a GenericDict in PyTorch's layout (see above).
c10::IValue optimizer_state_dict(const torch::optim::Optimizer& optimizer);

// Replaces the optimizer's state and hyperparameters by `state` (PyTorch's layout). State tensors
// go to their parameter's device and floating dtype, as in Python; options.map_location() is not
// used here (it applies when reading a file). All checks run before anything changes.
LoadReport load_optimizer_state_dict(torch::optim::Optimizer& optimizer, const c10::IValue& state,
                                     const LoadOptions& options = {});

// File versions: a Python-compatible .pt holding the dict (torch.save(opt.state_dict(), path)).
void save_optimizer_state_dict(const torch::optim::Optimizer& optimizer, const std::string& path);
LoadReport load_optimizer_state_dict(torch::optim::Optimizer& optimizer, const std::string& path,
                                     const LoadOptions& options = {});

}  // namespace tt
