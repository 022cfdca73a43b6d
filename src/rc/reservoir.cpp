#include "tracetorch/rc/reservoir.h"

#include <ATen/Parallel.h>

#include <sstream>

#include "core/text.h"
#include "tracetorch/core/error.h"

namespace tt::rc {

namespace {

using detail::shape_string;

// pre[b, i] = drive[b, i] + sum_k values[k] * h[b, cols[k]] over row i's entries.
template <typename T>
void csr_step(const int64_t* rows, const int32_t* cols, const T* values, const T* drive, const T* h, T* pre,
              int64_t batch, int64_t n) {
  const int64_t nnz = rows[n];
  // Serial below ~32k multiply-adds: thread start-up would cost more than it saves.
  const int64_t per_row = std::max<int64_t>(1, nnz / std::max<int64_t>(1, n)) * batch;
  const int64_t grain = std::max<int64_t>(1, 32768 / per_row);
  at::parallel_for(0, n, grain, [&](int64_t begin, int64_t end) {
    for (int64_t b = 0; b < batch; ++b) {
      const T* hb = h + b * n;
      const T* db = drive + b * n;
      T* pb = pre + b * n;
      for (int64_t i = begin; i < end; ++i) {
        T acc = db[i];
        for (int64_t k = rows[i]; k < rows[i + 1]; ++k) acc += values[k] * hb[cols[k]];
        pb[i] = acc;
      }
    }
  });
}

void activate_out(Activation act, torch::Tensor& out, const torch::Tensor& pre) {
  switch (act) {
    case Activation::Tanh: at::tanh_out(out, pre); break;
    case Activation::Relu: at::clamp_min_out(out, pre, 0); break;
    case Activation::Identity: out.copy_(pre); break;
  }
}

void activate_inplace(Activation act, torch::Tensor& x) {
  switch (act) {
    case Activation::Tanh: x.tanh_(); break;
    case Activation::Relu: x.clamp_min_(0); break;
    case Activation::Identity: break;
  }
}

torch::Tensor activate(Activation act, const torch::Tensor& x) {
  switch (act) {
    case Activation::Tanh: return torch::tanh(x);
    case Activation::Relu: return torch::relu(x);
    case Activation::Identity: return x;
  }
  return x;
}

}  // namespace

Activation activation_from_string(const std::string& name) {
  if (name == "tanh") return Activation::Tanh;
  if (name == "relu") return Activation::Relu;
  if (name == "identity") return Activation::Identity;
  throw ValueError("Unknown activation '" + name + "'. Supported: [tanh, relu, identity]");
}

std::string to_string(Activation activation) {
  switch (activation) {
    case Activation::Tanh: return "tanh";
    case Activation::Relu: return "relu";
    case Activation::Identity: return "identity";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// construction

ReservoirImpl::ReservoirImpl(ReservoirOptions options)
    : Layer("rc.Reservoir", options.reservoir_size(), -1), options_(std::move(options)) {
  expect_input_features(-1);  // forward checks the feedback and driving sizes itself
  if (options_.feedback_size() < 0)
    throw ValueError("rc.Reservoir: feedback_size must be non-negative, got " + std::to_string(options_.feedback_size()));
  if (options_.input_size() && *options_.input_size() < 0)
    throw ValueError("rc.Reservoir: input_size must be non-negative, got " + std::to_string(*options_.input_size()));
  if (!(options_.leak_rate() > 0.0 && options_.leak_rate() <= 1.0))
    throw ValueError("rc.Reservoir: leak_rate must be in (0, 1], got " + std::to_string(options_.leak_rate()));
  if (options_.dtype() != torch::kFloat32 && options_.dtype() != torch::kFloat64)
    throw ValueError("rc.Reservoir: dtype must be float32 or float64");
  state_index_ = register_state("state");
  reset();
}

void ReservoirImpl::reset() {
  const int64_t n = options_.reservoir_size();
  torch::Generator gen = options_.generator().defined() ? options_.generator() : make_generator(options_.seed());
  const torch::Dtype dtype = options_.dtype();
  // Draw order is part of the seed contract: feedback, input, recurrent, bias.
  torch::Tensor fb = make_input({n, options_.feedback_size()}, options_.feedback_init(), gen, dtype);
  torch::Tensor in;
  if (options_.input_size()) in = make_input({n, *options_.input_size()}, options_.input_init(), gen, dtype);
  torch::Tensor hh = make_recurrent(n, options_.topology(), options_.spectral_radius(), gen, dtype);
  torch::Tensor b;
  if (options_.bias()) b = make_input({n}, options_.bias_init(), gen, dtype);

  const bool grad = options_.trainable();
  if (!weight_hh.defined()) {
    // Registration order = torch_rc's state_dict order.
    weight_feedback = register_parameter("weight_feedback", fb, grad);
    if (in.defined()) weight_input = register_parameter("weight_input", in, grad);
    weight_hh = register_parameter("weight_hh", hh, grad);
    if (b.defined()) bias_h = register_parameter("bias_h", b, grad);
  } else {
    torch::NoGradGuard no_grad;
    weight_feedback.copy_(fb);
    if (in.defined()) weight_input.copy_(in);
    weight_hh.copy_(hh);
    if (b.defined()) bias_h.copy_(b);
  }
  csr_source_ = nullptr;
  csr_version_ = -1;
  zero_states();
}

std::vector<int64_t> ReservoirImpl::initial_state_shape(size_t /*index*/, const torch::Tensor& x) const {
  return {x.size(0), num_neurons()};
}

void ReservoirImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::rc::Reservoir(reservoir_size=" << options_.reservoir_size()
         << ", feedback_size=" << options_.feedback_size();
  if (options_.input_size()) stream << ", input_size=" << *options_.input_size();
  stream << ", spectral_radius=";
  if (options_.spectral_radius()) stream << *options_.spectral_radius();
  else stream << "None";
  stream << ", leak_rate=" << options_.leak_rate() << ", activation=" << to_string(options_.activation())
         << ", topology=" << options_.topology().to_string() << ")";
}

// ---------------------------------------------------------------------------------------------
// state API

void ReservoirImpl::reset_state(std::optional<int64_t> batch_size) {
  if (!batch_size) {
    zero_states();
    return;
  }
  if (*batch_size <= 0) throw ValueError("rc.Reservoir: reset_state batch size must be positive");
  state_at(state_index_) = torch::zeros({*batch_size, num_neurons()}, weight_hh.options().requires_grad(false));
}

void ReservoirImpl::set_state(const torch::Tensor& state) {
  if (!state.defined() || state.dim() < 1 || state.size(-1) != num_neurons())
    throw ValueError("rc.Reservoir: State size mismatch. Expected (..., " + std::to_string(num_neurons()) + "), got " +
                     (state.defined() ? shape_string(state.sizes()) : std::string("an undefined tensor")));
  state_at(state_index_) = state.clone();
}

torch::Tensor ReservoirImpl::get_state() const {
  const torch::Tensor& s = state_at(state_index_);
  return s.defined() ? s.clone() : torch::Tensor();
}

// ---------------------------------------------------------------------------------------------
// forward

bool ReservoirImpl::needs_grad(const torch::Tensor& feedback, const torch::Tensor& input) const {
  if (!torch::GradMode::is_enabled()) return false;
  auto grad = [](const torch::Tensor& t) { return t.defined() && t.requires_grad(); };
  return grad(feedback) || grad(input) || grad(state_at(state_index_)) || grad(weight_feedback) ||
         grad(weight_input) || grad(weight_hh) || grad(bias_h);
}

void ReservoirImpl::prepare_state(const torch::Tensor& like) {
  torch::Tensor& s = state_at(state_index_);
  if (!s.defined() || s.dim() != 2 || s.size(0) != like.size(0) || s.device() != like.device()) {
    s = torch::Tensor();
    ensure_states(like);
  } else if (s.scalar_type() != like.scalar_type()) {
    s = s.to(like.scalar_type());
  }
}

RecurrentKernel ReservoirImpl::effective_kernel() const {
  const bool cpu = weight_hh.device().is_cpu();
  switch (options_.kernel()) {
    case RecurrentKernel::Dense: return RecurrentKernel::Dense;
    case RecurrentKernel::Sparse: return cpu ? RecurrentKernel::Sparse : RecurrentKernel::Dense;
    case RecurrentKernel::Auto: break;
  }
  if (!cpu) return RecurrentKernel::Dense;
  const_cast<ReservoirImpl*>(this)->refresh_sparse();
  return density_ <= sparse_density_threshold(num_neurons()) ? RecurrentKernel::Sparse : RecurrentKernel::Dense;
}

// Rebuilds the CSR copy (and the density) when weight_hh is a different tensor or was modified.
void ReservoirImpl::refresh_sparse() {
  const void* source = weight_hh.data_ptr();
  const int64_t version = weight_hh._version();
  if (source == csr_source_ && version == csr_version_) return;
  torch::NoGradGuard no_grad;
  torch::Tensor w = weight_hh.detach().to(torch::kCPU).contiguous();
  const int64_t n = w.size(0);
  torch::Tensor nz = w.nonzero();  // row-major order: sorted by row, then column
  torch::Tensor rows = nz.select(1, 0);
  torch::Tensor cols = nz.select(1, 1);
  csr_values_ = w.index({rows, cols}).contiguous();
  csr_cols_ = cols.to(torch::kInt).contiguous();  // 32-bit: less memory traffic in the hot loop
  csr_rows_ = torch::zeros({n + 1}, torch::kLong);
  if (nz.size(0) > 0) csr_rows_.slice(0, 1).copy_(torch::bincount(rows, {}, n).cumsum(0));
  density_ = n > 0 ? static_cast<double>(nz.size(0)) / static_cast<double>(n * n) : 0.0;
  csr_source_ = source;
  csr_version_ = version;
}

torch::Tensor ReservoirImpl::forward_sequence(const torch::Tensor& feedback) {
  if (!feedback.defined() || feedback.dim() != 3)
    throw ValueError("rc.Reservoir: forward_sequence takes time-major feedback [T, B, F], got shape " +
                     (feedback.defined() ? shape_string(feedback.sizes()) : std::string("undefined")));
  return forward(feedback.transpose(0, 1)).transpose(0, 1);
}

torch::Tensor ReservoirImpl::forward(const torch::Tensor& feedback, const torch::Tensor& input) {
  const int64_t F = options_.feedback_size();
  if (!feedback.defined() || (feedback.dim() != 2 && feedback.dim() != 3))
    throw ValueError("rc.Reservoir: Feedback must be 3D (B, T, F) or 2D (B, F), got shape " +
                     (feedback.defined() ? shape_string(feedback.sizes()) : std::string("undefined")));
  if (feedback.size(-1) != F)
    throw ValueError("rc.Reservoir: Feedback size mismatch. Expected " + std::to_string(F) + ", got " +
                     std::to_string(feedback.size(-1)));
  const bool single = feedback.dim() == 2;
  const auto dtype = weight_hh.scalar_type();
  if (input.defined()) {
    if (!options_.input_size())
      throw ValueError("rc.Reservoir: Reservoir was initialized without input_size, but driving input was provided");
    if (input.dim() != feedback.dim() || input.size(0) != feedback.size(0) || (!single && input.size(1) != feedback.size(1)))
      throw ValueError("rc.Reservoir: Driving input must match feedback dimensions. Feedback: " +
                       shape_string(feedback.sizes()) + ", Driving: " + shape_string(input.sizes()));
    if (input.size(-1) != *options_.input_size())
      throw ValueError("rc.Reservoir: Driving input size mismatch. Expected " + std::to_string(*options_.input_size()) +
                       ", got " + std::to_string(input.size(-1)));
  }
  if (single) {
    // Streaming: one step, the hot path.
    const torch::Tensor x = feedback.to(dtype);
    const torch::Tensor u = input.defined() ? input.to(dtype) : input;
    prepare_state(x);
    if (!needs_grad(x, u)) return step_fast(x, u);
  }
  const torch::Tensor fb = (single ? feedback.unsqueeze(1) : feedback).to(dtype);
  const torch::Tensor in = input.defined() ? (single ? input.unsqueeze(1) : input).to(dtype) : input;
  const int64_t B = fb.size(0), T = fb.size(1), R = num_neurons();
  prepare_state(fb);
  if (T == 0) return torch::empty({B, 0, R}, fb.options());
  const bool grad = needs_grad(fb, in);

  // The non-recurrent terms of every step at once, time-major: drive[t] = W_fb fb_t + W_in u_t + b.
  torch::Tensor fb_tm = fb.transpose(0, 1).reshape({T * B, F});
  torch::Tensor drive = bias_h.defined() ? torch::addmm(bias_h, fb_tm, weight_feedback.t())
                                         : torch::mm(fb_tm, weight_feedback.t());
  if (in.defined()) {
    torch::Tensor in_tm = in.transpose(0, 1).reshape({T * B, in.size(2)});
    drive = grad ? drive + torch::mm(in_tm, weight_input.t()) : drive.addmm_(in_tm, weight_input.t());
  }
  drive = drive.view({T, B, R});

  torch::Tensor states = grad ? run_autograd(drive) : run_fast(drive);
  if (single) return states[0];
  return states.transpose(0, 1).contiguous();
}

// One streaming step without autograd: a handful of in-place ops on the one new tensor, which
// becomes the state and is returned.
torch::Tensor ReservoirImpl::step_fast(const torch::Tensor& fb, const torch::Tensor& in) {
  torch::NoGradGuard no_grad;
  const RecurrentKernel kernel = effective_kernel();
  if (kernel == RecurrentKernel::Sparse) refresh_sparse();
  torch::Tensor& state = state_at(state_index_);
  const torch::Tensor h = state.is_contiguous() ? state : state.contiguous();
  torch::Tensor pre = bias_h.defined() ? torch::addmm(bias_h, fb, weight_feedback.t()) : torch::mm(fb, weight_feedback.t());
  if (in.defined()) pre.addmm_(in, weight_input.t());
  if (kernel == RecurrentKernel::Sparse) {
    // In place is safe: row i reads pre[b, i] before writing it, and h is another tensor.
    AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "rc_csr_step", [&] {
      csr_step<scalar_t>(csr_rows_.data_ptr<int64_t>(), csr_cols_.data_ptr<int32_t>(), csr_values_.data_ptr<scalar_t>(),
                         pre.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(), pre.data_ptr<scalar_t>(), pre.size(0),
                         pre.size(1));
    });
  } else {
    pre.addmm_(h, weight_hh.t());
  }
  activate_inplace(options_.activation(), pre);
  const double a = options_.leak_rate();
  if (a != 1.0) pre.lerp_(h, 1.0 - a);  // a act(pre) + (1 - a) h
  state = pre;
  return pre;
}

torch::Tensor ReservoirImpl::run_fast(const torch::Tensor& drive) {
  torch::NoGradGuard no_grad;
  const int64_t T = drive.size(0), B = drive.size(1), R = drive.size(2);
  const RecurrentKernel kernel = effective_kernel();
  if (kernel == RecurrentKernel::Sparse) refresh_sparse();
  const Activation act = options_.activation();
  const double a = options_.leak_rate();

  torch::Tensor out = torch::empty({T, B, R}, drive.options());
  if (!pre_buffer_.defined() || !pre_buffer_.sizes().equals({B, R}) || pre_buffer_.options().dtype() != drive.dtype() ||
      pre_buffer_.device() != drive.device())
    pre_buffer_ = torch::empty({B, R}, drive.options());
  torch::Tensor& pre = pre_buffer_;
  torch::Tensor h = state_at(state_index_).detach().contiguous();
  const torch::Tensor w_t = weight_hh.detach().t();

  for (int64_t t = 0; t < T; ++t) {
    const torch::Tensor d = drive[t];
    if (kernel == RecurrentKernel::Sparse) {
      AT_DISPATCH_FLOATING_TYPES(pre.scalar_type(), "rc_csr_step", [&] {
        csr_step<scalar_t>(csr_rows_.data_ptr<int64_t>(), csr_cols_.data_ptr<int32_t>(),
                           csr_values_.data_ptr<scalar_t>(), d.data_ptr<scalar_t>(), h.data_ptr<scalar_t>(),
                           pre.data_ptr<scalar_t>(), B, R);
      });
    } else {
      at::addmm_out(pre, d, h, w_t);
    }
    torch::Tensor o = out[t];
    if (a == 1.0) {
      activate_out(act, o, pre);
    } else {
      activate_inplace(act, pre);
      at::lerp_out(o, h, pre, a);  // h + a (act(pre) - h)
    }
    h = o;
  }
  state_at(state_index_) = h.clone();
  return out;
}

torch::Tensor ReservoirImpl::run_autograd(const torch::Tensor& drive) {
  const int64_t T = drive.size(0);
  const double a = options_.leak_rate();
  torch::Tensor h = state_at(state_index_);
  std::vector<torch::Tensor> outs;
  outs.reserve(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    torch::Tensor pre = drive[t] + torch::mm(h, weight_hh.t());
    torch::Tensor next = activate(options_.activation(), pre);
    h = a == 1.0 ? next : (1.0 - a) * h + a * next;
    outs.push_back(h);
  }
  state_at(state_index_) = h;
  return torch::stack(outs, 0);
}

}  // namespace tt::rc
