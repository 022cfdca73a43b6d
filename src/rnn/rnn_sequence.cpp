// Whole-sequence forwards of the recurrent layers (rnn.h): [H, x] @ W^T = H @ W_h^T + x @ W_x^T
// with W = [W_h | W_x], so the input part of every linear runs once for all T steps (one GEMM
// over T x batch rows) and the recurrence only multiplies by the hidden blocks. The step
// equations are rnn.cpp's; autograd records the whole sequence.
#include "core/text.h"
#include "tracetorch/core/error.h"
#include "tracetorch/rnn/rnn.h"

namespace tt::rnn {

namespace {

// The hidden and input column blocks of a [out, H + I] weight (the hidden block contiguous: it
// is used T times).
struct Blocks {
  torch::Tensor hidden, input;
};
Blocks split_columns(const torch::Tensor& weight, int64_t hidden) {
  return {weight.narrow(1, 0, hidden).contiguous(), weight.narrow(1, hidden, weight.size(1) - hidden)};
}

// x [T, ...] with the step's feature axis last (a view).
torch::Tensor features_last(const torch::Tensor& x, int64_t step_axis) {
  return step_axis == x.dim() - 2 ? x : x.movedim(step_axis + 1, -1);
}
torch::Tensor features_back(const torch::Tensor& y, int64_t step_axis) {
  return step_axis == y.dim() - 2 ? y : y.movedim(-1, step_axis + 1);
}

}  // namespace

void RecurrentLayer::begin_sequence(const torch::Tensor& x) {
  if (!x.defined() || x.dim() < 2 || x.size(0) == 0)
    throw ValueError(describe() + ": forward_sequence takes a time-major input [T, ...] with T >= 1 and a step of "
                     "rank >= 1, got " + (x.defined() ? detail::shape_string(x.sizes()) : std::string("undefined")));
  ensure_states(x[0]);
}

torch::Tensor SimpleRNNImpl::forward_sequence(const torch::Tensor& xs) {
  begin_sequence(xs);
  const FeatureAxis axis = feature_axis(xs[0]);
  const int64_t H = options_.out_features(), T = xs.size(0);
  const Blocks w = split_columns(lin->weight, H);
  const torch::Tensor projected = torch::linear(features_last(xs, axis.axis), w.input, lin->bias);
  torch::Tensor h = axis.in(state_at(h_));
  std::vector<torch::Tensor> outputs;
  outputs.reserve(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    h = torch::tanh(projected[t] + torch::linear(h, w.hidden));
    outputs.push_back(h);
  }
  state_at(h_) = axis.out(h);
  return features_back(torch::stack(outputs), axis.axis);
}

torch::Tensor GRUImpl::forward_sequence(const torch::Tensor& xs) {
  begin_sequence(xs);
  const FeatureAxis axis = feature_axis(xs[0]);
  const int64_t H = options_.out_features(), T = xs.size(0);
  const Blocks gate = split_columns(gate_layers->weight, H);
  const Blocks cand = split_columns(candidate_layer->weight, H);
  // Both input projections in one GEMM.
  const torch::Tensor projected =
      torch::linear(features_last(xs, axis.axis), torch::cat({gate.input, cand.input}),
                    torch::cat({gate_layers->bias, candidate_layer->bias}));
  const std::vector<torch::Tensor> parts = projected.split_with_sizes({2 * H, H}, -1);
  torch::Tensor h = axis.in(state_at(h_));
  std::vector<torch::Tensor> outputs;
  outputs.reserve(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    const torch::Tensor gates = torch::sigmoid(parts[0][t] + torch::linear(h, gate.hidden));
    const std::vector<torch::Tensor> rz = gates.chunk(2, -1);
    const torch::Tensor candidate = torch::tanh(parts[1][t] + torch::linear(h.mul(rz[0]), cand.hidden));
    h = h.mul(torch::rsub(rz[1], 1)).add(rz[1].mul(candidate));
    outputs.push_back(h);
  }
  state_at(h_) = axis.out(h);
  return features_back(torch::stack(outputs), axis.axis);
}

torch::Tensor LSTMImpl::forward_sequence(const torch::Tensor& xs) {
  begin_sequence(xs);
  const FeatureAxis axis = feature_axis(xs[0]);
  const int64_t H = options_.out_features(), T = xs.size(0);
  const Blocks w = split_columns(gate_layers->weight, H);
  const torch::Tensor projected = torch::linear(features_last(xs, axis.axis), w.input, gate_layers->bias);
  torch::Tensor h = axis.in(state_at(h_));
  torch::Tensor c = axis.in(state_at(c_));
  std::vector<torch::Tensor> outputs;
  outputs.reserve(static_cast<size_t>(T));
  for (int64_t t = 0; t < T; ++t) {
    const std::vector<torch::Tensor> ifog = (projected[t] + torch::linear(h, w.hidden)).chunk(4, -1);
    c = torch::sigmoid(ifog[1]).mul(c).add(torch::sigmoid(ifog[0]).mul(torch::tanh(ifog[3])));
    h = torch::sigmoid(ifog[2]).mul(torch::tanh(c));
    outputs.push_back(h);
  }
  state_at(c_) = axis.out(c);
  state_at(h_) = axis.out(h);
  return features_back(torch::stack(outputs), axis.axis);
}

}  // namespace tt::rnn
