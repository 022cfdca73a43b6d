// The 32 SNN presets (spec 5.4 / 5.5): state names and creation order, state_dict keys, order,
// shapes and the parameter / buffer split, compile / decompile, architecture JSON round trips
// and errors. The expected names are derived here from the letters of each class name, written
// from the spec independently of neuron_parameters() / neuron_states().
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tracetorch/tracetorch.h"

namespace {

using ordered_json = nlohmann::ordered_json;

const std::vector<std::string> kNames = {
    "LI",   "DLI",   "SLI",   "DSLI",   "LIEMA", "DLIEMA", "SLIEMA", "DSLIEMA", "LIB",   "DLIB",   "SLIB",
    "RLIB", "DSLIB", "DRLIB", "SRLIB",  "DSRLIB", "LIT",   "DLIT",   "SLIT",   "RLIT",  "DSLIT",  "DRLIT",
    "SRLIT", "DSRLIT", "LITS", "DLITS", "SLITS", "RLITS", "DSLITS", "DRLITS", "SRLITS", "DSRLITS"};

// Every parameter name any preset has.
const std::vector<std::string> kAllParameters = {
    "alpha", "pos_alpha", "neg_alpha", "beta", "pos_beta", "neg_beta", "gamma", "pos_gamma", "neg_gamma",
    "threshold", "pos_threshold", "neg_threshold", "bias", "pos_scale", "neg_scale", "rec_weight",
    "pos_rec_weight", "neg_rec_weight"};

enum class Kind { Decay, Threshold, Bias, Identity };

struct Expected {
  bool dual = false, synaptic = false, recurrent = false, ema = false;
  std::string family;  // LI, LIB, LIT, LITS
  std::vector<std::string> states;
  std::vector<std::pair<std::string, Kind>> parameters;  // registration order
  std::map<std::string, double> defaults;
};

Expected expected(const std::string& name) {
  Expected e;
  std::string rest = name;
  auto take = [&](char c) {
    if (!rest.empty() && rest[0] == c && rest.rfind("LI", 0) != 0) {
      rest = rest.substr(1);
      return true;
    }
    return false;
  };
  e.dual = take('D');
  e.synaptic = take('S');
  e.recurrent = take('R');
  e.ema = rest.size() > 3 && rest.substr(rest.size() - 3) == "EMA";
  e.family = e.ema ? rest.substr(0, rest.size() - 3) : rest;
  auto group = [&](const std::string& base) {
    return e.dual ? std::vector<std::string>{"pos_" + base, "neg_" + base} : std::vector<std::string>{base};
  };
  auto add = [&](const std::string& p, Kind k, double d) {
    e.parameters.emplace_back(p, k);
    e.defaults[p] = d;
  };
  if (e.synaptic) {
    for (const auto& s : group("syn")) e.states.push_back(s);
    for (const auto& p : group("alpha")) add(p, Kind::Decay, 0.5);
  }
  for (const auto& s : group("mem")) e.states.push_back(s);
  for (const auto& p : group("beta")) add(p, Kind::Decay, 0.9);
  if (e.recurrent) {
    for (const auto& s : group("rec")) e.states.push_back(s);
    e.states.push_back("prev_output");
    for (const auto& p : group("gamma")) add(p, Kind::Decay, 0.9);
  }
  if (e.family == "LIB") add("threshold", Kind::Threshold, 1.0);
  if (e.family == "LIT" || e.family == "LITS") {
    add("pos_threshold", Kind::Threshold, 1.0);
    add("neg_threshold", Kind::Threshold, 1.0);
  }
  if (e.family != "LI") add("bias", Kind::Bias, 0.0);
  if (e.family == "LITS") {  // registered after bias (only the Python signature lists them before it)
    add("pos_scale", Kind::Identity, 1.0);
    add("neg_scale", Kind::Identity, 1.0);
  }
  if (e.recurrent)
    for (const auto& p : group("rec_weight")) add(p, Kind::Identity, 0.0);
  return e;
}

std::vector<std::string> parameter_names(const Expected& e) {
  std::vector<std::string> out;
  for (const auto& p : e.parameters) out.push_back(p.first);
  return out;
}

std::vector<std::string> prefixed(const std::string& prefix, const std::vector<std::string>& names) {
  std::vector<std::string> out;
  for (const auto& n : names) out.push_back(prefix + n);
  return out;
}

// A value inside the parameter's range, different per parameter and per neuron.
double value_for(Kind kind, size_t index, int64_t neuron) {
  const double t = 0.1 * static_cast<double>((index * 3 + static_cast<size_t>(neuron)) % 7);
  switch (kind) {
    case Kind::Decay: return 0.55 + t * 0.6;      // 0.55 .. 0.91
    case Kind::Threshold: return 0.6 + t;         // 0.6 .. 1.2
    case Kind::Bias: return -0.2 + t * 0.7;       // -0.2 .. 0.22
    case Kind::Identity: return 1.2 - t * 2.5;    // scales and recurrent weights, signed
  }
  return 0;
}

torch::Tensor vector_value(Kind kind, size_t index, int64_t n, torch::Dtype dtype = torch::kFloat32) {
  std::vector<double> v;
  for (int64_t i = 0; i < n; ++i) v.push_back(value_for(kind, index, i));
  return torch::tensor(v, dtype);
}

std::vector<std::string> dict_keys(const tt::io::TensorDict& d) { return d.keys(); }

// Non-default options: every other parameter rank 0, every third one not learnable.
tt::snn::NeuronOptions varied_options(const std::string& name, int64_t n) {
  const Expected e = expected(name);
  auto o = tt::snn::preset_options(name, n);
  for (size_t i = 0; i < e.parameters.size(); ++i) {
    const auto& [p, kind] = e.parameters[i];
    if (i % 2 == 1) {
      o.set_rank(p, 0).set_value(p, value_for(kind, i, 0));
    } else {
      o.set_value(p, vector_value(kind, i, n));
    }
    if (i % 3 == 2) o.set_learnable(p, false);
  }
  return o;
}

// ---------------------------------------------------------------------------------------------

TEST(SnnZoo, ThirtyTwoPresetsInTheSpecsOrder) {
  EXPECT_EQ(tt::snn::preset_names(), kNames);
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    const auto o = tt::snn::preset_options(name, 3);
    EXPECT_EQ(o.class_name(), name);
    EXPECT_EQ(o.dual(), e.dual) << name;
    EXPECT_EQ(o.synaptic(), e.synaptic) << name;
    EXPECT_EQ(o.recurrent(), e.recurrent) << name;
    EXPECT_EQ(o.ema(), e.ema) << name;
  }
}

