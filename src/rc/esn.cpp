#include "tracetorch/rc/esn.h"

#include <map>
#include <sstream>

#include "core/text.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/state_dict.h"

namespace tt::rc {

namespace {

using detail::shape_string;
using detail::join_keys;

std::vector<std::pair<std::string, ReservoirImpl*>> reservoirs_of(torch::nn::Module& root) {
  std::vector<std::pair<std::string, ReservoirImpl*>> out;
  for (auto& [path, layer] : named_layers(root))
    if (auto* r = dynamic_cast<ReservoirImpl*>(layer)) out.emplace_back(path, r);
  return out;
}

// Checks a {reservoir name: [batch, R]} mapping against the model's reservoirs. Returns the
// (reservoir, tensor) pairs to apply; lists unknown names in `unexpected`, reservoirs without an
// entry in `missing`; shape problems are errors (thrown as one LoadError naming every key).
std::vector<std::pair<ReservoirImpl*, torch::Tensor>> match_states(torch::nn::Module& root, const io::TensorDict& states,
                                                                   std::vector<std::string>* missing,
                                                                   std::vector<std::string>* unexpected,
                                                                   const std::string& what) {
  std::map<std::string, ReservoirImpl*> known;
  for (auto& [path, r] : reservoirs_of(root)) known[path] = r;
  std::vector<std::pair<ReservoirImpl*, torch::Tensor>> out;
  std::vector<std::string> errors;
  std::map<std::string, bool> seen;
  for (const auto& item : states) {
    auto found = known.find(item.key());
    if (found == known.end()) {
      if (unexpected) unexpected->push_back(item.key());
      continue;
    }
    seen[item.key()] = true;
    const torch::Tensor& t = item.value();
    const int64_t R = found->second->num_neurons();
    if (t.dim() != 2 || t.size(1) != R) {
      errors.push_back("reservoir state " + item.key() + " must be [batch, " + std::to_string(R) + "], got " +
                       shape_string(t.sizes()));
      continue;
    }
    out.emplace_back(found->second, t);
  }
  if (missing)
    for (const auto& [path, r] : known)
      if (!seen.count(path)) missing->push_back(path);
  if (!errors.empty()) {
    std::string message = what + ": ";
    for (size_t i = 0; i < errors.size(); ++i) message += (i ? "; " : "") + errors[i];
    throw LoadError(message);
  }
  return out;
}

void apply_states(const std::vector<std::pair<ReservoirImpl*, torch::Tensor>>& pairs) {
  for (const auto& [r, t] : pairs) r->set_state(t.to(r->weight_hh.device(), r->weight_hh.scalar_type()));
}

}  // namespace

std::string to_string(ESNKind kind) {
  switch (kind) {
    case ESNKind::Classic: return "classic_esn";
    case ESNKind::Ott: return "ott_esn";
    case ESNKind::Headless: return "headless_esn";
    case ESNKind::Linear: return "linear_esn";
  }
  return "?";
}

// ---------------------------------------------------------------------------------------------
// model

ESNModelImpl::ESNModelImpl(ESNKind kind, int64_t reservoir_size, int64_t feedback_size, int64_t output_size,
                           ESNOptions options)
    : kind_(kind), options_(std::move(options)), feedback_size_(feedback_size) {
  if (feedback_size <= 0) throw ValueError(to_string(kind) + ": feedback_size must be positive");
  const bool with_readout = kind == ESNKind::Classic || kind == ESNKind::Ott;
  if (with_readout && output_size <= 0) throw ValueError(to_string(kind) + ": output_size must be positive");
  ReservoirOptions ro(reservoir_size, feedback_size);
  ro.input_size(0)  // torch_rc's premade models: no driving input, but a [R, 0] weight_input
      .spectral_radius(options_.spectral_radius())
      .leak_rate(options_.leak_rate())
      .activation(kind == ESNKind::Linear ? Activation::Identity : options_.activation())
      .bias(options_.bias())
      .trainable(options_.trainable())
      .topology(options_.topology())
      .feedback_init(options_.feedback_init())
      .bias_init(options_.bias_init())
      .seed(options_.seed())
      .kernel(options_.kernel())
      .dtype(options_.dtype());
  reservoir = register_module(kReservoirName, Reservoir(ro));
  if (with_readout) {
    ReadoutOptions rd(feedback_size + reservoir_size, output_size);
    rd.bias(options_.readout_bias())
        .alpha(options_.readout_alpha())
        .solver(options_.readout_solver())
        .dtype(options_.dtype())
        .seed(options_.seed() ? std::optional<uint64_t>(*options_.seed() + 1) : std::nullopt);
    readout = register_module(kReadoutName, Readout(rd));
  }
}

int64_t ESNModelImpl::feature_size() const {
  const int64_t R = reservoir->num_neurons();
  return has_readout() ? feedback_size_ + R : R;
}

int64_t ESNModelImpl::output_size() const {
  return has_readout() ? readout->options().out_features() : reservoir->num_neurons();
}

torch::Tensor ESNModelImpl::readout_features(const torch::Tensor& feedback, const torch::Tensor& states) const {
  if (!has_readout()) return states;
  torch::Tensor h = states;
  if (kind_ == ESNKind::Ott) {
    // Ott et al. (2018): square every other unit (even indices) to break tanh's odd symmetry.
    const int64_t R = states.size(-1);
    torch::Tensor even = torch::arange(R, torch::TensorOptions().device(states.device())).remainder(2).eq(0);
    h = torch::where(even, states * states, states);
  }
  return torch::cat({feedback.to(states.scalar_type()), h}, -1);
}

torch::Tensor ESNModelImpl::forward(const torch::Tensor& feedback) {
  torch::Tensor states = reservoir->forward(feedback);
  if (!has_readout()) return states;
  return readout->forward(readout_features(feedback, states));
}

void ESNModelImpl::reset_reservoirs() {
  for (auto& [path, r] : reservoirs_of(*this)) r->reset_state();
}

io::TensorDict ESNModelImpl::get_reservoir_states() const {
  io::TensorDict out;
  for (auto& [path, r] : reservoirs_of(const_cast<ESNModelImpl&>(*this))) {
    torch::Tensor s = r->get_state();
    if (s.defined()) out.insert(path, s.detach());
  }
  return out;
}

void ESNModelImpl::set_reservoir_states(const io::TensorDict& states) {
  std::vector<std::string> unexpected;
  auto pairs = match_states(*this, states, nullptr, &unexpected, "set_reservoir_states");
  if (!unexpected.empty()) throw LoadError("set_reservoir_states: no reservoir named " + join_keys(unexpected));
  apply_states(pairs);
}

torch::Tensor ESNModelImpl::warmup(const torch::Tensor& feedback, bool return_outputs) {
  torch::NoGradGuard no_grad;
  torch::Tensor out = forward(feedback);
  return return_outputs ? out : torch::Tensor();
}

torch::Tensor ESNModelImpl::forecast(const torch::Tensor& warmup_inputs, int64_t horizon,
                                     const ForecastOptions& options) {
  torch::NoGradGuard no_grad;
  if (!warmup_inputs.defined() || warmup_inputs.dim() != 3 || warmup_inputs.size(2) != feedback_size_)
    throw ValueError("forecast: warmup must be [batch, steps, " + std::to_string(feedback_size_) + "], got " +
                     (warmup_inputs.defined() ? shape_string(warmup_inputs.sizes()) : std::string("undefined")));
  if (warmup_inputs.size(1) < 1) throw ValueError("forecast: warmup needs at least one step");
  if (horizon < 0) throw ValueError("forecast: horizon must be non-negative, got " + std::to_string(horizon));
  if (output_size() != feedback_size_)
    throw ValueError("forecast: Model design error: feedback input expects " + std::to_string(feedback_size_) +
                     " features, but model output (used as feedback) has " + std::to_string(output_size()) +
                     " features");
  const int64_t B = warmup_inputs.size(0);
  torch::Tensor warm = forward(warmup_inputs);  // [B, W, out]
  torch::Tensor result = torch::empty({B, horizon, output_size()}, warm.options());
  if (horizon > 0) {
    torch::Tensor y = warm.select(1, warm.size(1) - 1);  // the prediction of the step after the warm-up
    result.select(1, 0).copy_(y);
    torch::Tensor feedback = y;
    if (options.initial_feedback().defined()) {
      const torch::Tensor& f = options.initial_feedback();
      if (f.numel() != B * feedback_size_)
        throw ValueError("forecast: initial_feedback must be [batch, 1, F] or [batch, F], got " + shape_string(f.sizes()));
      feedback = f.reshape({B, feedback_size_});
    }
    for (int64_t t = 1; t < horizon; ++t) {
      y = forward(feedback);  // one step: [B, F] -> [B, out]
      result.select(1, t).copy_(y);
      feedback = y;
    }
  }
  if (options.return_warmup()) return torch::cat({warm, result}, 1);
  return result;
}

// ---------------------------------------------------------------------------------------------
// files

void ESNModelImpl::save(const std::string& path, bool include_states) const {
  io::TensorDict params;
  for (const auto& item : tt::state_dict(*this)) params.insert(item.key(), item.value().detach());
  c10::impl::GenericDict top(c10::StringType::get(), c10::AnyType::get());
  top.insert(std::string("state_dict"), io::to_ivalue(params));
  top.insert(std::string("metadata"), c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get()));
  if (include_states) top.insert(std::string("reservoir_states"), io::to_ivalue(get_reservoir_states()));
  io::save_pt(c10::IValue(top), path);
}

