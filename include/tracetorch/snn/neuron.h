#pragma once
// tt::snn::Neuron: the one configurable spiking / leaky-integrator neuron (spec section 5).
//
// The 32 traceTorch layers (LI, DSRLITS, ...) are points of one feature space:
//   dual       D   separate positive / negative traces for every trace
//   synaptic   S   an input low-pass trace `syn` (decay alpha) before the membrane
//   recurrent  R   a trace `rec` (decay gamma) of the previous output, fed back through rec_weight
//   ema            membrane as an EMA, mem*beta + x*(1-beta) (LI family only)
//   output         LI (membrane), B (one threshold, spikes >= 0), T (two thresholds, signed),
//                  TS (T with learnable output scales)
// presets.h gives the 32 names; this file holds the equations, once.
#include <torch/torch.h>

#include <map>
#include <string>
#include <vector>

#include "tracetorch/core/cloneable.h"
#include "tracetorch/core/layer.h"
#include "tracetorch/core/parameter.h"
#include "tracetorch/functional/tensor_fn.h"

namespace tt::snn {

enum class Output { LI, B, T, TS };

// Declares value / rank / learnable setters for one constructor argument, named as in Python:
// `.beta(0.8)`, `.beta_rank(0)`, `.learn_beta(false)`.
#define TT_NEURON_PARAMETER(NAME)                                                          \
  NeuronOptions& NAME(ParamValue v) { return set_value(#NAME, std::move(v)); }            \
  NeuronOptions& NAME##_rank(int64_t r) { return set_rank(#NAME, r); }                    \
  NeuronOptions& learn_##NAME(bool l) { return set_learnable(#NAME, l); }

struct NeuronOptions {
  explicit NeuronOptions(int64_t num_neurons) : num_neurons_(num_neurons) {}

  TORCH_ARG(int64_t, num_neurons);
  TORCH_ARG(bool, dual) = false;
  TORCH_ARG(bool, synaptic) = false;
  TORCH_ARG(bool, recurrent) = false;
  TORCH_ARG(bool, ema) = false;
  TORCH_ARG(Output, output) = Output::LI;
  TORCH_ARG(functional::TensorFn, spike_fn) = functional::sigmoid4x();
  TORCH_ARG(functional::TensorFn, quant_fn) = functional::identity();

 public:

  // The feature axis (negative counts from the end). Remembered as "given" for arch JSON.
  NeuronOptions& dim(int64_t d) {
    dim_ = d;
    dim_given_ = true;
    return *this;
  }
  int64_t dim() const { return dim_; }
  bool dim_given() const { return dim_given_; }

  TT_NEURON_PARAMETER(alpha)
  TT_NEURON_PARAMETER(pos_alpha)
  TT_NEURON_PARAMETER(neg_alpha)
  TT_NEURON_PARAMETER(beta)
  TT_NEURON_PARAMETER(pos_beta)
  TT_NEURON_PARAMETER(neg_beta)
  TT_NEURON_PARAMETER(gamma)
  TT_NEURON_PARAMETER(pos_gamma)
  TT_NEURON_PARAMETER(neg_gamma)
  TT_NEURON_PARAMETER(threshold)
  TT_NEURON_PARAMETER(pos_threshold)
  TT_NEURON_PARAMETER(neg_threshold)
  TT_NEURON_PARAMETER(bias)
  TT_NEURON_PARAMETER(pos_scale)
  TT_NEURON_PARAMETER(neg_scale)
  TT_NEURON_PARAMETER(rec_weight)
  TT_NEURON_PARAMETER(pos_rec_weight)
  TT_NEURON_PARAMETER(neg_rec_weight)

  // Generic forms (used by the JSON reader). Unknown names are rejected at construction.
  NeuronOptions& set_value(const std::string& name, ParamValue v);
  NeuronOptions& set_rank(const std::string& name, int64_t r);
  NeuronOptions& set_learnable(const std::string& name, bool l);
  const std::map<std::string, ParamSetting>& settings() const { return settings_; }

  // The Python class name these features make ("DSRLITS"); throws for invalid combinations.
  std::string class_name() const;

 private:
  int64_t dim_ = -1;
  bool dim_given_ = false;
  std::map<std::string, ParamSetting> settings_;
};
#undef TT_NEURON_PARAMETER

// One constrained parameter of a configuration, in registration (= state_dict) order.
struct ParameterSpec {
  std::string name;
  Transform transform;
  double default_value;
};
// The parameters a feature combination has (spec 5.4), in registration order.
std::vector<ParameterSpec> neuron_parameters(const NeuronOptions& options);
// The states it has, in creation order.
std::vector<std::string> neuron_states(const NeuronOptions& options);

class NeuronImpl : public Cloneable<NeuronImpl> {
 public:
  explicit NeuronImpl(NeuronOptions options);

  // Registers the parameters (initial values from the options) and the states anew.
  void reset() override;

  // One timestep: x has num_neurons entries on `dim`; the output has x's shape.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }

  void pretty_print(std::ostream& stream) const override;
  const NeuronOptions& options() const { return options_; }

 private:
  // Indices into the layer's constrained parameters / states; -1 when absent.
  struct Pair {
    int pos = -1, neg = -1;  // non-dual uses `pos` only
  };
  NeuronOptions options_;
  Pair alpha_, beta_, gamma_, rec_weight_, scale_, threshold_;  // threshold_.pos is LIB's threshold
  int bias_ = -1;
  Pair syn_, mem_, rec_;
  int prev_output_ = -1;
};

TORCH_MODULE(Neuron);

}  // namespace tt::snn