TEST(SnnZoo, StateNamesInCreationOrderAndShapedLikeTheInput) {
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    tt::snn::Neuron layer(tt::snn::preset_options(name, 4));
    EXPECT_EQ(layer->state_names(), e.states) << name;
    EXPECT_EQ(tt::snn::neuron_states(layer->options()), e.states) << name;
    for (const auto& s : e.states) EXPECT_FALSE(layer->state(s).defined()) << name << "." << s;
    const auto x = torch::randn({2, 3, 4}, torch::kFloat64);
    layer(x);
    for (const auto& s : e.states) {
      const auto& v = layer->state(s);
      ASSERT_TRUE(v.defined()) << name << "." << s;
      EXPECT_EQ(v.sizes(), x.sizes()) << name << "." << s;
      EXPECT_EQ(v.dtype(), torch::kFloat64) << name << "." << s;
    }
    // states are neither parameters nor buffers
    for (const auto& item : tt::state_dict(*layer))
      for (const auto& s : e.states) EXPECT_NE(item.key(), s) << name;
  }
}

TEST(SnnZoo, DefaultStateDictHasRawKeysInRegistrationOrderAllLearnable) {
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    tt::snn::Neuron layer(tt::snn::preset_options(name, 5));
    EXPECT_EQ(layer->parameter_names(), parameter_names(e)) << name;
    const auto sd = tt::state_dict(*layer);
    EXPECT_EQ(dict_keys(sd), prefixed("raw_", parameter_names(e))) << name;
    EXPECT_TRUE(layer->buffers().empty()) << name;
    EXPECT_EQ(layer->parameters().size(), e.parameters.size()) << name;
    for (const auto& [p, kind] : e.parameters) {
      const auto raw = sd["raw_" + p];
      EXPECT_EQ(raw.sizes(), (std::vector<int64_t>{5})) << name << "." << p;
      EXPECT_EQ(raw.dtype(), torch::kFloat32) << name << "." << p;
      EXPECT_TRUE(raw.requires_grad()) << name << "." << p;
      EXPECT_TRUE(layer->is_learnable(p)) << name << "." << p;
      // spec 2.4: the stored raw values of the defaults
      const double d = e.defaults.at(p);
      const float want = kind == Kind::Decay ? (d == 0.5 ? 0.0f : 2.1972243785858154f)
                         : kind == Kind::Threshold ? 0.5413248538970947f
                                                   : static_cast<float>(d);
      EXPECT_TRUE(torch::equal(raw, torch::full({5}, want))) << name << "." << p << " " << raw;
      EXPECT_TRUE(torch::allclose(layer->get(p), torch::full({5}, d), 0, 1e-6)) << name << "." << p;
    }
  }
}

