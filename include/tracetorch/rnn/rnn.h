#pragma once
// tt::rnn: recurrent layers with their hidden states inside (spec section 6).
//
//   tt::rnn::GRU gru(16, 32);                               // in_features, out_features
//   tt::rnn::LSTM lstm(tt::rnn::LSTMOptions(16, 32).dim(1)); // feature axis 1 (e.g. [B, F, W])
//   for (auto& x_t : steps) y_t = gru(x_t);                  // one timestep per call
//
// Contract:
// - Every layer is a tt::Cloneable: clone() copies parameters and the current states, so the copy
//   continues a stream exactly like the original and independently of it; reset() re-creates and
//   re-draws everything (reset_parameters() only re-draws the weights).
// - The input has `in_features` entries on axis `dim` (negative counts from the end); the output
//   and every state have the input's shape with that axis replaced by `out_features`.
// - States (`H`; LSTM also `C`) are created lazily as zeros with the input's dtype/device and
//   stored in the caller's layout. The output is the new `H` itself (spec Quirk Q16).
// - The matrices act on the features-last view; the concatenation is [H, x] (hidden first).
// - Parameters live in torch::nn::Linear children (`lin`, `gate_layers`, `candidate_layer`), so
//   state_dict keys equal Python traceTorch's. There are no constrained parameters: compile() and
//   decompile() change nothing.
// - Initial weights are nn.Linear's (fan_in = in + out), drawn from the global generator in
//   Python's order: torch::manual_seed(s) gives the same weights as Python with torch.manual_seed(s).
// - Paths (core/layer.h): with autograd on, forward runs the reference ATen equations (bit-parity
//   with Python). Without autograd (NoGradGuard / InferenceMode) on the CPU, a contiguous
//   float32/float64 input with the features last takes the fast step: the same equations with
//   GEMV for one-row inputs (GEMM otherwise) into preallocated buffers, no `cat`, no allocation
//   per step in steady state, within 1e-5 relative of the reference. set_exact(true) forces the
//   reference path. Either way a state is rebound, never changed under a tensor the caller still
//   holds: the fast step writes in place only into buffers nobody else references (so outputs
//   kept from earlier steps stay valid).
// - forward_sequence(x) takes [T, ...] (each x[t] as forward takes it) and returns [T, ...]: the
//   input part of every linear runs for all T steps as one matrix product, then the recurrence.
//   Outputs, final states and gradients equal T forward() calls within rounding.
// Throws tt::ValueError for invalid options at construction, for an input without in_features
// entries on `dim`, and for an input whose batch axes do not fit the existing states (call
// zero_states() before changing the batch size; Python broadcasts a batch-1 state, Quirk Q14).
// Thread safety: forward mutates the layer's states; a layer is not thread-safe. Distinct layers
// (or clones) may run on distinct threads.
#include <torch/torch.h>

#include <ostream>

#include "tracetorch/core/cloneable.h"
#include "tracetorch/core/layer.h"

namespace tt::rnn {

struct RNNOptions {
  RNNOptions(int64_t in_features, int64_t out_features) : in_features_(in_features), out_features_(out_features) {}

  TORCH_ARG(int64_t, in_features);
  TORCH_ARG(int64_t, out_features);

 public:
  // The feature axis (default -1). Remembered as "given" so that arch JSON writes it back.
  RNNOptions& dim(int64_t d) {
    dim_ = d;
    dim_given_ = true;
    return *this;
  }
  int64_t dim() const { return dim_; }
  bool dim_given() const { return dim_given_; }

 private:
  int64_t dim_ = -1;
  bool dim_given_ = false;
};
using SimpleRNNOptions = RNNOptions;
using GRUOptions = RNNOptions;
using LSTMOptions = RNNOptions;

// Shared plumbing of the three cells: options, printing, the fast step's buffers.
class RecurrentLayer : public Layer {
 public:
  const RNNOptions& options() const { return options_; }
  void pretty_print(std::ostream& stream) const override;

 protected:
  RecurrentLayer(const std::string& type_name, RNNOptions options);
  // True when forward may take the fast step for x (see the contract); weight: the layer's first
  // matrix, whose dtype must be x's.
  bool fast_step_applies(const torch::Tensor& x, const torch::Tensor& weight) const;
  // Checks a time-major input [T, ...] and creates the states from its first step.
  void begin_sequence(const torch::Tensor& x);

  RNNOptions options_;
  // Buffers the fast step reuses; reset() clears them, so a clone never shares them. spare_h holds
  // the H before the current one: its memory takes the next H once nobody else holds it.
  struct Scratch {
    torch::Tensor hx, rhx, gates, candidate, spare_h, spare_c;
  } scratch_;
};

// H <- tanh(linear(cat([H, x]), lin))
class SimpleRNNImpl : public Cloneable<SimpleRNNImpl, RecurrentLayer> {
 public:
  SimpleRNNImpl(int64_t in_features, int64_t out_features)
      : SimpleRNNImpl(SimpleRNNOptions(in_features, out_features)) {}
  explicit SimpleRNNImpl(SimpleRNNOptions options);

  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  torch::Tensor forward_sequence(const torch::Tensor& x) override;
  // Re-creates the layer: new parameters drawn in Python's order, no states, empty buffers.
  void reset() override;
  // Draws new initial weights (nn.Linear init) in Python's order.
  void reset_parameters();

  torch::nn::Linear lin{nullptr};

 private:
  torch::Tensor fast_step(const torch::Tensor& x);
  size_t h_ = 0;
};
TORCH_MODULE(SimpleRNN);

// g = sigmoid(linear(cat([H, x]), gate_layers)); r, z = chunk(g, 2)
// c = tanh(linear(cat([H*r, x]), candidate_layer)); H <- H*(1 - z) + z*c
class GRUImpl : public Cloneable<GRUImpl, RecurrentLayer> {
 public:
  GRUImpl(int64_t in_features, int64_t out_features) : GRUImpl(GRUOptions(in_features, out_features)) {}
  explicit GRUImpl(GRUOptions options);

  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  torch::Tensor forward_sequence(const torch::Tensor& x) override;
  void reset() override;
  void reset_parameters();

  torch::nn::Linear gate_layers{nullptr};
  torch::nn::Linear candidate_layer{nullptr};

 private:
  torch::Tensor fast_step(const torch::Tensor& x);
  size_t h_ = 0;
};
TORCH_MODULE(GRU);

// i, f, o, g = chunk(linear(cat([H, x]), gate_layers), 4)
// C <- sigmoid(f)*C + sigmoid(i)*tanh(g); H <- sigmoid(o)*tanh(C)
class LSTMImpl : public Cloneable<LSTMImpl, RecurrentLayer> {
 public:
  LSTMImpl(int64_t in_features, int64_t out_features) : LSTMImpl(LSTMOptions(in_features, out_features)) {}
  explicit LSTMImpl(LSTMOptions options);

  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  torch::Tensor forward_sequence(const torch::Tensor& x) override;
  void reset() override;
  void reset_parameters();

  torch::nn::Linear gate_layers{nullptr};

 private:
  torch::Tensor fast_step(const torch::Tensor& x);
  size_t c_ = 0, h_ = 0;
};
TORCH_MODULE(LSTM);

}  // namespace tt::rnn
