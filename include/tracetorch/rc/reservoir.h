#pragma once
// tt::rc::Reservoir: the echo state network reservoir, a stateful layer (the C++ twin of
// torch_rc's ReservoirLayer).
//
// Contract:
// - Per step, with feedback fb_t [batch, feedback_size], optional driving input u_t
//   [batch, input_size] and state h [batch, reservoir_size]:
//       pre = W_fb fb_t (+ W_in u_t) + W_hh h + b
//       h  <- (1 - a) h + a act(pre)          (plain replacement h <- act(pre) when a = 1)
//   and the step's output is the new h. act is tanh, relu or identity.
// - forward(feedback [, input]) takes a whole sequence [batch, time, features] (batch first, as
//   torch_rc) and returns every state [batch, time, reservoir_size]; or one step [batch, features]
//   and returns [batch, reservoir_size] (without autograd this tensor IS the new state: read it,
//   do not modify it in place).
// - The state persists across calls. It is created as zeros on the first call, and re-created
//   (zeros) when the batch size or device of the input differs from the stored state's
//   (torch_rc's rule). reset_state() forgets it; reset_state(batch) sets zeros now.
//   As a tt::Layer it is the layer state "state", so tt::zero_states / save_states / load_states
//   manage it in any module tree.
// - Parameters carry torch_rc's names, in its order: weight_feedback [R, F], weight_input
//   [R, input_size] (only when input_size is set; torch_rc's premade models set 0, which gives a
//   [R, 0] tensor), weight_hh [R, R], bias_h [R] (only with bias). They are frozen
//   (requires_grad = false) unless `trainable`.
// - Hot loop: the input and feedback terms of a whole sequence are one matrix product; the
//   recurrent term is a dense matrix product, or a CSR sparse product of weight_hh when the
//   matrix is sparse enough for that to be faster (RecurrentKernel::Auto; chosen by
//   bench/bench_reservoir.cpp, see docs/reservoir.md). Results agree to rounding. The sparse
//   copy is rebuilt whenever weight_hh changes (load_state_dict, in-place edits).
//   With autograd active (trainable weights or inputs requiring grad) the plain differentiable
//   path is used.
#include <torch/torch.h>

#include <cstdint>
#include <optional>
#include <string>

#include "tracetorch/core/layer.h"
#include "tracetorch/rc/init.h"

namespace tt::rc {

enum class Activation { Tanh, Relu, Identity };
Activation activation_from_string(const std::string& name);  // "tanh", "relu", "identity"
std::string to_string(Activation activation);

enum class RecurrentKernel { Auto, Dense, Sparse };

struct ReservoirOptions {
  ReservoirOptions(int64_t reservoir_size, int64_t feedback_size)
      : reservoir_size_(reservoir_size), feedback_size_(feedback_size) {}

  TORCH_ARG(int64_t, reservoir_size);
  TORCH_ARG(int64_t, feedback_size);
  // Driving input width; nullopt = no driving input (and no weight_input parameter).
  TORCH_ARG(std::optional<int64_t>, input_size) = std::nullopt;
  // nullopt = no scaling (torch_rc's layer default; its premade models use 0.9).
  TORCH_ARG(std::optional<double>, spectral_radius) = std::nullopt;
  TORCH_ARG(double, leak_rate) = 1.0;
  TORCH_ARG(Activation, activation) = Activation::Tanh;
  TORCH_ARG(bool, bias) = true;
  TORCH_ARG(bool, trainable) = false;
  TORCH_ARG(Topology, topology) = Topology::dense();
  TORCH_ARG(InputInit, feedback_init) = InputInit::uniform(1.0);
  TORCH_ARG(InputInit, input_init) = InputInit::uniform(1.0);
  // torch_rc initialises the bias to zeros; a small random bias breaks tanh's odd symmetry.
  TORCH_ARG(InputInit, bias_init) = InputInit::zero();
  // Seed of the weight draws (feedback, input, recurrent, bias, in that order); nullopt = torch's
  // default generator.
  TORCH_ARG(std::optional<uint64_t>, seed) = std::nullopt;
  // A CPU generator to draw from instead (takes precedence over `seed`); it is advanced by every
  // reset(), so two reservoirs built from one generator differ.
  TORCH_ARG(torch::Generator, generator) = torch::Generator();
  TORCH_ARG(RecurrentKernel, kernel) = RecurrentKernel::Auto;
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
};

class ReservoirImpl : public Layer {
 public:
  explicit ReservoirImpl(ReservoirOptions options);
  ReservoirImpl(int64_t reservoir_size, int64_t feedback_size)
      : ReservoirImpl(ReservoirOptions(reservoir_size, feedback_size)) {}

  // (Re)draws every weight from the options (seeded) and forgets the state.
  void reset();

  // feedback [B, T, F] or [B, F]; input (driving) likewise, or undefined.
  torch::Tensor forward(const torch::Tensor& feedback, const torch::Tensor& input = {});
  // Time-major feedback [T, B, F] (no driving input) -> states [T, B, R]; the same as forward on
  // the batch-first transpose.
  torch::Tensor forward_sequence(const torch::Tensor& feedback) override;
  torch::Tensor forward_step(const torch::Tensor& feedback) override { return forward(feedback); }

  // torch_rc's state API. The state is [batch, reservoir_size].
  void reset_state(std::optional<int64_t> batch_size = std::nullopt);
  using Layer::set_state;
  void set_state(const torch::Tensor& state);  // checks the last axis, stores a clone
  torch::Tensor get_state() const;             // a clone, or undefined before the first step

  const ReservoirOptions& options() const { return options_; }
  // The kernel the next no-grad forward will use for the recurrent term.
  RecurrentKernel effective_kernel() const;

  torch::Tensor weight_feedback, weight_input, weight_hh, bias_h;

  void pretty_print(std::ostream& stream) const override;

 protected:
  FORWARD_HAS_DEFAULT_ARGS({1, torch::nn::AnyValue(torch::Tensor())})
  std::vector<int64_t> initial_state_shape(size_t index, const torch::Tensor& x) const override;

 private:
  bool needs_grad(const torch::Tensor& feedback, const torch::Tensor& input) const;
  void prepare_state(const torch::Tensor& like);
  torch::Tensor step_fast(const torch::Tensor& fb, const torch::Tensor& in);  // [B, F] -> [B, R]
  torch::Tensor run_fast(const torch::Tensor& drive);     // drive [T, B, R] -> states [T, B, R]
  torch::Tensor run_autograd(const torch::Tensor& drive);
  void refresh_sparse();

  ReservoirOptions options_;
  size_t state_index_ = 0;
  // CSR copy of weight_hh, valid for (data pointer, version) of weight_hh.
  torch::Tensor csr_rows_, csr_cols_, csr_values_;
  const void* csr_source_ = nullptr;
  int64_t csr_version_ = -1;
  double density_ = 1.0;
  torch::Tensor pre_buffer_;  // reused across steps and calls
};

TORCH_MODULE(Reservoir);

// Density at or below which RecurrentKernel::Auto uses the sparse kernel for an n-unit reservoir
// (CPU, float/double, no autograd). Measured with bench/bench_reservoir.cpp (docs/reservoir.md):
// the CSR kernel won at every size up to 5% density, up to 10% from 1,000 units and up to 20% from
// 2,000 units, where the dense matrix no longer fits the caches.
constexpr double sparse_density_threshold(int64_t n) { return n >= 2000 ? 0.2 : n >= 1000 ? 0.1 : 0.05; }

}  // namespace tt::rc