TEST(SnnZoo, LitsFamilyRegistersBiasBeforeTheScales) {
  for (const std::string name : {"LITS", "DLITS", "SLITS", "RLITS", "DSLITS", "DRLITS", "SRLITS", "DSRLITS"}) {
    tt::snn::Neuron layer(tt::snn::preset_options(name, 2));
    const auto keys = dict_keys(tt::state_dict(*layer));
    const auto at = [&](const std::string& k) { return std::find(keys.begin(), keys.end(), k) - keys.begin(); };
    EXPECT_EQ(at("raw_bias") + 1, at("raw_pos_scale")) << name;
    EXPECT_EQ(at("raw_pos_scale") + 1, at("raw_neg_scale")) << name;
    EXPECT_EQ(at("raw_neg_threshold") + 1, at("raw_bias")) << name;
    // the JSON / options accept the flags for the scales and the bias in any order
    tt::snn::Neuron flagged(tt::snn::preset_options(name, 2).learn_pos_scale(false).learn_bias(false).neg_scale_rank(0));
    const auto sd = tt::state_dict(*flagged);
    const auto fk = dict_keys(sd);
    ASSERT_GE(fk.size(), 2u);
    EXPECT_EQ(std::vector<std::string>(fk.end() - 2, fk.end()), (std::vector<std::string>{"raw_bias", "raw_pos_scale"}))
        << name;
    EXPECT_EQ(sd["raw_neg_scale"].dim(), 0) << name;
  }
}

TEST(SnnZoo, RanksAndLearnFlagsSetShapesAndTheParameterBufferSplit) {
  const int64_t n = 3;
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    tt::snn::Neuron layer(varied_options(name, n));
    // PyTorch's order: the learnable raw_* first, then the buffers, each in registration order
    std::vector<std::string> want_keys, buffers;
    for (size_t i = 0; i < e.parameters.size(); ++i)
      (i % 3 == 2 ? buffers : want_keys).push_back("raw_" + e.parameters[i].first);
    want_keys.insert(want_keys.end(), buffers.begin(), buffers.end());
    const auto sd = tt::state_dict(*layer);
    EXPECT_EQ(dict_keys(sd), want_keys) << name;
    EXPECT_EQ(layer->parameter_names(), parameter_names(e)) << name;  // registration order is unchanged
    for (size_t i = 0; i < e.parameters.size(); ++i) {
      const auto& [p, kind] = e.parameters[i];
      const auto raw = sd["raw_" + p];
      EXPECT_EQ(raw.dim(), i % 2 == 1 ? 0 : 1) << name << "." << p;
      const bool learnable = i % 3 != 2;
      EXPECT_EQ(layer->named_parameters().contains("raw_" + p), learnable) << name << "." << p;
      EXPECT_EQ(layer->named_buffers().contains("raw_" + p), !learnable) << name << "." << p;
      EXPECT_EQ(raw.requires_grad(), learnable) << name << "." << p;
      EXPECT_EQ(layer->is_learnable(p), learnable) << name << "." << p;
      const auto want = i % 2 == 1 ? torch::tensor(value_for(kind, i, 0), torch::kFloat32) : vector_value(kind, i, n);
      EXPECT_TRUE(torch::allclose(layer->get(p), want, 1e-6, 1e-6)) << name << "." << p;
    }
    // gradients reach exactly the learnable raw parameters
    layer(torch::randn({2, n}) * 2).sum().backward();
    for (const auto& item : layer->named_parameters())
      EXPECT_TRUE(item.value().grad().defined()) << name << "." << item.key();
  }
}

TEST(SnnZoo, TensorValuesKeepTheirRankAndDtypeAndAreChecked) {
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    const auto& [p, kind] = e.parameters.back();
    // a 0-d tensor overrides rank 1, a float64 vector stays float64
    tt::snn::Neuron scalar(tt::snn::preset_options(name, 3).set_value(p, torch::tensor(value_for(kind, 0, 0))).set_rank(p, 1));
    EXPECT_EQ(tt::state_dict(*scalar)["raw_" + p].dim(), 0) << name;
    tt::snn::Neuron wide(tt::snn::preset_options(name, 3).set_value(p, vector_value(kind, 0, 3, torch::kFloat64)));
    EXPECT_EQ(tt::state_dict(*wide)["raw_" + p].dtype(), torch::kFloat64) << name;
    EXPECT_THROW(tt::snn::Neuron(tt::snn::preset_options(name, 3).set_value(p, torch::ones({2}))), tt::ValueError) << name;
    EXPECT_THROW(tt::snn::Neuron(tt::snn::preset_options(name, 3).set_value(p, torch::ones({3, 1}))), tt::ValueError) << name;
    EXPECT_THROW(tt::snn::Neuron(tt::snn::preset_options(name, 3).set_rank(p, 2)), tt::ValueError) << name;
  }
}

