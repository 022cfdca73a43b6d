#include "tracetorch/rnn/rnn.h"

#include "tracetorch/core/error.h"

namespace tt::rnn {

namespace {

// torch::linear is ATen's linear, the op Python's nn.Linear runs. (The C++ frontend's
// torch::nn::Linear::forward takes another route for inputs of rank > 2, which can differ in
// the last bit.)
torch::Tensor linear(const torch::Tensor& x, const torch::nn::Linear& layer) {
  return torch::linear(x, layer->weight, layer->bias);
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// shared

RecurrentLayer::RecurrentLayer(const std::string& type_name, RNNOptions options)
    : Layer(type_name, options.out_features(), options.dim()), options_(options) {
  // ensure_states() checks the input's feature count and its batch axes against the states.
  expect_input_features(options_.in_features());
  if (options_.in_features() <= 0)
    throw ValueError(type_name + ": in_features must be positive, got " + std::to_string(options_.in_features()));
}

void RecurrentLayer::pretty_print(std::ostream& stream) const {
  stream << "tt::rnn::" << type_name().substr(4) << "(in_features=" << options_.in_features()
         << ", out_features=" << options_.out_features();
  if (dim() != -1) stream << ", dim=" << dim();
  stream << ")";
}

// ---------------------------------------------------------------------------------------------
// SimpleRNN

SimpleRNNImpl::SimpleRNNImpl(SimpleRNNOptions options) : Cloneable("rnn.SimpleRNN", std::move(options)) { reset(); }

void SimpleRNNImpl::reset() {
  begin_reset();
  scratch_ = Scratch{};
  const int64_t in = options_.in_features(), out = options_.out_features();
  lin = register_module("lin", torch::nn::Linear(in + out, out));
  h_ = register_state("H");
}

void SimpleRNNImpl::reset_parameters() { lin->reset_parameters(); }

torch::Tensor SimpleRNNImpl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  if (fast_step_applies(x_in, lin->weight)) return fast_step(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  const torch::Tensor x = axis.in(x_in);
  const torch::Tensor h = axis.in(state_at(h_));

  torch::Tensor h_new = torch::tanh(linear(torch::cat({h, x}, -1), lin));

  state_at(h_) = axis.out(h_new);
  return state_at(h_);
}

// ---------------------------------------------------------------------------------------------
// GRU

GRUImpl::GRUImpl(GRUOptions options) : Cloneable("rnn.GRU", std::move(options)) { reset(); }

void GRUImpl::reset() {
  begin_reset();
  scratch_ = Scratch{};
  const int64_t in = options_.in_features(), out = options_.out_features();
  gate_layers = register_module("gate_layers", torch::nn::Linear(in + out, 2 * out));
  candidate_layer = register_module("candidate_layer", torch::nn::Linear(in + out, out));
  h_ = register_state("H");
}

void GRUImpl::reset_parameters() {
  gate_layers->reset_parameters();
  candidate_layer->reset_parameters();
}

torch::Tensor GRUImpl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  if (fast_step_applies(x_in, gate_layers->weight)) return fast_step(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  const torch::Tensor x = axis.in(x_in);
  const torch::Tensor h = axis.in(state_at(h_));

  const torch::Tensor gates = torch::sigmoid(linear(torch::cat({h, x}, -1), gate_layers));
  const std::vector<torch::Tensor> rz = gates.chunk(2, -1);  // reset first, update second
  const torch::Tensor& r = rz[0];
  const torch::Tensor& z = rz[1];
  const torch::Tensor candidate = torch::tanh(linear(torch::cat({h.mul(r), x}, -1), candidate_layer));
  // z weights the candidate, 1 - z keeps the old state (not nn.GRU's convention).
  torch::Tensor h_new = h.mul(torch::rsub(z, 1)).add(z.mul(candidate));

  state_at(h_) = axis.out(h_new);
  return state_at(h_);
}

// ---------------------------------------------------------------------------------------------
// LSTM

LSTMImpl::LSTMImpl(LSTMOptions options) : Cloneable("rnn.LSTM", std::move(options)) { reset(); }

void LSTMImpl::reset() {
  begin_reset();
  scratch_ = Scratch{};
  const int64_t in = options_.in_features(), out = options_.out_features();
  gate_layers = register_module("gate_layers", torch::nn::Linear(in + out, 4 * out));
  // Python keeps state names in a set; this is its order under PYTHONHASHSEED=0 (file key order).
  c_ = register_state("C");
  h_ = register_state("H");
}

void LSTMImpl::reset_parameters() { gate_layers->reset_parameters(); }

torch::Tensor LSTMImpl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  if (fast_step_applies(x_in, gate_layers->weight)) return fast_step(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  const torch::Tensor x = axis.in(x_in);
  const torch::Tensor h = axis.in(state_at(h_));
  const torch::Tensor c = axis.in(state_at(c_));

  const torch::Tensor a = linear(torch::cat({h, x}, -1), gate_layers);
  const std::vector<torch::Tensor> ifog = a.chunk(4, -1);  // i, f, o, g (not PyTorch's i, f, g, o)
  torch::Tensor c_new = torch::sigmoid(ifog[1]).mul(c).add(torch::sigmoid(ifog[0]).mul(torch::tanh(ifog[3])));
  torch::Tensor h_new = torch::sigmoid(ifog[2]).mul(torch::tanh(c_new));

  state_at(c_) = axis.out(c_new);
  state_at(h_) = axis.out(h_new);
  return state_at(h_);
}

}  // namespace tt::rnn
