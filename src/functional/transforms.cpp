#include "tracetorch/functional/transforms.h"

#include <cmath>
#include <sstream>

#include "tracetorch/core/error.h"

namespace tt {

const char* transform_name(Transform transform) {
  switch (transform) {
    case Transform::Identity: return "identity";
    case Transform::Decay: return "decay";
    case Transform::Threshold: return "threshold";
    case Transform::Bias: return "bias";
  }
  return "?";
}

namespace functional {

namespace {

// Throws when some entry of `value` is outside the range `inside` accepts (NaN never is), naming
// the first such entry: "... outside the (0,1) range: got 1.5 at index 2 of [4]".
void check_range(const torch::Tensor& value, const torch::Tensor& inside, const std::string& what) {
  if (inside.all().item<bool>()) return;
  const torch::Tensor flat = inside.reshape({-1}).logical_not();
  const int64_t index = flat.nonzero().min().item<int64_t>();
  const double bad = value.reshape({-1})[index].item<double>();
  std::ostringstream message;
  message << what << ": got " << bad;
  if (value.dim() > 0) message << " at flat index " << index << " of a tensor of shape " << value.sizes();
  throw ValueError(message.str());
}

}  // namespace

torch::Tensor sigmoid_inverse(const torch::Tensor& value) {
  check_range(value, (value > 0).logical_and(value < 1), "Tensor for inverse sigmoid has values outside the (0,1) range");
  return torch::logit(value);
}

torch::Tensor softplus_inverse(const torch::Tensor& value) {
  check_range(value, value > 0, "Tensor for softplus inverse has values outside the (0,inf) range");
  return torch::log(torch::expm1(value));
}

torch::Tensor mamba_scale(const torch::Tensor& value) {
  check_range(value, (value > 0).logical_and(value < 1), "Tensor for mamba scale has values outside the (0,1) range");
  return torch::log(torch::div(torch::neg(torch::log(value)), std::log(2.0)));
}

torch::Tensor activate(Transform transform, const torch::Tensor& raw) {
  switch (transform) {
    case Transform::Identity: return raw;
    case Transform::Decay: return torch::sigmoid(raw);
    case Transform::Threshold: return torch::softplus(raw);  // beta 1, threshold 20, as PyTorch
    case Transform::Bias: return torch::asinh(raw);
  }
  return raw;
}

torch::Tensor to_raw(Transform transform, const torch::Tensor& value) {
  switch (transform) {
    case Transform::Identity: return value;
    case Transform::Decay: return sigmoid_inverse(value);
    case Transform::Threshold: return softplus_inverse(value);
    case Transform::Bias: return torch::sinh(value);
  }
  return value;
}

double halflife_to_decay(double num_steps) { return std::exp(-std::log(2.0) / num_steps); }
double decay_to_halflife(double decay) { return -std::log(2.0) / std::log(decay); }
double timesteps_to_decay(double time) { return 1.0 - 1.0 / time; }
double decay_to_timesteps(double decay) { return 1.0 / (1.0 - decay); }

}  // namespace functional
}  // namespace tt