TEST(SnnZoo, EveryPresetRejectsParametersItDoesNotHave) {
  for (const auto& name : kNames) {
    const auto own = parameter_names(expected(name));
    for (const auto& p : kAllParameters) {
      const bool has = std::find(own.begin(), own.end(), p) != own.end();
      for (int how = 0; how < 3; ++how) {
        auto o = tt::snn::preset_options(name, 2);
        if (how == 0) o.set_value(p, 0.5);
        if (how == 1) o.set_rank(p, 0);
        if (how == 2) o.set_learnable(p, false);
        if (has) {
          EXPECT_NO_THROW(tt::snn::Neuron{o}) << name << "." << p;
          continue;
        }
        try {
          tt::snn::Neuron{o};
          ADD_FAILURE() << name << " accepted " << p;
        } catch (const tt::ValueError& err) {
          EXPECT_NE(std::string(err.what()).find("snn." + name + " has no parameter '" + p + "'"), std::string::npos)
              << err.what();
        }
      }
    }
  }
}

TEST(SnnZoo, OutOfRangeValuesAreErrorsNamingTheParameter) {
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    for (const auto& [p, kind] : e.parameters) {
      std::vector<double> bad;
      std::string range;
      if (kind == Kind::Decay) {
        bad = {0.0, 1.0, -0.1, 1.5};
        range = "(0,1)";
      }
      if (kind == Kind::Threshold) {
        bad = {0.0, -0.5};
        range = "(0,inf)";
      }
      for (double b : bad) {
        try {
          tt::snn::Neuron(tt::snn::preset_options(name, 3).set_value(p, b));
          ADD_FAILURE() << name << "." << p << " = " << b;
        } catch (const tt::ValueError& err) {
          const std::string what = err.what();
          EXPECT_NE(what.find(p), std::string::npos) << what;
          EXPECT_NE(what.find(range), std::string::npos) << what;
        }
      }
      // one bad element in a vector is enough
      if (!bad.empty()) {
        auto v = vector_value(kind, 0, 3);
        v[1] = bad[0];
        EXPECT_THROW(tt::snn::Neuron(tt::snn::preset_options(name, 3).set_value(p, v)), tt::ValueError) << name << "." << p;
      } else {  // bias, scales and recurrent weights take any value
        EXPECT_NO_THROW(tt::snn::Neuron(tt::snn::preset_options(name, 3).set_value(p, -7.5))) << name << "." << p;
      }
    }
  }
}

TEST(SnnZoo, PresetsFixTheirFeaturesAndInvalidCombinationsAreRejected) {
  // A preset holder makes its own class whatever features the options had.
  tt::snn::LIB lib(tt::snn::DSRLITSOptions(3));
  EXPECT_EQ(lib->type_name(), "snn.LIB");
  EXPECT_EQ(lib->state_names(), (std::vector<std::string>{"mem"}));
  tt::snn::DSRLITS full(tt::snn::LIOptions(3).pos_beta(0.7).dim(0));
  EXPECT_EQ(full->type_name(), "snn.DSRLITS");
  EXPECT_EQ(full->dim(), 0);
  // ... but parameter names are checked against the preset it becomes
  EXPECT_THROW(tt::snn::LI(tt::snn::LIBOptions(3).threshold(0.5)), tt::ValueError);
  EXPECT_THROW(tt::snn::Neuron(tt::snn::NeuronOptions(3).ema(true).output(tt::snn::Output::B)), tt::ValueError);
  EXPECT_THROW(tt::snn::Neuron(tt::snn::NeuronOptions(3).recurrent(true).output(tt::snn::Output::LI)), tt::ValueError);
  EXPECT_THROW(tt::snn::Neuron(tt::snn::NeuronOptions(3).ema(true).output(tt::snn::Output::TS)), tt::ValueError);
  EXPECT_THROW(tt::snn::Neuron(tt::snn::LIBOptions(0)), tt::ValueError);
  // the generic neuron with the right features is the preset
  tt::snn::Neuron generic(tt::snn::NeuronOptions(2).dual(true).recurrent(true).output(tt::snn::Output::T));
  EXPECT_EQ(generic->type_name(), "snn.DRLIT");
}

