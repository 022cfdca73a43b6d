// Scale, Threshold and Delay (nir/nodes.h), and the shape helpers the NIR layers share.
#include "tracetorch/nir/nodes.h"

#include <cmath>

#include "core/text.h"
#include "nir/params.h"
#include "tracetorch/core/error.h"

namespace tt::nir {

namespace detail {

using tt::detail::shape_string;

int64_t product(const std::vector<int64_t>& shape) {
  int64_t n = 1;
  for (int64_t d : shape) n *= d;
  return n;
}

torch::Tensor broadcast_param(const torch::Tensor& value, const std::vector<int64_t>& shape, torch::Dtype dtype,
                              const std::string& who, const std::string& field) {
  if (!value.defined()) throw ValueError(who + ": parameter '" + field + "' is undefined");
  for (int64_t d : shape)
    if (d <= 0) throw ValueError(who + ": the shape " + shape_string(shape) + " has a non-positive size");
  if (!c10::isFloatingType(dtype)) throw ValueError(who + ": the dtype must be a floating type");
  torch::Tensor v = value.detach().to(torch::kCPU, dtype);
  try {
    return v.expand(shape).clone();
  } catch (const c10::Error&) {
    throw ValueError(who + ": parameter '" + field + "' of shape " + shape_string(v.sizes()) +
                     " does not broadcast to the shape " + shape_string(shape));
  }
}

bool has_trailing_shape(torch::IntArrayRef sizes, const std::vector<int64_t>& shape, size_t extra) {
  const size_t n = shape.size();
  if (sizes.size() <= n + extra) return false;
  const auto start = sizes.end() - static_cast<int64_t>(n + extra);
  return std::equal(shape.begin(), shape.end(), start);
}

void check_trailing_shape(const torch::Tensor& x, const std::vector<int64_t>& shape, const std::string& who) {
  if (!x.defined()) throw ValueError(who + ": the input is an undefined tensor");
  if (!has_trailing_shape(x.sizes(), shape))
    throw ValueError(who + ": expected an input of shape [batch, " + shape_string(shape).substr(1) + ", got " +
                     shape_string(x.sizes()));
}

}  // namespace detail

using detail::broadcast_param;
using detail::check_trailing_shape;
using tt::detail::shape_string;

// ---------------------------------------------------------------------------------------------
// Scale

ScaleImpl::ScaleImpl(ScaleOptions options) : options_(std::move(options)) { reset(); }

void ScaleImpl::reset() { scale = register_buffer("scale", broadcast_param(options_.scale(), options_.shape(), options_.dtype(), "nir.Scale", "scale")); }

torch::Tensor ScaleImpl::forward(const torch::Tensor& x) {
  check_trailing_shape(x, options_.shape(), "nir.Scale");
  return x.mul(scale);
}

void ScaleImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::nir::Scale(shape=" << shape_string(options_.shape()) << ")";
}

// ---------------------------------------------------------------------------------------------
// Threshold

ThresholdImpl::ThresholdImpl(ThresholdOptions options) : options_(std::move(options)) { reset(); }

void ThresholdImpl::reset() {
  threshold = register_buffer("threshold", broadcast_param(options_.threshold(), options_.shape(), options_.dtype(), "nir.Threshold", "threshold"));
}

torch::Tensor ThresholdImpl::forward(const torch::Tensor& x) {
  check_trailing_shape(x, options_.shape(), "nir.Threshold");
  return x.gt(threshold).to(x.scalar_type());
}

void ThresholdImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::nir::Threshold(shape=" << shape_string(options_.shape()) << ")";
}

// ---------------------------------------------------------------------------------------------
// Delay

DelayImpl::DelayImpl(DelayOptions options)
    : Cloneable("nir.Delay", std::max<int64_t>(1, detail::product(options.shape()))), options_(std::move(options)) {
  reset();
}

void DelayImpl::reset() {
  begin_reset();
  if (!(options_.dt() > 0) || !std::isfinite(options_.dt()))
    throw ValueError("nir.Delay: dt must be positive, got " + std::to_string(options_.dt()));
  expect_input_features(-1);
  delay_ = register_buffer("delay", broadcast_param(options_.delay(), options_.shape(), options_.dtype(), "nir.Delay", "delay"));
  if (!delay_.ge(0).all().item<bool>() || !delay_.isfinite().all().item<bool>())
    throw ValueError("nir.Delay: delays must be finite and non-negative");
  max_steps_ = steps().max().item<int64_t>();
  if (max_steps_ > 0) register_state("buffer");
}

torch::Tensor DelayImpl::steps() const {
  return delay_.to(torch::kFloat64).div(options_.dt()).round().to(torch::kLong);
}

std::vector<int64_t> DelayImpl::initial_state_shape(size_t /*index*/, const torch::Tensor& x) const {
  std::vector<int64_t> shape = x.sizes().vec();
  shape.push_back(max_steps_);
  return shape;
}

std::optional<std::string> DelayImpl::check_state_shape(size_t /*index*/, torch::IntArrayRef sizes) const {
  if (detail::has_trailing_shape(sizes, options_.shape(), 1) && sizes.back() == max_steps_) return std::nullopt;
  std::vector<int64_t> want = options_.shape();
  want.push_back(max_steps_);
  return "expected [batch..., " + shape_string(want).substr(1) + ", got " + shape_string(sizes);
}

torch::Tensor DelayImpl::forward(const torch::Tensor& x) {
  check_trailing_shape(x, options_.shape(), "nir.Delay");
  if (max_steps_ == 0) return x;
  ensure_states(x);
  // [.., D + 1]: the last D inputs, then x; a neuron delayed by s steps reads slot D - s.
  const torch::Tensor line = torch::cat({state_at(0), x.unsqueeze(-1)}, -1);
  torch::Tensor index = torch::rsub(steps(), max_steps_).to(x.device()).unsqueeze(-1);
  std::vector<int64_t> sizes = x.sizes().vec();
  sizes.push_back(1);
  const torch::Tensor out = line.gather(-1, index.expand(sizes)).squeeze(-1);
  state_at(0) = line.narrow(-1, 1, max_steps_);
  return out;
}

void DelayImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::nir::Delay(shape=" << shape_string(options_.shape()) << ", steps<=" << max_steps_ << ")";
}

}  // namespace tt::nir
