#include "tracetorch/snn/neuron.h"

#include <set>

#include "tracetorch/core/error.h"

namespace tt::snn {

namespace {

// P(v) and N(v) as in the spec: `where` on comparisons (NaN maps to 0), not clamp.
torch::Tensor positive_part(const torch::Tensor& v) { return torch::where(v >= 0, v, 0.0); }
torch::Tensor negative_part(const torch::Tensor& v) { return torch::where(v <= 0, v, 0.0); }

const char* output_suffix(Output output) {
  switch (output) {
    case Output::LI: return "LI";
    case Output::B: return "LIB";
    case Output::T: return "LIT";
    case Output::TS: return "LITS";
  }
  return "?";
}

void add_group(std::vector<ParameterSpec>& specs, bool dual, const std::string& name, Transform t, double value) {
  if (dual) {
    specs.push_back({"pos_" + name, t, value});
    specs.push_back({"neg_" + name, t, value});
  } else {
    specs.push_back({name, t, value});
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// options

NeuronOptions& NeuronOptions::set_value(const std::string& name, ParamValue v) {
  settings_[name].value = std::move(v);
  return *this;
}
NeuronOptions& NeuronOptions::set_rank(const std::string& name, int64_t r) {
  settings_[name].rank = r;
  return *this;
}
NeuronOptions& NeuronOptions::set_learnable(const std::string& name, bool l) {
  settings_[name].learnable = l;
  return *this;
}

std::string NeuronOptions::class_name() const {
  if (recurrent() && output() == Output::LI)
    throw ValueError("invalid neuron: the recurrent feature needs a firing output (LIB, LIT or LITS)");
  if (ema() && output() != Output::LI) throw ValueError("invalid neuron: the EMA feature exists only for LI outputs");
  std::string name;
  if (dual()) name += "D";
  if (synaptic()) name += "S";
  if (recurrent()) name += "R";
  name += output_suffix(output());
  if (ema()) name += "EMA";
  return name;
}

std::vector<ParameterSpec> neuron_parameters(const NeuronOptions& o) {
  std::vector<ParameterSpec> specs;
  if (o.synaptic()) add_group(specs, o.dual(), "alpha", Transform::Decay, 0.5);
  add_group(specs, o.dual(), "beta", Transform::Decay, 0.9);
  if (o.recurrent()) add_group(specs, o.dual(), "gamma", Transform::Decay, 0.9);
  if (o.output() == Output::B) specs.push_back({"threshold", Transform::Threshold, 1.0});
  if (o.output() == Output::T || o.output() == Output::TS) {
    specs.push_back({"pos_threshold", Transform::Threshold, 1.0});
    specs.push_back({"neg_threshold", Transform::Threshold, 1.0});
  }
  if (o.output() != Output::LI) specs.push_back({"bias", Transform::Bias, 0.0});
  if (o.output() == Output::TS) {
    specs.push_back({"pos_scale", Transform::Identity, 1.0});
    specs.push_back({"neg_scale", Transform::Identity, 1.0});
  }
  if (o.recurrent()) add_group(specs, o.dual(), "rec_weight", Transform::Identity, 0.0);
  return specs;
}

std::vector<std::string> neuron_states(const NeuronOptions& o) {
  std::vector<std::string> states;
  auto add = [&](const std::string& name) {
    if (o.dual()) {
      states.push_back("pos_" + name);
      states.push_back("neg_" + name);
    } else {
      states.push_back(name);
    }
  };
  if (o.synaptic()) add("syn");
  add("mem");
  if (o.recurrent()) {
    add("rec");
    states.push_back("prev_output");
  }
  return states;
}

// ---------------------------------------------------------------------------------------------
// construction

NeuronImpl::NeuronImpl(NeuronOptions options)
    : Cloneable("snn." + options.class_name(), options.num_neurons(), options.dim()), options_(std::move(options)) {
  reset();
}

void NeuronImpl::reset() {
  begin_reset();
  const auto specs = neuron_parameters(options_);
  std::set<std::string> known;
  for (const auto& spec : specs) known.insert(spec.name);
  for (const auto& [name, setting] : options_.settings())
    if (!known.count(name)) throw ValueError(type_name() + " has no parameter '" + name + "'");

  std::map<std::string, int> index;
  for (const auto& spec : specs) {
    auto found = options_.settings().find(spec.name);
    const ParamSetting setting = found == options_.settings().end() ? ParamSetting{} : found->second;
    index[spec.name] = static_cast<int>(register_constrained(spec.name, setting, spec.default_value, spec.transform));
  }
  auto lookup = [&](const std::string& name) { return index.count(name) ? index[name] : -1; };
  auto pair = [&](const std::string& name) {
    return options_.dual() ? Pair{lookup("pos_" + name), lookup("neg_" + name)} : Pair{lookup(name), -1};
  };
  alpha_ = pair("alpha");
  beta_ = pair("beta");
  gamma_ = pair("gamma");
  rec_weight_ = pair("rec_weight");
  scale_ = {lookup("pos_scale"), lookup("neg_scale")};
  threshold_ = options_.output() == Output::B ? Pair{lookup("threshold"), -1}
                                              : Pair{lookup("pos_threshold"), lookup("neg_threshold")};
  bias_ = lookup("bias");

  std::map<std::string, int> state_index;
  for (const auto& name : neuron_states(options_)) state_index[name] = static_cast<int>(register_state(name));
  auto state_pair = [&](const std::string& name) {
    auto at = [&](const std::string& n) { return state_index.count(n) ? state_index[n] : -1; };
    return options_.dual() ? Pair{at("pos_" + name), at("neg_" + name)} : Pair{at(name), -1};
  };
  syn_ = state_pair("syn");
  mem_ = state_pair("mem");
  rec_ = state_pair("rec");
  prev_output_ = state_index.count("prev_output") ? state_index["prev_output"] : -1;
}

void NeuronImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::snn::" << options_.class_name() << "(num_neurons=" << num_neurons();
  if (dim() != -1) stream << ", dim=" << dim();
  if (options_.output() != Output::LI) {
    if (options_.spike_fn().name != "sigmoid4x") stream << ", spike_fn=" << options_.spike_fn().name;
    if (!options_.quant_fn().is_identity()) stream << ", quant_fn=" << options_.quant_fn().name;
  }
  if (is_compiled()) stream << ", compiled";
  stream << ")";
}

// ---------------------------------------------------------------------------------------------
// the generic step (spec 5.3); the order and association of every op follows the spec so that
// results are bit-identical to the Python library.

torch::Tensor NeuronImpl::forward(const torch::Tensor& x_in) {
  ensure_states(x_in);
  const FeatureAxis axis = feature_axis(x_in);
  auto work = [&](const torch::Tensor& t) { return axis.in(t); };
  auto store = [&](int index, const torch::Tensor& t) { state_at(index) = axis.out(t); };
  auto param = [&](int index) { return constrained(static_cast<size_t>(index)); };
  const bool dual = options_.dual();

  const torch::Tensor x = work(x_in);

  // (b) synaptic stage -> drive
  torch::Tensor drive = x;
  if (options_.synaptic()) {
    if (dual) {
      const torch::Tensor a_pos = param(alpha_.pos), a_neg = param(alpha_.neg);
      torch::Tensor pos = work(state_at(syn_.pos)).mul(a_pos).add(positive_part(x).mul(torch::rsub(a_pos, 1)));
      torch::Tensor neg = work(state_at(syn_.neg)).mul(a_neg).add(negative_part(x).mul(torch::rsub(a_neg, 1)));
      store(syn_.pos, pos);
      store(syn_.neg, neg);
      drive = pos.add(neg);
    } else {
      const torch::Tensor a = param(alpha_.pos);
      torch::Tensor syn = work(state_at(syn_.pos)).mul(a).add(x.mul(torch::rsub(a, 1)));
      store(syn_.pos, syn);
      drive = syn;
    }
  }

  // (c) recurrent stage -> trace of the previous output
  torch::Tensor rec;
  if (options_.recurrent()) {
    const torch::Tensor prev = work(state_at(prev_output_));
    if (dual) {
      const torch::Tensor g_pos = param(gamma_.pos), g_neg = param(gamma_.neg);
      torch::Tensor pos = work(state_at(rec_.pos)).mul(g_pos).add(positive_part(prev).mul(torch::rsub(g_pos, 1)));
      torch::Tensor neg = work(state_at(rec_.neg)).mul(g_neg).add(negative_part(prev).mul(torch::rsub(g_neg, 1)));
      store(rec_.pos, pos);
      store(rec_.neg, neg);
      rec = pos.add(neg);
    } else {
      const torch::Tensor g = param(gamma_.pos);
      rec = work(state_at(rec_.pos)).mul(g).add(prev.mul(torch::rsub(g, 1)));
      store(rec_.pos, rec);
    }
  }

  // (d) membrane stage
  torch::Tensor mem_pos, mem_neg, membrane;
  if (dual) {
    const torch::Tensor b_pos = param(beta_.pos), b_neg = param(beta_.neg);
    const torch::Tensor d_pos = positive_part(drive), d_neg = negative_part(drive);
    if (options_.ema()) {
      mem_pos = work(state_at(mem_.pos)).mul(b_pos).add(d_pos.mul(torch::rsub(b_pos, 1)));
      mem_neg = work(state_at(mem_.neg)).mul(b_neg).add(d_neg.mul(torch::rsub(b_neg, 1)));
    } else {
      torch::Tensor u_pos = d_pos, u_neg = d_neg;
      if (options_.recurrent()) {
        u_pos = positive_part(rec).mul(param(rec_weight_.pos)).add(d_pos);
        u_neg = negative_part(rec).mul(param(rec_weight_.neg)).add(d_neg);
      }
      mem_pos = work(state_at(mem_.pos)).mul(b_pos).add(u_pos);
      mem_neg = work(state_at(mem_.neg)).mul(b_neg).add(u_neg);
    }
    membrane = mem_pos.add(mem_neg);
  } else {
    const torch::Tensor b = param(beta_.pos);
    if (options_.ema()) {
      mem_pos = work(state_at(mem_.pos)).mul(b).add(drive.mul(torch::rsub(b, 1)));
    } else {
      const torch::Tensor u = options_.recurrent() ? rec.mul(param(rec_weight_.pos)).add(drive) : drive;
      mem_pos = work(state_at(mem_.pos)).mul(b).add(u);
    }
    membrane = mem_pos;
  }

  // (e) output stage
  if (options_.output() == Output::LI) {
    store(mem_.pos, mem_pos);
    if (dual) {
      store(mem_.neg, mem_neg);
      return axis.out(membrane);
    }
    return state_at(mem_.pos);  // the state itself, as in Python (Quirk Q16)
  }

  const auto& f = options_.spike_fn();
  const auto& q = options_.quant_fn();
  const torch::Tensor bias = param(bias_);
  // Subtracts spikes * threshold from the membrane(s); dual layers split it in halves.
  auto reset = [&](const torch::Tensor& spikes, const torch::Tensor& threshold) {
    if (dual) {
      mem_pos = mem_pos.sub(spikes.mul(threshold).mul(0.5));
      mem_neg = mem_neg.sub(spikes.mul(threshold).mul(0.5));
    } else {
      mem_pos = mem_pos.sub(spikes.mul(threshold));
    }
  };

  torch::Tensor out;
  if (options_.output() == Output::B) {
    const torch::Tensor theta = param(threshold_.pos);
    torch::Tensor spikes = q(f(membrane.sub(theta).add(bias)));
    reset(spikes, theta);
    out = spikes;
  } else {
    const torch::Tensor theta_pos = param(threshold_.pos), theta_neg = param(threshold_.neg);
    torch::Tensor s_pos = q(f(membrane.sub(theta_pos).add(bias)));
    torch::Tensor s_neg = torch::neg(q(f(torch::neg(theta_neg).sub(membrane).sub(bias))));
    reset(s_pos, theta_pos);
    reset(s_neg, theta_neg);
    if (options_.output() == Output::TS) {
      s_pos = s_pos.mul(param(scale_.pos));
      s_neg = s_neg.mul(param(scale_.neg));
    }
    out = s_pos.add(s_neg);
  }
  store(mem_.pos, mem_pos);
  if (dual) store(mem_.neg, mem_neg);
  out = axis.out(out);
  if (options_.recurrent()) state_at(prev_output_) = out;
  return out;
}

}  // namespace tt::snn