TEST(SnnZoo, CompileAndDecompileRoundTripForEveryPreset) {
  torch::manual_seed(3);
  const int64_t n = 3;
  const auto x = torch::randn({6, 2, n}) * 2;
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    tt::snn::Neuron layer(varied_options(name, n));
    std::vector<torch::Tensor> eager;
    for (int64_t t = 0; t < x.size(0); ++t) eager.push_back(layer(x[t]).detach().clone());
    const auto eager_states = tt::save_states(*layer);
    std::map<std::string, torch::Tensor> values;
    for (const auto& p : parameter_names(e)) values[p] = layer->get(p).detach().clone();
    const auto before = tt::state_dict(*layer);

    tt::compile(*layer);
    ASSERT_TRUE(layer->is_compiled()) << name;
    const auto compiled = tt::state_dict(*layer);
    EXPECT_EQ(dict_keys(compiled), parameter_names(e)) << name;  // all buffers, registration order
    EXPECT_TRUE(layer->parameters().empty()) << name;
    for (const auto& p : parameter_names(e)) {
      EXPECT_TRUE(torch::equal(compiled[p], values[p])) << name << "." << p;  // exactly the activation
      EXPECT_FALSE(layer->is_learnable(p)) << name << "." << p;
    }
    layer->zero_states();
    for (int64_t t = 0; t < x.size(0); ++t) EXPECT_TRUE(torch::equal(layer(x[t]), eager[t])) << name << " t=" << t;
    const auto compiled_states = tt::save_states(*layer);
    for (const auto& item : eager_states) EXPECT_TRUE(torch::equal(compiled_states[item.key()], item.value())) << name;

    tt::decompile(*layer);
    EXPECT_FALSE(layer->is_compiled()) << name;
    const auto after = tt::state_dict(*layer);
    EXPECT_EQ(dict_keys(after), dict_keys(before)) << name;
    for (const auto& item : before) {
      EXPECT_EQ(after[item.key()].sizes(), item.value().sizes()) << name << "." << item.key();
      EXPECT_EQ(after[item.key()].requires_grad(), item.value().requires_grad()) << name << "." << item.key();
      EXPECT_TRUE(torch::allclose(after[item.key()], item.value(), 0, 1e-5)) << name << "." << item.key();
    }
    for (const auto& p : parameter_names(e))
      EXPECT_EQ(layer->named_parameters().contains("raw_" + p), before[("raw_" + p)].requires_grad()) << name;
    layer->zero_states();
    for (int64_t t = 0; t < x.size(0); ++t)
      EXPECT_TRUE(torch::allclose(layer(x[t]), eager[t], 1e-5, 1e-5)) << name << " t=" << t;
  }
}

// Same numbers up to float rounding: the two layers hold their tensors in different memory
// layouts, and ATen's vectorised and scalar sigmoid paths may differ in the last bit (spec 11.3).
// Bit-exactness of `dim` against the spec's view semantics is checked by
// tests/python/test_snn_parity.py.
TEST(SnnZoo, DimMovesTheFeatureAxisForEveryPreset) {
  torch::manual_seed(4);
  const int64_t n = 4;
  const auto x = torch::randn({5, 2, n, 3}) * 2;  // [T, batch, features, length]
  for (const auto& name : kNames) {
    tt::snn::Neuron moved(varied_options(name, n).dim(1));
    tt::snn::Neuron last(varied_options(name, n));
    for (int64_t t = 0; t < x.size(0); ++t) {
      const auto y = moved(x[t]);
      EXPECT_EQ(y.sizes(), x[t].sizes()) << name;
      EXPECT_TRUE(torch::allclose(y, last(x[t].movedim(1, -1)).movedim(-1, 1), 1e-5, 1e-6)) << name << " t=" << t;
    }
    for (const auto& s : moved->state_names()) {
      EXPECT_EQ(moved->state(s).sizes(), x[0].sizes()) << name << "." << s;  // stored in the caller's layout
      EXPECT_TRUE(torch::allclose(moved->state(s), last->state(s).movedim(-1, 1), 1e-5, 1e-6)) << name << "." << s;
    }
  }
}

TEST(SnnZoo, AliasingAndNaNBehaviourFollowThePythonLibrary) {
  for (const auto& name : kNames) {
    const Expected e = expected(name);
    tt::snn::Neuron layer(tt::snn::preset_options(name, 2));
    const auto y = layer(torch::randn({1, 2}));
    // Q16: non-dual LI-family layers return the mem state itself; R layers store their output
    if (e.family == "LI" && !e.dual) EXPECT_TRUE(y.is_same(layer->state("mem"))) << name;
    if (e.family == "LI" && e.dual) EXPECT_FALSE(y.is_same(layer->state("pos_mem"))) << name;
    if (e.recurrent) EXPECT_TRUE(y.is_same(layer->state("prev_output"))) << name;
    // Q15: dual layers turn a NaN input into 0 (where on comparisons); non-dual ones propagate it
    tt::snn::Neuron fresh(tt::snn::preset_options(name, 1));
    const auto out = fresh(torch::tensor({{std::nan("")}}));
    EXPECT_EQ(std::isnan(out.item<float>()), !e.dual) << name;
  }
}

TEST(SnnZoo, FloatSixtyFourInputsPromoteTheArithmetic) {
  for (const auto& name : kNames) {
    tt::snn::Neuron layer(tt::snn::preset_options(name, 3));
    const auto y = layer(torch::randn({2, 3}, torch::kFloat64));
    EXPECT_EQ(y.dtype(), torch::kFloat64) << name;
    for (const auto& s : layer->state_names()) EXPECT_EQ(layer->state(s).dtype(), torch::kFloat64) << name;
  }
}