LoadReport ESNModelImpl::load(const std::string& path, bool strict, bool load_states) {
  c10::IValue file = io::load_pt(path);  // tt::FileError for a missing or unreadable file
  if (!file.isGenericDict())
    throw FileError(path + ": not an ESN model file: expected a dict with a 'state_dict' entry at the top level");
  auto top = file.toGenericDict();
  auto sd = top.find(std::string("state_dict"));
  if (sd == top.end()) throw FileError(path + ": not an ESN model file: no 'state_dict' entry");
  io::TensorDict params = io::to_tensor_dict(sd->value(), path + ": 'state_dict'");

  // Check the states before changing anything, so that a failing load changes nothing.
  std::vector<std::pair<ReservoirImpl*, torch::Tensor>> states;
  std::vector<std::string> state_missing, state_unexpected;
  bool states_found = false;
  if (load_states) {
    auto rs = top.find(std::string("reservoir_states"));
    if (rs != top.end()) {
      states_found = true;
      io::TensorDict provided = io::to_tensor_dict(rs->value(), path + ": 'reservoir_states'");
      states = match_states(*this, provided, &state_missing, &state_unexpected, path + ": 'reservoir_states'");
    }
  }

  LoadReport report;
  try {
    report = tt::load_state_dict(*this, params, LoadOptions().strict(strict));
  } catch (const LoadError& e) {
    throw LoadError(path + ": " + e.what());
  }
  if (load_states) {
    if (!states_found) {
      report.warnings.push_back("load_states=true but no reservoir states found in checkpoint " + path);
    } else {
      apply_states(states);
      for (const auto& [r, t] : states)
        for (auto& [p, rr] : reservoirs_of(*this))
          if (rr == r) report.loaded.push_back("reservoir_states." + p);
      for (const auto& k : state_missing) report.missing.push_back("reservoir_states." + k);
      for (const auto& k : state_unexpected) report.unexpected.push_back("reservoir_states." + k);
    }
  }
  return report;
}

