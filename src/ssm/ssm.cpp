#include "tracetorch/ssm/ssm.h"

#include <algorithm>

#include "core/text.h"
#include "ssm/equations.h"
#include "ssm/fast_state.h"
#include "tracetorch/core/error.h"

// Every equation below keeps the op order and association of spec section 7 (and therefore of
// the Python library): e.g. ((Abar - 1) / A) * B, not (Abar - 1) * (B / A). Changing either
// changes the last bits of the results.

namespace tt::ssm {

namespace {

using detail::shape_string;

// log(1), log(2), ..., log(d): the diagonal of A is -(1 .. d) at initialisation.
torch::Tensor log_arange(int64_t d_state) { return torch::log(torch::arange(1, d_state + 1, torch::kFloat32)); }

int64_t resolve_dt_rank(int64_t dt_rank, int64_t num_neurons, const std::string& type_name) {
  if (dt_rank == -1) return std::max<int64_t>(1, num_neurons / 16);
  if (dt_rank < 1) throw ValueError(type_name + ": dt_rank must be positive or -1 (automatic), got " + std::to_string(dt_rank));
  return dt_rank;
}

// Options from the short constructor: d_state counts as given only when it is not the default
// (architecture JSON writes given arguments back).
template <typename Options>
Options with_d_state(int64_t num_neurons, int64_t d_state, int64_t default_d_state) {
  Options o(num_neurons);
  if (d_state != default_d_state) o.d_state(d_state);
  return o;
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// equations (ssm/equations.h): shape-generic, so the step and the sequence forwards share them

Discretised s4_discretise(const torch::Tensor& A_log, const torch::Tensor& B, const torch::Tensor& log_dt) {
  const torch::Tensor dt = torch::exp(log_dt).unsqueeze(-1);
  const torch::Tensor A = torch::neg(torch::exp(A_log));
  torch::Tensor A_bar = torch::exp(dt.mul(A));
  torch::Tensor B_bar = A_bar.sub(1).div(A).mul(B);
  return {std::move(A_bar), std::move(B_bar)};
}

Discretised s5_discretise(const torch::Tensor& A_log, const torch::Tensor& log_dt) {
  const torch::Tensor dt = torch::exp(log_dt);
  const torch::Tensor A = torch::neg(torch::exp(A_log));
  torch::Tensor A_bar = torch::exp(dt.mul(A));
  torch::Tensor B_bar = A_bar.sub(1).div(A);
  return {std::move(A_bar), std::move(B_bar)};
}

Selective selective_inputs(const torch::Tensor& u, const torch::Tensor& p, int64_t dt_rank, int64_t d_state,
                           const torch::nn::Linear& dt_proj, const torch::Tensor& A_log) {
  const std::vector<torch::Tensor> parts = p.split_with_sizes({dt_rank, d_state, d_state}, -1);  // dt_raw, B, C
  // softplus with PyTorch's defaults (beta 1, threshold 20), as [.., N, 1].
  const torch::Tensor dt =
      torch::softplus(torch::linear(parts[0], dt_proj->weight, dt_proj->bias), 1, 20).unsqueeze(-1);
  const torch::Tensor A = torch::neg(torch::exp(A_log));
  torch::Tensor A_bar = torch::exp(dt.mul(A));
  const torch::Tensor B_bar = A_bar.sub(1).div(A.add(1e-12)).mul(parts[1].unsqueeze(-2));
  return {std::move(A_bar), B_bar.mul(u.unsqueeze(-1)), parts[2].unsqueeze(-2)};
}

torch::Tensor recurrence_step(const torch::Tensor& state, const torch::Tensor& a, const torch::Tensor& b) {
  return state.mul(a).add(b);
}

torch::Tensor diagonal_readout(const torch::Tensor& state, const torch::Tensor& C, const torch::Tensor& x,
                               const torch::Tensor& D) {
  return state.mul(C).sum(-1).add(x.mul(D));
}

torch::Tensor conv_readout(const torch::Tensor& window, const torch::Tensor& weights, const torch::Tensor& bias) {
  return window.mul(weights).sum(-1).add(bias);
}

// ---------------------------------------------------------------------------------------------
// shared

SSMLayer::SSMLayer(const std::string& type_name, int64_t num_neurons, int64_t d_state, int64_t dim)
    : Layer(type_name, num_neurons, dim), d_state_(d_state) {
  if (d_state < 1) throw ValueError(type_name + ": d_state must be positive, got " + std::to_string(d_state));
}

size_t SSMLayer::register_ssm_state(const std::string& name, int64_t trailing) {
  const size_t index = register_state(name);
  trailing_.resize(index + 1, -1);
  trailing_[index] = trailing;
  return index;
}

std::vector<int64_t> SSMLayer::initial_state_shape(size_t index, const torch::Tensor& x) const {
  std::vector<int64_t> shape = Layer::initial_state_shape(index, x);
  if (index < trailing_.size() && trailing_[index] >= 0) shape.push_back(trailing_[index]);
  return shape;
}

std::optional<std::string> SSMLayer::check_state_shape(size_t index, torch::IntArrayRef sizes) const {
  const int64_t trailing = index < trailing_.size() ? trailing_[index] : -1;
  if (trailing < 0) return Layer::check_state_shape(index, sizes);
  // The state has one more axis than the input: a negative dim counts from before the trailing axis.
  const auto rank = static_cast<int64_t>(sizes.size());
  const int64_t axis = dim() >= 0 ? dim() : dim() - 1 + rank;
  if (rank < 2 || axis < 0 || axis >= rank - 1)
    return "a tensor of shape " + shape_string(sizes) + " has no feature axis " + std::to_string(dim()) +
           " before its trailing axis";
  if (sizes[axis] != num_neurons() || sizes[rank - 1] != trailing)
    return "expected " + std::to_string(num_neurons()) + " entries on the feature axis and " +
           std::to_string(trailing) + " on the last axis, got shape " + shape_string(sizes);
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// S4

S4Impl::S4Impl(int64_t num_neurons, int64_t d_state) : S4Impl(with_d_state<S4Options>(num_neurons, d_state, 64)) {}

S4Impl::S4Impl(S4Options options)
    : Cloneable("ssm.S4", options.num_neurons(), options.d_state(), options.dim()), options_(options) {
  reset();
}

void S4Impl::reset() {
  begin_ssm_reset();
  const int64_t n = num_neurons(), d = d_state_;
  A_log = register_parameter("A_log", torch::empty({n, d}));
  B = register_parameter("B", torch::empty({n, d}));
  C = register_parameter("C", torch::empty({n, d}));
  log_dt = register_parameter("log_dt", torch::empty({n}));
  D = register_parameter("D", torch::empty({n}));
  reset_parameters();
  state_ = register_ssm_state("state", d);
}

void S4Impl::reset_parameters() {
  torch::NoGradGuard no_grad;
  A_log.copy_(log_arange(d_state_).repeat({num_neurons(), 1}));
  B.copy_(torch::randn(B.sizes()));
  C.copy_(torch::randn(C.sizes()));
  log_dt.copy_(torch::randn(log_dt.sizes()));
  D.copy_(torch::randn(D.sizes()));
}

torch::Tensor S4Impl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  if (fast_step_applies(x_in, A_log)) return fast_step(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  const torch::Tensor x = axis.in(x_in);
  const torch::Tensor state = working_state(axis, state_at(state_));

  const Discretised ab = s4_discretise(A_log, B, log_dt);
  torch::Tensor new_state = recurrence_step(state, ab.A_bar, ab.B_bar.mul(x.unsqueeze(-1)));
  torch::Tensor y = diagonal_readout(new_state, C, x, D);

  state_at(state_) = stored_state(axis, new_state);
  return axis.out(y);
}

void S4Impl::pretty_print(std::ostream& stream) const {
  stream << "tt::ssm::S4(num_neurons=" << num_neurons() << ", d_state=" << d_state_;
  if (dim() != -1) stream << ", dim=" << dim();
  stream << ")";
}

// ---------------------------------------------------------------------------------------------
// S5

S5Impl::S5Impl(int64_t num_neurons, int64_t d_state) : S5Impl(with_d_state<S5Options>(num_neurons, d_state, 64)) {}

S5Impl::S5Impl(S5Options options)
    : Cloneable("ssm.S5", options.num_neurons(), options.d_state(), options.dim()), options_(options) {
  reset();
}

void S5Impl::reset() {
  begin_ssm_reset();
  const int64_t n = num_neurons(), d = d_state_;
  A_log = register_parameter("A_log", torch::empty({d}));
  B = register_parameter("B", torch::empty({n, d}));
  C = register_parameter("C", torch::empty({d, n}));
  D = register_parameter("D", torch::empty({n}));
  log_dt = register_parameter("log_dt", torch::empty({1}));
  reset_parameters();
  // One state for all neurons: the feature axis holds d_state entries, no trailing axis.
  global_state_ = register_ssm_state("global_state", -1);
}

std::vector<int64_t> S5Impl::initial_state_shape(size_t /*index*/, const torch::Tensor& x) const {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape[resolve_dim(x.dim())] = d_state_;
  return shape;
}

std::optional<std::string> S5Impl::check_state_shape(size_t /*index*/, torch::IntArrayRef sizes) const {
  const auto rank = static_cast<int64_t>(sizes.size());
  const int64_t axis = dim() < 0 ? dim() + rank : dim();
  if (axis < 0 || axis >= rank) return "a tensor of shape " + shape_string(sizes) + " has no axis " + std::to_string(dim());
  if (sizes[axis] != d_state_)
    return "axis " + std::to_string(dim()) + " must have d_state=" + std::to_string(d_state_) +
           " entries, got shape " + shape_string(sizes);
  return std::nullopt;
}

void S5Impl::reset_parameters() {
  torch::NoGradGuard no_grad;
  A_log.copy_(log_arange(d_state_));
  B.copy_(torch::randn(B.sizes()));
  C.copy_(torch::randn(C.sizes()));
  D.copy_(torch::randn(D.sizes()));
  log_dt.copy_(torch::randn(log_dt.sizes()));
}

torch::Tensor S5Impl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  if (fast_step_applies(x_in, A_log)) return fast_step(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  const torch::Tensor x = axis.in(x_in);
  const torch::Tensor g = axis.in(state_at(global_state_));

  const Discretised ab = s5_discretise(A_log, log_dt);
  torch::Tensor new_g = recurrence_step(g, ab.A_bar, ab.B_bar.mul(torch::matmul(x, B)));
  torch::Tensor y = torch::matmul(new_g, C).add(x.mul(D));

  state_at(global_state_) = axis.out(new_g);
  return axis.out(y);
}

void S5Impl::pretty_print(std::ostream& stream) const {
  stream << "tt::ssm::S5(num_neurons=" << num_neurons() << ", d_state=" << d_state_;
  if (dim() != -1) stream << ", dim=" << dim();
  stream << ")";
}

// ---------------------------------------------------------------------------------------------
// S6

S6Impl::S6Impl(int64_t num_neurons, int64_t d_state) : S6Impl(with_d_state<S6Options>(num_neurons, d_state, 16)) {}

S6Impl::S6Impl(S6Options options)
    : Cloneable("ssm.S6", options.num_neurons(), options.d_state(), options.dim()),
      options_(options),
      dt_rank_(resolve_dt_rank(options.dt_rank(), options.num_neurons(), "ssm.S6")) {
  reset();
}

void S6Impl::reset() {
  begin_ssm_reset();
  const int64_t n = num_neurons(), d = d_state_;
  // Construction draws x_proj.weight, dt_proj.weight, dt_proj.bias, in Python's order.
  x_proj = register_module("x_proj", torch::nn::Linear(torch::nn::LinearOptions(n, dt_rank_ + 2 * d).bias(false)));
  dt_proj = register_module("dt_proj", torch::nn::Linear(dt_rank_, n));
  A_log = register_parameter("A_log", torch::empty({n, d}));
  D = register_parameter("D", torch::empty({n}));
  init_own_parameters();
  state_ = register_ssm_state("state", d);
}

void S6Impl::init_own_parameters() {
  torch::NoGradGuard no_grad;
  dt_proj->bias.fill_(-2.0);
  A_log.copy_(log_arange(d_state_).repeat({num_neurons(), 1}));
  D.fill_(1.0);
}

void S6Impl::reset_parameters() {
  x_proj->reset_parameters();
  dt_proj->reset_parameters();
  init_own_parameters();
}

torch::Tensor S6Impl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  if (fast_step_applies(x_in, A_log)) return fast_step(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  const torch::Tensor x = axis.in(x_in);
  const torch::Tensor state = working_state(axis, state_at(state_));

  const Selective sel = selective_inputs(x, torch::linear(x, x_proj->weight), dt_rank_, d_state_, dt_proj, A_log);
  const torch::Tensor new_state = recurrence_step(state, sel.A_bar, sel.Bx);
  const torch::Tensor y = diagonal_readout(new_state, sel.C, x, D);

  state_at(state_) = stored_state(axis, new_state);
  return axis.out(y);
}

void S6Impl::pretty_print(std::ostream& stream) const {
  stream << "tt::ssm::S6(num_neurons=" << num_neurons() << ", d_state=" << d_state_ << ", dt_rank=" << dt_rank_;
  if (dim() != -1) stream << ", dim=" << dim();
  stream << ")";
}

// ---------------------------------------------------------------------------------------------
// Mamba

MambaImpl::MambaImpl(int64_t num_neurons, int64_t d_state)
    : MambaImpl(with_d_state<MambaOptions>(num_neurons, d_state, 16)) {}

MambaImpl::MambaImpl(MambaOptions options)
    : Cloneable("ssm.Mamba", options.num_neurons(), options.d_state(), options.dim()),
      options_(options),
      dt_rank_(resolve_dt_rank(options.dt_rank(), options.num_neurons(), "ssm.Mamba")) {
  reset();
}

void MambaImpl::reset() {
  begin_ssm_reset();
  const int64_t n = num_neurons(), d = d_state_, k = options_.conv_kernel();
  // Registration (and random draw) order as in Python: in_proj, out_proj, conv, ssm_proj, dt_proj.
  in_proj = register_module("in_proj", torch::nn::Linear(torch::nn::LinearOptions(n, 2 * n).bias(false)));
  out_proj = register_module("out_proj", torch::nn::Linear(torch::nn::LinearOptions(n, n).bias(false)));
  if (has_conv()) {
    conv_weights = register_parameter("conv_weights", torch::empty({n, k}));
    conv_bias = register_parameter("conv_bias", torch::empty({n}));
  }
  ssm_proj = register_module("ssm_proj", torch::nn::Linear(torch::nn::LinearOptions(n, dt_rank_ + 2 * d).bias(false)));
  dt_proj = register_module("dt_proj", torch::nn::Linear(dt_rank_, n));
  A_log = register_parameter("A_log", torch::empty({n, d}));
  D = register_parameter("D", torch::empty({n}));
  init_own_parameters();
  // Python keeps state names in a set; this is its order under PYTHONHASHSEED=0 (file key order).
  ssm_state_ = register_ssm_state("ssm_state", d);
  if (has_conv()) conv_buffer_ = register_ssm_state("conv_buffer", k);
}

void MambaImpl::init_own_parameters() {
  torch::NoGradGuard no_grad;
  if (has_conv()) {
    conv_weights.fill_(1.0 / static_cast<double>(options_.conv_kernel()));
    conv_bias.zero_();
  }
  dt_proj->bias.fill_(-2.0);
  A_log.copy_(log_arange(d_state_).repeat({num_neurons(), 1}));
  D.fill_(1.0);
}

void MambaImpl::reset_parameters() {
  in_proj->reset_parameters();
  out_proj->reset_parameters();
  ssm_proj->reset_parameters();
  dt_proj->reset_parameters();
  init_own_parameters();
}

torch::Tensor MambaImpl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  if (fast_step_applies(x_in, A_log)) return fast_step(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  const torch::Tensor x = axis.in(x_in);
  const torch::Tensor ssm_state = working_state(axis, state_at(ssm_state_));

  const std::vector<torch::Tensor> main_gate = torch::linear(x, in_proj->weight).chunk(2, -1);
  torch::Tensor u = main_gate[0];
  if (has_conv()) {
    // Shift the window left, newest input last; then a depthwise dot product with the kernel.
    const torch::Tensor buffer = working_state(axis, state_at(conv_buffer_));
    torch::Tensor new_buffer = torch::cat({buffer.slice(-1, 1), u.unsqueeze(-1)}, -1);
    u = conv_readout(new_buffer, conv_weights, conv_bias);
    state_at(conv_buffer_) = stored_state(axis, new_buffer);
  }
  u = torch::silu(u);

  const Selective sel = selective_inputs(u, torch::linear(u, ssm_proj->weight), dt_rank_, d_state_, dt_proj, A_log);
  const torch::Tensor new_state = recurrence_step(ssm_state, sel.A_bar, sel.Bx);
  const torch::Tensor y = diagonal_readout(new_state, sel.C, u, D);
  state_at(ssm_state_) = stored_state(axis, new_state);

  torch::Tensor out = torch::linear(y.mul(torch::silu(main_gate[1])), out_proj->weight).add(x);
  return axis.out(out);
}

void MambaImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::ssm::Mamba(num_neurons=" << num_neurons() << ", d_state=" << d_state_;
  if (dim() != -1) stream << ", dim=" << dim();
  stream << ", dt_rank=" << dt_rank_ << ", conv_kernel=" << options_.conv_kernel() << ")";
}

}  // namespace tt::ssm