TEST(SnnZoo, PrettyPrintNamesTheClassAndTheNonDefaultOptions) {
  for (const auto& name : kNames) {
    std::ostringstream text;
    tt::snn::Neuron(tt::snn::preset_options(name, 3))->pretty_print(text);
    EXPECT_EQ(text.str(), "tt::snn::" + name + "(num_neurons=3)");
  }
  std::ostringstream text;
  tt::snn::RLIT(tt::snn::RLITOptions(4).dim(1).quant_fn(tt::functional::round_ste_fn(0.5)))->pretty_print(text);
  EXPECT_NE(text.str().find("dim=1"), std::string::npos) << text.str();
  EXPECT_NE(text.str().find("round_ste(0.5)"), std::string::npos) << text.str();
}

// ---------------------------------------------------------------------------------------------
// architecture JSON

// JSON equality regardless of member order (the document is a set of keyword arguments).
nlohmann::json unordered(const ordered_json& j) { return nlohmann::json::parse(j.dump()); }

ordered_json document(const std::vector<ordered_json>& children) {
  ordered_json doc = {{"format", "tt-arch/1"}, {"model", {{"type", "Sequential"}, {"children", ordered_json::array()}}}};
  for (const auto& c : children) doc["model"]["children"].push_back(c);
  return doc;
}

// A node with non-default keyword arguments of every kind.
ordered_json rich_node(const std::string& name, int64_t n, int variant) {
  const Expected e = expected(name);
  ordered_json node = {{"type", "snn." + name}, {"num_neurons", n}};
  for (size_t i = 0; i < e.parameters.size(); ++i) {
    const auto& [p, kind] = e.parameters[i];
    if ((i + variant) % 3 == 0) {
      std::vector<double> v;
      for (int64_t k = 0; k < n; ++k) v.push_back(value_for(kind, i, k));
      node[p] = v;  // a list: a 1-D tensor
    } else if ((i + variant) % 3 == 1) {
      node[p] = value_for(kind, i, 0);  // a number
    }
  }
  node["dim"] = variant % 2 == 0 ? -1 : 1;
  for (size_t i = 0; i < e.parameters.size(); ++i)
    if ((i + variant) % 2 == 1) node[e.parameters[i].first + "_rank"] = (i + variant) % 3 == 0 ? 1 : 0;
  for (size_t i = 0; i < e.parameters.size(); ++i)
    if ((i + variant) % 4 < 2) node["learn_" + e.parameters[i].first] = (i + variant) % 4 == 1;
  if (e.family != "LI") {
    if (variant % 2 == 0) node["spike_fn"] = "identity";
    node["quant_fn"] = variant % 3 == 0 ? "round_ste(0.25)" : variant % 3 == 1 ? "stochastic_round_ste(0.5)" : "probabilistic_ste()";
  }
  return node;
}

TEST(SnnArch, DefaultNodesRoundTripToThemselves) {
  std::vector<ordered_json> children;
  for (const auto& name : kNames) children.push_back({{"type", "snn." + name}, {"num_neurons", 3}});
  const auto doc = document(children);
  tt::Sequential model = tt::arch::build(doc);
  EXPECT_EQ(tt::arch::to_json(*model), doc);  // same members, same order
  const auto layers = tt::named_layers(*model);
  ASSERT_EQ(layers.size(), kNames.size());
  for (size_t i = 0; i < kNames.size(); ++i) {
    EXPECT_EQ(layers[i].first, std::to_string(i));
    EXPECT_EQ(layers[i].second->type_name(), "snn." + kNames[i]);
  }
  // state_dict keys as in Python: "<index>.raw_<name>"
  const auto sd = tt::state_dict(*model);
  EXPECT_TRUE(sd.contains("31.raw_neg_rec_weight"));
  EXPECT_TRUE(sd.contains("0.raw_beta"));
}

TEST(SnnArch, NonDefaultKeywordArgumentsRoundTripForEveryPreset) {
  for (int variant = 0; variant < 3; ++variant) {
    std::vector<ordered_json> children;
    for (const auto& name : kNames) {
      children.push_back({{"type", "Linear"}, {"in_features", 4}, {"out_features", 4}, {"bias", variant != 1}});
      children.push_back(rich_node(name, 4, variant));
    }
    const auto doc = document(children);
    tt::Sequential model = tt::arch::build(doc);
    const auto back = tt::arch::to_json(*model);
    EXPECT_EQ(unordered(back), unordered(doc)) << "variant " << variant << "\n" << back.dump() << "\n" << doc.dump();
    // per node, for a readable failure
    for (size_t i = 0; i < children.size() && i < back["model"]["children"].size(); ++i)
      EXPECT_EQ(unordered(back["model"]["children"][i]), unordered(children[i])) << i;
    // building the written document again gives the same parameters
    tt::Sequential again = tt::arch::build(back);
    const auto a = tt::state_dict(*model), b = tt::state_dict(*again);
    EXPECT_EQ(dict_keys(a), dict_keys(b));
    for (const auto& item : a) {
      if (item.key().find("raw_") == std::string::npos) continue;  // Linear weights are random
      EXPECT_TRUE(torch::equal(item.value(), b[item.key()])) << item.key();
    }
  }
}

