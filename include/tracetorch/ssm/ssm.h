#pragma once
// tt::ssm: state-space layers with their states inside (spec section 7).
//
//   tt::ssm::S6 s6(32);                                       // num_neurons (d_state 16)
//   tt::ssm::S4 s4(32, 8);                                    // num_neurons, d_state
//   tt::ssm::Mamba mamba(tt::ssm::MambaOptions(32).d_state(8).conv_kernel(3));
//   for (auto& x_t : steps) y_t = s6(x_t);                    // one timestep per call
//
// Contract:
// - Construction: every layer takes (num_neurons, d_state = its default) or its options struct,
//   whose chainable setters (`.d_state()`, `.dim()`, `.dt_rank()`, `.conv_kernel()`) are the way
//   to set anything else. Option names are Python's keyword arguments.
// - Every layer is a tt::Cloneable: clone() copies parameters and the current states, so the copy
//   continues a stream exactly like the original and independently of it; reset() re-creates and
//   re-initialises everything (reset_parameters() only the parameters).
// - Input and output have `num_neurons` entries on axis `dim` (negative counts from the end);
//   the output has the input's shape.
// - SSM states have the input's shape with `dim` -> num_neurons and a trailing `d_state` axis
//   (Mamba's `conv_buffer`: trailing `conv_kernel` axis). S5's `global_state` is the input's
//   shape with `dim` -> d_state, no extra axis. States are created lazily as zeros with the
//   input's dtype/device and stored in the caller's layout.
// - Working layout (what the equations see): the input features-last; the SSM states with the
//   feature axis moved to -2 ([..., num_neurons, d_state]).
// - Plain parameters (no constrained ones: compile()/decompile() change nothing); names, shapes
//   and state_dict order are Python traceTorch's. Initial values follow Python's draw order
//   from the global generator.
// - Paths (core/layer.h): with autograd on, forward runs the reference ATen equations (bit-parity
//   with Python). Without autograd (NoGradGuard / InferenceMode) on the CPU, a contiguous
//   float32/float64 input with the features last takes the fast step: input-independent
//   constants (S4/S5 discretisation, -exp(A_log)) cached until a parameter changes, GEMV for
//   one-row inputs, one pass over the state, no allocation per step in steady state, within 1e-5
//   relative of the reference. set_exact(true) forces the reference path. Either way a state is
//   rebound, never changed under a tensor the caller still holds, and outputs kept from earlier
//   steps stay valid.
// - forward_sequence(x) takes [T, ...] (each x[t] as forward takes it) and returns [T, ...]: every
//   projection runs once over all T steps, and the linear recurrence state_t = a_t*state_{t-1} +
//   b_t runs as a sequential loop or as a log-depth (Hillis-Steele) scan, chosen by the state's
//   size (see docs/rnn_ssm.md). Outputs, final states and gradients equal T
//   forward() calls within rounding.
// Throws tt::ValueError for invalid options at construction (d_state < 1, dt_rank < 1 other than
// -1), for an input without num_neurons entries on `dim`, and for an input whose batch axes do
// not fit the existing states (call zero_states() before changing the batch size; Python
// broadcasts a batch-1 state, Quirk Q14).
// Thread safety: forward mutates the layer's states; a layer is not thread-safe. Distinct layers
// (or clones) may run on distinct threads.
#include <torch/torch.h>

#include <memory>
#include <optional>
#include <ostream>

#include "tracetorch/core/cloneable.h"
#include "tracetorch/core/layer.h"

