#pragma once
// Private to src/io: the two halves of load_optimizer_state_dict, so that a checkpoint load can
// check the optimizer's part, then the model's, and only then change either.
#include <torch/torch.h>

#include <memory>
#include <string>
#include <vector>

#include "tracetorch/core/load_report.h"

namespace tt::detail {

// A checked replacement for an optimizer's state and hyperparameters; apply() cannot fail.
class PreparedOptimizerState {
 public:
  struct ParamState {
    at::Tensor param;
    std::unique_ptr<torch::optim::OptimizerParamState> state;
  };

  void apply(torch::optim::Optimizer& optimizer);
  LoadReport report;

  std::vector<std::unique_ptr<torch::optim::OptimizerOptions>> group_options;
  std::vector<ParamState> states;
};

// Checks `value` (PyTorch's optimizer state_dict layout) against `optimizer`; throws tt::LoadError
// (or tt::ValueError for an unsupported optimizer) with messages that start with `what`.
PreparedOptimizerState prepare_optimizer_state(const torch::optim::Optimizer& optimizer, const c10::IValue& value,
                                               const std::string& what);

}  // namespace tt::detail