TEST(SnnArch, KeywordArgumentsMeanWhatTheSpecSays) {
  // a list is a 1-D tensor even with *_rank 0; a number follows *_rank; learn_ false -> buffer
  const auto doc = document({ordered_json{{"type", "snn.DSRLITS"},
                                          {"num_neurons", 3},
                                          {"pos_alpha", {0.2, 0.3, 0.4}},
                                          {"neg_beta", 0.7},
                                          {"bias", -0.25},
                                          {"neg_scale", {2.0, 3.0, 4.0}},
                                          {"dim", 1},
                                          {"pos_alpha_rank", 0},
                                          {"neg_beta_rank", 0},
                                          {"learn_neg_rec_weight", false},
                                          {"learn_bias", true},
                                          {"spike_fn", "identity"},
                                          {"quant_fn", "round_ste(0.5)"}}});
  tt::Sequential model = tt::arch::build(doc);
  auto* layer = tt::named_layers(*model)[0].second;
  const auto sd = tt::state_dict(*model);
  EXPECT_EQ(sd["0.raw_pos_alpha"].sizes(), (std::vector<int64_t>{3}));
  EXPECT_TRUE(torch::allclose(layer->get("pos_alpha"), torch::tensor({0.2, 0.3, 0.4}), 0, 1e-6));
  EXPECT_EQ(sd["0.raw_neg_beta"].dim(), 0);
  EXPECT_NEAR(layer->get("neg_beta").item<double>(), 0.7, 1e-6);
  EXPECT_NEAR(layer->get("bias")[2].item<double>(), -0.25, 1e-6);
  EXPECT_TRUE(torch::equal(sd["0.raw_neg_scale"], torch::tensor({2.0, 3.0, 4.0})));
  EXPECT_EQ(dict_keys(sd).back(), "0.raw_neg_rec_weight");  // the only buffer, last
  EXPECT_EQ(layer->dim(), 1);
  // identity spikes rounded to multiples of 0.5
  const auto y = model->forward(torch::randn({2, 3, 5}) * 3);
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3, 5}));
  auto* neuron = dynamic_cast<tt::snn::NeuronImpl*>(layer);
  ASSERT_NE(neuron, nullptr);
  EXPECT_EQ(neuron->options().spike_fn().name, "identity");
  EXPECT_EQ(neuron->options().quant_fn().name, "round_ste(0.5)");
}

TEST(SnnArch, OptionsBuiltInCppAreDescribedAsJson) {
  tt::Sequential model;
  model->push_back(tt::snn::SLIB(tt::snn::SLIBOptions(3)
                                     .alpha(torch::tensor({0.25, 0.5, 0.75}))
                                     .beta(torch::tensor(0.5))
                                     .threshold(2.0)
                                     .threshold_rank(0)
                                     .learn_bias(false)
                                     .dim(-1)
                                     .quant_fn(tt::functional::round_ste_fn(0.25))));
  const auto j = tt::arch::to_json(*model);
  const ordered_json want = {{"type", "snn.SLIB"},      {"num_neurons", 3},    {"alpha", {0.25, 0.5, 0.75}},
                             {"beta", 0.5},             {"threshold", 2.0},    {"dim", -1},
                             {"threshold_rank", 0},     {"learn_bias", false}, {"quant_fn", "round_ste(0.25)"}};
  EXPECT_EQ(unordered(j["model"]["children"][0]), unordered(want)) << j.dump();
  tt::Sequential again = tt::arch::build(j);
  EXPECT_EQ(unordered(tt::arch::to_json(*again)), unordered(j));
}

// The message of the ArchError thrown for `doc`, or "" if none was thrown.
std::string arch_error(const ordered_json& doc) {
  try {
    tt::arch::build(doc);
  } catch (const tt::ArchError& e) {
    return e.what();
  } catch (const std::exception& e) {
    return std::string("not an ArchError: ") + e.what();
  }
  return "";
}

bool starts_with(const std::string& s, const std::string& prefix) { return s.rfind(prefix, 0) == 0; }

