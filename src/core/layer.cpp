#include "tracetorch/core/layer.h"

#include "text.h"
#include "tracetorch/core/error.h"

namespace tt {

namespace {

using detail::shape_string;

// LibTorch can remove a parameter (parameters_ is protected) but not a buffer (buffers_ is
// private), while compile / decompile must delete `raw_NAME` / `NAME` as PyTorch does so that
// key order and to() stay right. C++ lets an explicit template instantiation name a private
// member; this yields a pointer to Module::buffers_.
template <typename Tag, typename Tag::type Member>
struct PrivateMember {
  friend typename Tag::type member_pointer(Tag) { return Member; }
};
struct ModuleBuffers {
  using type = torch::OrderedDict<std::string, torch::Tensor> torch::nn::Module::*;
  friend type member_pointer(ModuleBuffers);
};
template struct PrivateMember<ModuleBuffers, &torch::nn::Module::buffers_>;

void erase_buffer(torch::nn::Module& module, const std::string& name) {
  (module.*member_pointer(ModuleBuffers{})).erase(name);
}

// Module::children_ is private too; reset() must be able to register children again.
struct ModuleChildren {
  using type = torch::OrderedDict<std::string, std::shared_ptr<torch::nn::Module>> torch::nn::Module::*;
  friend type member_pointer(ModuleChildren);
};
template struct PrivateMember<ModuleChildren, &torch::nn::Module::children_>;

}  // namespace

Layer::Layer(std::string type_name, int64_t num_neurons, int64_t dim)
    : torch::nn::Module(type_name),
      type_name_(std::move(type_name)),
      num_neurons_(num_neurons),
      dim_(dim),
      input_features_(num_neurons) {
  if (num_neurons <= 0)
    throw ValueError(type_name_ + ": num_neurons must be positive, got " + std::to_string(num_neurons));
}

void Layer::begin_reset() {
  parameters_.clear();
  (this->*member_pointer(ModuleBuffers{})).clear();
  (this->*member_pointer(ModuleChildren{})).clear();
  state_names_.clear();
  states_.clear();
  constrained_.clear();
  compiled_ = false;
}

// ---------------------------------------------------------------------------------------------
// whole sequences

torch::Tensor Layer::forward_sequence(const torch::Tensor& x) {
  if (x.dim() < 1 || x.size(0) == 0)
    throw ValueError(type_name_ + ": forward_sequence takes a time-major input [T, ...] with T >= 1, got " +
                     shape_string(x.sizes()));
  std::vector<torch::Tensor> outputs;
  outputs.reserve(static_cast<size_t>(x.size(0)));
  for (int64_t t = 0; t < x.size(0); ++t) outputs.push_back(forward_step(x[t]));
  return torch::stack(outputs);
}

torch::Tensor Layer::forward_step(const torch::Tensor& /*x*/) {
  throw Error(type_name_ + " has no single-step forward(x); use its forward_sequence");
}

// ---------------------------------------------------------------------------------------------
// states

size_t Layer::register_state(const std::string& name) {
  if (has_state(name)) throw Error(type_name_ + ": state '" + name + "' registered twice");
  state_names_.push_back(name);
  states_.emplace_back();
  return states_.size() - 1;
}

bool Layer::has_state(const std::string& name) const {
  for (const auto& n : state_names_)
    if (n == name) return true;
  return false;
}

size_t Layer::state_index(const std::string& name) const {
  for (size_t i = 0; i < state_names_.size(); ++i)
    if (state_names_[i] == name) return i;
  throw Error(type_name_ + " has no state '" + name + "'");
}

const torch::Tensor& Layer::state(const std::string& name) const { return states_[state_index(name)]; }

void Layer::set_state(const std::string& name, torch::Tensor value) {
  states_[state_index(name)] = std::move(value);
}

void Layer::zero_states() {
  for (auto& s : states_) s = torch::Tensor();
}

void Layer::detach_states() {
  for (auto& s : states_)
    if (s.defined()) s = s.detach();
}

int64_t Layer::resolve_dim(int64_t rank) const {
  int64_t d = dim_ < 0 ? dim_ + rank : dim_;
  if (d < 0 || d >= rank)
    throw ValueError(type_name_ + ": dim " + std::to_string(dim_) + " is out of range for an input of rank " +
                     std::to_string(rank));
  return d;
}

std::vector<int64_t> Layer::initial_state_shape(size_t /*index*/, const torch::Tensor& x) const {
  std::vector<int64_t> shape(x.sizes().begin(), x.sizes().end());
  shape[resolve_dim(x.dim())] = num_neurons_;
  return shape;
}

std::string Layer::describe() const { return type_name_ + "(" + std::to_string(num_neurons_) + ")"; }

void Layer::validate_input(const torch::Tensor& x) const {
  if (!x.defined()) throw ValueError(describe() + ": the input is an undefined tensor");
  const int64_t d = resolve_dim(x.dim());
  if (input_features_ >= 0 && x.size(d) != input_features_)
    throw ValueError(describe() + ": expected " + std::to_string(input_features_) + " features on axis " +
                     std::to_string(dim_) + ", got an input of shape " + shape_string(x.sizes()));
  // Every axis of the input but `dim` is a batch axis that the states share (allocation-free:
  // this runs on every step). Python broadcasts a batch-1 state instead (Quirk Q14); we refuse.
  for (size_t i = 0; i < states_.size(); ++i) {
    const torch::Tensor& s = states_[i];
    if (!s.defined()) continue;
    bool fits = s.dim() >= x.dim();
    for (int64_t a = 0; fits && a < x.dim(); ++a) fits = a == d || s.size(a) == x.size(a);
    if (!fits)
      throw ValueError(describe() + ": state '" + state_names_[i] + "' has shape " + shape_string(s.sizes()) +
                       ", which does not fit an input of shape " + shape_string(x.sizes()) +
                       " (the batch shape changed?); call zero_states() before changing the batch size, or load "
                       "states of the matching shape");
  }
}

void Layer::ensure_states(const torch::Tensor& x) {
  validate_input(x);
  for (size_t i = 0; i < states_.size(); ++i) {
    if (!states_[i].defined()) states_[i] = torch::zeros(initial_state_shape(i, x), x.options());
  }
}

std::optional<std::string> Layer::check_state_shape(size_t /*index*/, torch::IntArrayRef sizes) const {
  const auto rank = static_cast<int64_t>(sizes.size());
  const int64_t d = dim_ < 0 ? dim_ + rank : dim_;
  if (d < 0 || d >= rank)
    return "a tensor of shape " + shape_string(sizes) + " has no axis " + std::to_string(dim_);
  if (sizes[d] != num_neurons_)
    return "axis " + std::to_string(dim_) + " must have " + std::to_string(num_neurons_) + " entries, got shape " +
           shape_string(sizes);
  return std::nullopt;
}

// ---------------------------------------------------------------------------------------------
// constrained parameters

size_t Layer::register_constrained(const std::string& name, const ParamSetting& setting, double default_value,
                                   Transform transform) {
  const int64_t rank = setting.rank.value_or(1);
  const bool learnable = setting.learnable.value_or(true);
  torch::Tensor value;
  if (setting.value && setting.value->is_tensor()) {
    value = setting.value->tensor().detach();
    if (value.dim() == 1 && value.size(0) != num_neurons_)
      throw ValueError(type_name_ + ": " + name + " does not have " + std::to_string(num_neurons_) +
                       " elements (got " + std::to_string(value.size(0)) + ")");
    if (value.dim() > 1)
      throw ValueError(type_name_ + ": rank (.ndim) of provided " + name + " is not 0 (scalar) or 1 (vector)");
  } else {
    const double number = setting.value ? setting.value->number() : default_value;
    if (rank == 0) {
      value = torch::tensor(number, torch::kFloat32);
    } else if (rank == 1) {
      value = torch::full({num_neurons_}, number, torch::kFloat32);
    } else {
      throw ValueError(type_name_ + ": " + name + " rank is not 0 (scalar) or 1 (vector) (got " +
                       std::to_string(rank) + ")");
    }
  }
  torch::Tensor raw;
  try {
    raw = functional::to_raw(transform, value).detach().clone();
  } catch (const ValueError& e) {
    throw ValueError(type_name_ + ": " + name + ": " + e.what());
  }
  const std::string key = "raw_" + name;
  if (learnable) {
    raw = register_parameter(key, raw, /*requires_grad=*/true);
  } else {
    raw = register_buffer(key, raw);
  }
  constrained_.push_back({name, transform, learnable, learnable, raw, torch::Tensor()});
  return constrained_.size() - 1;
}

torch::Tensor Layer::constrained(size_t index) const {
  const auto& c = constrained_[index];
  // Recomputed on every access, as in Python. (A cache keyed on the raw tensor's version counter
  // would go stale: writes through Tensor::data(), as optimizers do, bypass that counter.)
  // compile() is the fast path for inference.
  return compiled_ ? c.compiled : functional::activate(c.transform, c.raw);
}

size_t Layer::constrained_index(const std::string& name) const {
  for (size_t i = 0; i < constrained_.size(); ++i)
    if (constrained_[i].name == name) return i;
  throw Error(type_name_ + " has no parameter '" + name + "'");
}

std::vector<std::string> Layer::parameter_names() const {
  std::vector<std::string> names;
  for (const auto& c : constrained_) names.push_back(c.name);
  return names;
}

torch::Tensor Layer::get(const std::string& name) const { return constrained(constrained_index(name)); }

bool Layer::is_learnable(const std::string& name) const {
  const auto& c = constrained_[constrained_index(name)];
  return !compiled_ && c.raw.requires_grad();
}

void Layer::compile() {
  if (compiled_ || constrained_.empty()) return;
  for (auto& c : constrained_) {
    torch::Tensor value = functional::activate(c.transform, c.raw).detach().clone();
    c.learnable = c.is_parameter && c.raw.requires_grad();
    const std::string key = "raw_" + c.name;
    if (c.is_parameter) {
      parameters_.erase(key);
    } else {
      erase_buffer(*this, key);
    }
    c.compiled = register_buffer(c.name, value);
  }
  compiled_ = true;
}

void Layer::decompile() {
  if (!compiled_) return;
  // Compute every raw value first, so that a failing inverse leaves the layer compiled.
  std::vector<torch::Tensor> raws;
  for (const auto& c : constrained_) {
    try {
      raws.push_back(functional::to_raw(c.transform, c.compiled).detach().clone());
    } catch (const ValueError& e) {
      throw ValueError(type_name_ + ": cannot decompile " + c.name + ": " + e.what());
    }
  }
  for (size_t i = 0; i < constrained_.size(); ++i) {
    auto& c = constrained_[i];
    erase_buffer(*this, c.name);
    const std::string key = "raw_" + c.name;
    c.raw = c.is_parameter ? register_parameter(key, raws[i], c.learnable) : register_buffer(key, raws[i]);
    c.compiled = torch::Tensor();
  }
  compiled_ = false;
}

}  // namespace tt
