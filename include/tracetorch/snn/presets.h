#pragma once
// The 32 traceTorch layer names as presets of tt::snn::Neuron.
//
//   tt::snn::LIB(128)                                   defaults
//   tt::snn::LIB(tt::snn::LIBOptions(128).beta(0.8))    options, Python argument names
//
// Name letters: D = dual (separate positive / negative traces), S = synaptic input trace,
// R = recurrent trace of the output; suffix LI = leaky integrator (returns the membrane),
// LIB = binary spikes with one threshold, LIT = ternary spikes with two thresholds,
// LITS = ternary spikes with learnable output scales, EMA = membrane as an exponential average.
// The preset fixes the features: LIB(options) is an LIB whatever features `options` had.
//
// Each name is a holder of tt::snn::NeuronImpl (TORCH_MODULE style) plus a NAMEOptions(n)
// function; constructing one throws tt::ValueError for invalid parameter values (see neuron.h).
// Thread safety: as for every layer, one thread per layer at a time.
#include <string>
#include <vector>

#include "tracetorch/snn/neuron.h"

namespace tt::snn {

// Not part of the API: the X-macro table (NAME, dual, synaptic, recurrent, ema, output) that
// defines the holders below and the name lookups in presets.cpp. Use preset_names() instead.
#define TT_DETAIL_SNN_PRESET_TABLE(X)                       \
  X(LI, false, false, false, false, LI)         \
  X(DLI, true, false, false, false, LI)         \
  X(SLI, false, true, false, false, LI)         \
  X(DSLI, true, true, false, false, LI)         \
  X(LIEMA, false, false, false, true, LI)       \
  X(DLIEMA, true, false, false, true, LI)       \
  X(SLIEMA, false, true, false, true, LI)       \
  X(DSLIEMA, true, true, false, true, LI)       \
  X(LIB, false, false, false, false, B)         \
  X(DLIB, true, false, false, false, B)         \
  X(SLIB, false, true, false, false, B)         \
  X(RLIB, false, false, true, false, B)         \
  X(DSLIB, true, true, false, false, B)         \
  X(DRLIB, true, false, true, false, B)         \
  X(SRLIB, false, true, true, false, B)         \
  X(DSRLIB, true, true, true, false, B)         \
  X(LIT, false, false, false, false, T)         \
  X(DLIT, true, false, false, false, T)         \
  X(SLIT, false, true, false, false, T)         \
  X(RLIT, false, false, true, false, T)         \
  X(DSLIT, true, true, false, false, T)         \
  X(DRLIT, true, false, true, false, T)         \
  X(SRLIT, false, true, true, false, T)         \
  X(DSRLIT, true, true, true, false, T)         \
  X(LITS, false, false, false, false, TS)       \
  X(DLITS, true, false, false, false, TS)       \
  X(SLITS, false, true, false, false, TS)       \
  X(RLITS, false, false, true, false, TS)       \
  X(DSLITS, true, true, false, false, TS)       \
  X(DRLITS, true, false, true, false, TS)       \
  X(SRLITS, false, true, true, false, TS)       \
  X(DSRLITS, true, true, true, false, TS)

namespace detail {
// Applies a preset's features to options (keeps values, ranks, flags, dim, functions).
inline NeuronOptions with_features(NeuronOptions o, bool dual, bool synaptic, bool recurrent, bool ema, Output out) {
  return o.dual(dual).synaptic(synaptic).recurrent(recurrent).ema(ema).output(out);
}
}  // namespace detail

#define TT_DEFINE_PRESET(NAME, D, S, R, EMA, OUT)                                                         \
  inline NeuronOptions NAME##Options(int64_t num_neurons) {                                              \
    return detail::with_features(NeuronOptions(num_neurons), D, S, R, EMA, Output::OUT);                          \
  }                                                                                                       \
  class NAME : public torch::nn::ModuleHolder<NeuronImpl> {                                                \
   public:                                                                                                \
    NAME(std::nullptr_t) : ModuleHolder(nullptr) {}                                                       \
    NAME(std::shared_ptr<NeuronImpl> impl) : ModuleHolder(std::move(impl)) {}                            \
    NAME(int64_t num_neurons) : NAME(NAME##Options(num_neurons)) {}                                       \
    NAME(NeuronOptions options)                                                                           \
        : ModuleHolder(std::make_shared<NeuronImpl>(detail::with_features(std::move(options), D, S, R, EMA, Output::OUT))) {} \
  };
TT_DETAIL_SNN_PRESET_TABLE(TT_DEFINE_PRESET)
#undef TT_DEFINE_PRESET

// Options for a preset given by name ("DSRLITS"); throws tt::ValueError for unknown names.
NeuronOptions preset_options(const std::string& name, int64_t num_neurons);
// All 32 names, in the table's order.
const std::vector<std::string>& preset_names();

}  // namespace tt::snn