TEST(SnnArch, BadArgumentsNameTheirJsonPath) {
  const ordered_json linear = {{"type", "Linear"}, {"in_features", 3}, {"out_features", 3}};
  auto with = [&](ordered_json node) { return document({linear, node}); };
  const ordered_json lib = {{"type", "snn.LIB"}, {"num_neurons", 3}};
  auto lib_with = [&](const std::string& key, const ordered_json& value) {
    ordered_json node = lib;
    node[key] = value;
    return with(node);
  };
  ordered_json inner = {{"type", "Sequential"}, {"children", ordered_json::array()}};
  inner["children"].push_back(lib);
  inner["children"].push_back({{"type", "snn.DLIT"}, {"num_neurons", 3}, {"neg_beta_rank", "0"}});
  const ordered_json nested = document({linear, inner});
  struct Case {
    ordered_json doc;
    std::string prefix;
  };
  const std::vector<Case> cases = {
      {lib_with("beta_rank", "x"), "model.children[1].beta_rank: "},
      {lib_with("beta_rank", 0.5), "model.children[1].beta_rank: "},
      {lib_with("learn_beta", 1), "model.children[1].learn_beta: "},
      {lib_with("beta", "high"), "model.children[1].beta: "},
      {lib_with("beta", ordered_json::array({0.5, "x", 0.5})), "model.children[1].beta: "},
      {lib_with("spike_fn", "relu"), "model.children[1].spike_fn: "},
      {lib_with("quant_fn", "round_ste(0)"), "model.children[1].quant_fn: "},
      {lib_with("quant_fn", 3), "model.children[1].quant_fn: "},
      {lib_with("dim", "last"), "model.children[1].dim: "},
      {lib_with("alpha", 0.5), "model.children[1].alpha: "},           // not a parameter of LIB
      {lib_with("pos_beta_rank", 0), "model.children[1].pos_beta_rank: "},
      {lib_with("learn_gamma", false), "model.children[1].learn_gamma: "},
      {with({{"type", "snn.LI"}, {"num_neurons", 3}, {"quant_fn", "identity"}}), "model.children[1].quant_fn: "},
      {with({{"type", "snn.LI"}, {"num_neurons", 3}, {"spike_fn", "sigmoid4x"}}), "model.children[1].spike_fn: "},
      {with({{"type", "snn.LIB"}}), "model.children[1].num_neurons: "},
      {with({{"type", "snn.LIB"}, {"num_neurons", 2.5}}), "model.children[1].num_neurons: "},
      {with({{"type", "snn.LIQ"}, {"num_neurons", 3}}), "model.children[1].type: "},
      {nested, "model.children[1].children[1].neg_beta_rank: "},
  };
  for (const auto& c : cases) {
    const std::string message = arch_error(c.doc);
    EXPECT_TRUE(starts_with(message, c.prefix)) << "expected '" << c.prefix << "...', got '" << message << "'\n"
                                                << c.doc.dump();
  }
}

TEST(SnnArch, InvalidValuesNameTheLayerAndTheParameter) {
  const ordered_json linear = {{"type", "Linear"}, {"in_features", 3}, {"out_features", 3}};
  struct Case {
    ordered_json node;
    std::vector<std::string> parts;  // all must appear in the message
  };
  const std::vector<Case> cases = {
      {{{"type", "snn.LIB"}, {"num_neurons", 3}, {"beta", 1.0}}, {"beta", "(0,1)"}},
      {{{"type", "snn.SLI"}, {"num_neurons", 3}, {"alpha", {0.5, 0.0, 0.5}}}, {"alpha", "(0,1)"}},
      {{{"type", "snn.DRLIT"}, {"num_neurons", 3}, {"pos_threshold", -1.0}}, {"pos_threshold", "(0,inf)"}},
      {{{"type", "snn.LIB"}, {"num_neurons", 3}, {"beta_rank", 2}}, {"beta", "rank"}},
      {{{"type", "snn.LIB"}, {"num_neurons", 3}, {"beta", {0.5, 0.5}}}, {"beta", "3 elements"}},
      {{{"type", "snn.LIB"}, {"num_neurons", 0}}, {"num_neurons"}},
  };
  for (const auto& c : cases) {
    const std::string message = arch_error(document({linear, c.node}));
    EXPECT_TRUE(starts_with(message, "model.children[1]")) << message;
    for (const auto& part : c.parts) EXPECT_NE(message.find(part), std::string::npos) << part << " in '" << message << "'";
  }
}

// The header's contract (io/arch.h) says the message starts with the JSON path of the offending
// *value*; for values that parse but are out of range the current messages start with the node's
// path instead ("model.children[1]: snn.LIB: beta rank is not 0 ..."). Disabled until decided.
TEST(SnnArch, OutOfRangeValuesNameTheMemberPath) {
  const ordered_json linear = {{"type", "Linear"}, {"in_features", 3}, {"out_features", 3}};
  EXPECT_TRUE(starts_with(arch_error(document({linear, {{"type", "snn.LIB"}, {"num_neurons", 3}, {"beta_rank", 2}}})),
                          "model.children[1].beta_rank"));
  EXPECT_TRUE(starts_with(arch_error(document({linear, {{"type", "snn.LIB"}, {"num_neurons", 3}, {"beta", 1.0}}})),
                          "model.children[1].beta"));
}

}  // namespace