namespace tt::ssm {

struct FastState;  // internal: the fast step's buffers and cached constants (src/ssm/fast_state.h)

// Declares an optional integer argument with a default: `.d_state(8)` sets it and marks it as
// given (arch JSON writes given arguments back), `d_state()` reads it, `d_state_given()` tells.
#define TT_SSM_ARG(OPTIONS, NAME, DEFAULT)            \
 public:                                               \
  OPTIONS& NAME(int64_t v) {                           \
    NAME##_ = v;                                       \
    return *this;                                      \
  }                                                    \
  int64_t NAME() const { return NAME##_.value_or(DEFAULT); } \
  bool NAME##_given() const { return NAME##_.has_value(); } \
                                                       \
 private:                                              \
  std::optional<int64_t> NAME##_;

// Python's keyword arguments and defaults: num_neurons, d_state=64, dim=-1.
struct S4Options {
  explicit S4Options(int64_t num_neurons) : num_neurons_(num_neurons) {}
  TORCH_ARG(int64_t, num_neurons);
  TT_SSM_ARG(S4Options, d_state, 64)
  TT_SSM_ARG(S4Options, dim, -1)
};

// num_neurons, d_state=64, dim=-1
struct S5Options {
  explicit S5Options(int64_t num_neurons) : num_neurons_(num_neurons) {}
  TORCH_ARG(int64_t, num_neurons);
  TT_SSM_ARG(S5Options, d_state, 64)
  TT_SSM_ARG(S5Options, dim, -1)
};

// num_neurons, d_state=16, dt_rank=-1, dim=-1; dt_rank -1 means max(1, num_neurons / 16).
struct S6Options {
  explicit S6Options(int64_t num_neurons) : num_neurons_(num_neurons) {}
  TORCH_ARG(int64_t, num_neurons);
  TT_SSM_ARG(S6Options, d_state, 16)
  TT_SSM_ARG(S6Options, dt_rank, -1)
  TT_SSM_ARG(S6Options, dim, -1)
};

// num_neurons, d_state=16, dim=-1, dt_rank=-1, conv_kernel=4; conv_kernel <= 1: no convolution.
struct MambaOptions {
  explicit MambaOptions(int64_t num_neurons) : num_neurons_(num_neurons) {}
  TORCH_ARG(int64_t, num_neurons);
  TT_SSM_ARG(MambaOptions, d_state, 16)
  TT_SSM_ARG(MambaOptions, dim, -1)
  TT_SSM_ARG(MambaOptions, dt_rank, -1)
  TT_SSM_ARG(MambaOptions, conv_kernel, 4)
};
#undef TT_SSM_ARG

// Shared plumbing: the SSM state layout rule, shape checks for load_states.
class SSMLayer : public Layer {
 public:
  int64_t d_state() const { return d_state_; }

 protected:
  SSMLayer(const std::string& type_name, int64_t num_neurons, int64_t d_state, int64_t dim);
  // Registers a state with the SSM layout and the given trailing axis length (-1: none). Also
  // after begin_reset(): indices restart at 0.
  size_t register_ssm_state(const std::string& name, int64_t trailing);
  // A state with a trailing axis in working layout ([..., features, trailing]) and back.
  static torch::Tensor working_state(const FeatureAxis& axis, const torch::Tensor& stored) {
    return axis.moved ? stored.movedim(axis.axis, -2) : stored;
  }
  static torch::Tensor stored_state(const FeatureAxis& axis, const torch::Tensor& working) {
    return axis.moved ? working.movedim(-2, axis.axis) : working;
  }

  // ---- fast step plumbing (ssm_fast.cpp) ----
  // begin_reset() plus fresh fast-step buffers (a clone never shares them).
  void begin_ssm_reset();
  // True when forward may take the fast step for x; `parameter`'s dtype must be x's.
  bool fast_step_applies(const torch::Tensor& x, const torch::Tensor& parameter) const;
  // Where the new value of state `index` goes: the state itself when nobody else holds it, else
  // `spare` (reused when it can be). commit_state then makes it the state.
  torch::Tensor& writable_state(size_t index, torch::Tensor& spare);
  void commit_state(size_t index, torch::Tensor& written);
  // The selective step of S6 and Mamba on rows: u [R, N], p [R, dt_rank + 2d] (dt_raw | B | C),
  // dt [R, N] after softplus; reads `state`, writes `new_state` (may be the same) and y [R, N].
  void selective_fast(const torch::Tensor& state, torch::Tensor& new_state, const torch::Tensor& u,
                      const torch::Tensor& p, const torch::Tensor& dt, int64_t dt_rank, torch::Tensor& y,
                      const torch::Tensor& D);
  // Recomputes -exp(A_log) (and A + 1e-12) when A_log changed.
  void refresh_selective_constants(const torch::Tensor& A_log);
  // Checks a time-major input [T, ...] and creates the states from its first step.
  void begin_sequence(const torch::Tensor& x);

  std::shared_ptr<FastState> fast_;

  std::vector<int64_t> initial_state_shape(size_t index, const torch::Tensor& x) const override;
  std::optional<std::string> check_state_shape(size_t index, torch::IntArrayRef sizes) const override;

  int64_t d_state_;

 private:
  std::vector<int64_t> trailing_;  // per state: trailing axis length, or -1 for a plain state
};

// Diagonal, input-independent: dt = exp(log_dt), A = -exp(A_log), Abar = exp(dt*A),
// Bbar = ((Abar - 1)/A)*B; state <- state*Abar + Bbar*x; y = sum(state*C) + x*D.
class S4Impl : public Cloneable<S4Impl, SSMLayer> {
 public:
  explicit S4Impl(int64_t num_neurons, int64_t d_state = 64);
  explicit S4Impl(S4Options options);

  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  torch::Tensor forward_sequence(const torch::Tensor& x) override;
  // Re-creates the layer: parameters initialised as at construction (Python's draw order), no states.
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  const S4Options& options() const { return options_; }

  torch::Tensor A_log, B, C, log_dt, D;  // [N, d], [N, d], [N, d], [N], [N]

 private:
  torch::Tensor fast_step(const torch::Tensor& x);
  S4Options options_;
  size_t state_;
};
TORCH_MODULE(S4);

// One state of size d_state shared by all neurons: g <- g*Abar + Bbar*(x @ B); y = g @ C + x*D.
class S5Impl : public Cloneable<S5Impl, SSMLayer> {
 public:
  explicit S5Impl(int64_t num_neurons, int64_t d_state = 64);
  explicit S5Impl(S5Options options);

  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  torch::Tensor forward_sequence(const torch::Tensor& x) override;
  // Re-creates the layer: parameters initialised as at construction (Python's draw order), no states.
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  const S5Options& options() const { return options_; }

  torch::Tensor A_log, B, C, D, log_dt;  // [d], [N, d], [d, N], [N], [1]

 protected:
  std::vector<int64_t> initial_state_shape(size_t index, const torch::Tensor& x) const override;
  std::optional<std::string> check_state_shape(size_t index, torch::IntArrayRef sizes) const override;

 private:
  torch::Tensor fast_step(const torch::Tensor& x);
  S5Options options_;
  size_t global_state_;
};
TORCH_MODULE(S5);

// Selective (input-dependent dt, B, C from x_proj / dt_proj).
class S6Impl : public Cloneable<S6Impl, SSMLayer> {
 public:
  explicit S6Impl(int64_t num_neurons, int64_t d_state = 16);
  explicit S6Impl(S6Options options);

  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  torch::Tensor forward_sequence(const torch::Tensor& x) override;
  // Re-creates the layer: parameters initialised as at construction (Python's draw order), no states.
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  const S6Options& options() const { return options_; }
  int64_t dt_rank() const { return dt_rank_; }  // resolved (never -1)

  torch::nn::Linear x_proj{nullptr}, dt_proj{nullptr};
  torch::Tensor A_log, D;  // [N, d], [N]

 private:
  void init_own_parameters();  // dt_proj.bias = -2, A_log, D (no random draws)
  torch::Tensor fast_step(const torch::Tensor& x);

  S6Options options_;
  int64_t dt_rank_;
  size_t state_;
};
TORCH_MODULE(S6);

// Gated block: in_proj -> (causal depthwise conv over the last conv_kernel inputs) -> silu ->
// selective SSM -> * silu(gate) -> out_proj, plus the input (residual).
class MambaImpl : public Cloneable<MambaImpl, SSMLayer> {
 public:
  explicit MambaImpl(int64_t num_neurons, int64_t d_state = 16);
  explicit MambaImpl(MambaOptions options);

  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  torch::Tensor forward_sequence(const torch::Tensor& x) override;
  // Re-creates the layer: parameters initialised as at construction (Python's draw order), no states.
  void reset() override;
  void reset_parameters();
  void pretty_print(std::ostream& stream) const override;
  const MambaOptions& options() const { return options_; }
  int64_t dt_rank() const { return dt_rank_; }  // resolved (never -1)
  bool has_conv() const { return options_.conv_kernel() > 1; }

  torch::nn::Linear in_proj{nullptr}, out_proj{nullptr}, ssm_proj{nullptr}, dt_proj{nullptr};
  torch::Tensor conv_weights, conv_bias;  // [N, K], [N]; undefined without convolution
  torch::Tensor A_log, D;                 // [N, d], [N]

 private:
  void init_own_parameters();  // conv, dt_proj.bias = -2, A_log, D (no random draws)
  torch::Tensor fast_step(const torch::Tensor& x);

  MambaOptions options_;
  int64_t dt_rank_;
  size_t ssm_state_;
  size_t conv_buffer_ = 0;
};
TORCH_MODULE(Mamba);

}  // namespace tt::ssm