ESNModel ESNModelImpl::load_from_file(const std::string& path, ESNModel model, bool strict, bool load_states,
                                      LoadReport* report) {
  if (model.is_empty()) throw ValueError("load_from_file: model argument is required");
  LoadReport r = model->load(path, strict, load_states);
  if (report) *report = std::move(r);
  return model;
}

void ESNModelImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::rc::ESNModel(" << to_string(kind_) << ", reservoir_size=" << reservoir->num_neurons()
         << ", feedback_size=" << feedback_size_ << ", output_size=" << output_size() << ")";
}

ESNModel classic_esn(int64_t reservoir_size, int64_t feedback_size, int64_t output_size, ESNOptions options) {
  return ESNModel(ESNKind::Classic, reservoir_size, feedback_size, output_size, std::move(options));
}
ESNModel ott_esn(int64_t reservoir_size, int64_t feedback_size, int64_t output_size, ESNOptions options) {
  return ESNModel(ESNKind::Ott, reservoir_size, feedback_size, output_size, std::move(options));
}
ESNModel headless_esn(int64_t reservoir_size, int64_t feedback_size, ESNOptions options) {
  return ESNModel(ESNKind::Headless, reservoir_size, feedback_size, 0, std::move(options));
}
ESNModel linear_esn(int64_t reservoir_size, int64_t feedback_size, ESNOptions options) {
  return ESNModel(ESNKind::Linear, reservoir_size, feedback_size, 0, std::move(options));
}

// ---------------------------------------------------------------------------------------------
// trainer

SolveInfo ESNTrainer::fit(const torch::Tensor& inputs, const torch::Tensor& targets, int64_t warmup_steps) {
  if (!model_->has_readout()) throw ValueError("ESNTrainer: the model has no readout to fit");
  if (!inputs.defined() || inputs.dim() != 3)
    throw ValueError("ESNTrainer: inputs must be [batch, time, features]");
  const int64_t total = inputs.size(1);
  if (warmup_steps < 0 || warmup_steps >= total)
    throw ValueError("ESNTrainer: warmup_steps (" + std::to_string(warmup_steps) +
                     ") must be less than total sequence length (" + std::to_string(total) + ")");
  begin();
  warmup(inputs.slice(1, 0, warmup_steps));
  accumulate(inputs.slice(1, warmup_steps), targets);
  return finish();
}

void ESNTrainer::begin() {
  if (!model_->has_readout()) throw ValueError("ESNTrainer: the model has no readout to fit");
  model_->reset_reservoirs();
  model_->readout->reset_fit();
}

void ESNTrainer::warmup(const torch::Tensor& inputs) {
  torch::NoGradGuard no_grad;
  model_->reservoir->forward(inputs);
}

void ESNTrainer::accumulate(const torch::Tensor& inputs, const torch::Tensor& targets) {
  if (!targets.defined() || targets.dim() != 3 || targets.size(0) != inputs.size(0) || targets.size(1) != inputs.size(1))
    throw ValueError("ESNTrainer: targets must be [batch, time, out] matching the inputs " +
                     shape_string(inputs.sizes()) + " (after warm-up), got " +
                     (targets.defined() ? shape_string(targets.sizes()) : std::string("undefined")));
  torch::NoGradGuard no_grad;
  torch::Tensor states = model_->reservoir->forward(inputs);
  model_->readout->accumulate(model_->readout_features(inputs, states), targets);
}

SolveInfo ESNTrainer::finish() { return model_->readout->solve(); }

}  // namespace tt::rc
