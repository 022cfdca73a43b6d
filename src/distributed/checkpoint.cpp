#include "tracetorch/distributed/checkpoint.h"

#include <exception>

#include "tracetorch/core/state_dict.h"

namespace tt::distributed {

namespace {

// All ranks learn how many of them failed (a float sum: every backend reduces floats).
int64_t failures(ProcessGroup& group, bool failed) {
  torch::Tensor count = torch::full({1}, failed ? 1.0 : 0.0, torch::TensorOptions().dtype(torch::kFloat32).device(group.options().device()));
  group.all_reduce(count);
  return static_cast<int64_t>(count.item<double>());
}

}  // namespace

void save_state_dict(const torch::nn::Module& module, const std::string& path, ProcessGroup& group) {
  std::exception_ptr error;
  if (group.is_main()) {
    try {
      tt::save_state_dict(module, path);
    } catch (...) {
      error = std::current_exception();
    }
  }
  if (failures(group, static_cast<bool>(error)) == 0) return;
  if (error) std::rethrow_exception(error);
  throw DistributedError("tt::distributed::save_state_dict: rank 0 could not write " + path);
}

LoadReport load_state_dict(torch::nn::Module& module, const std::string& path, ProcessGroup& group,
                           const LoadOptions& options) {
  std::exception_ptr error;
  LoadReport report;
  try {
    report = tt::load_state_dict(module, path, options);
  } catch (...) {
    error = std::current_exception();
  }
  const int64_t failed = failures(group, static_cast<bool>(error));
  if (failed == 0) return report;
  if (error) std::rethrow_exception(error);
  throw DistributedError("tt::distributed::load_state_dict: " + std::to_string(failed) + " of " +
                         std::to_string(group.world_size()) + " ranks could not load " + path);
}

}  // namespace tt::distributed
