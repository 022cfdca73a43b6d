#pragma once
// Helpers shared by the NIR layers (private): per-sample shapes and parameters broadcast to them.
#include <torch/torch.h>

#include <string>
#include <vector>

namespace tt::nir::detail {

// `value` as a CPU tensor of `shape` and `dtype` (a scalar or any broadcastable tensor); throws
// tt::ValueError naming `who` and `field` when it does not broadcast.
torch::Tensor broadcast_param(const torch::Tensor& value, const std::vector<int64_t>& shape, torch::Dtype dtype,
                              const std::string& who, const std::string& field);

// Throws tt::ValueError unless x is [batch..., shape...] (at least one batch axis).
void check_trailing_shape(const torch::Tensor& x, const std::vector<int64_t>& shape, const std::string& who);

// True when `sizes` is [batch..., shape..., extra...].
bool has_trailing_shape(torch::IntArrayRef sizes, const std::vector<int64_t>& shape, size_t extra = 0);

int64_t product(const std::vector<int64_t>& shape);

}  // namespace tt::nir::detail
