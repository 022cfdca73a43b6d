// Optimizer state in PyTorch's layout. Each supported optimizer is described once (its Python
// hyperparameter keys and its per-parameter state keys); saving and loading walk that description.
#include "tracetorch/io/optimizer_state.h"

#include <functional>
#include <map>
#include <sstream>
#include <type_traits>

#include "core/text.h"
#include "optimizer_state_prepare.h"
#include "value_kind.h"
#include "tracetorch/core/error.h"
#include "tracetorch/io/pt_file.h"

namespace tt {

namespace {

namespace optim = torch::optim;
using detail::shape_string;
using io::detail::describe_value;

// ---- hyperparameters --------------------------------------------------------------------------

enum class FieldKind { Number, Bool, Betas };
using Betas = std::tuple<double, double>;

struct OptionField {
  const char* key;
  FieldKind kind;
  std::function<c10::IValue(const optim::OptimizerOptions&)> get;
  std::function<void(optim::OptimizerOptions&, const c10::IValue&)> set;  // given a checked value
};

// One field of an options struct: `member` is the TORCH_ARG accessor's name.
#define TT_OPTION(Options, key, member, kind, Type)                                                         \
  OptionField {                                                                                             \
    key, kind, [](const optim::OptimizerOptions& o) { return to_ivalue(static_cast<const Options&>(o).member()); }, \
        [](optim::OptimizerOptions& o, const c10::IValue& v) { static_cast<Options&>(o).member(from_ivalue<Type>(v)); } \
  }

c10::IValue to_ivalue(double v) { return c10::IValue(v); }
c10::IValue to_ivalue(bool v) { return c10::IValue(v); }
c10::IValue to_ivalue(const Betas& v) {
  return c10::ivalue::Tuple::create({c10::IValue(std::get<0>(v)), c10::IValue(std::get<1>(v))});
}

double number(const c10::IValue& v) { return v.isDouble() ? v.toDouble() : static_cast<double>(v.toInt()); }

template <typename T>
T from_ivalue(const c10::IValue& v);
template <>
double from_ivalue<double>(const c10::IValue& v) { return number(v); }
template <>
bool from_ivalue<bool>(const c10::IValue& v) { return v.toBool(); }
template <>
Betas from_ivalue<Betas>(const c10::IValue& v) {
  const auto items = v.isTuple() ? v.toTupleRef().elements().vec() : v.toListRef().vec();
  return {number(items[0]), number(items[1])};
}

// ---- per-parameter state ------------------------------------------------------------------------

// A parameter's state as PyTorch names it: an optional step count and named tensors.
struct StateValues {
  std::optional<int64_t> step;
  std::vector<std::pair<std::string, at::Tensor>> tensors;  // defined tensors only, Python's order
  const at::Tensor* find(const std::string& key) const {
    for (const auto& [k, t] : tensors)
      if (k == key) return &t;
    return nullptr;
  }
};

struct Family {
  const char* name;
  std::vector<OptionField> options;
  bool has_step;
  bool step_is_tensor;  // Python's Adam keeps `step` as a float tensor, RMSprop as an int
  std::vector<const char*> tensor_keys;
  // Whether `key` must be present for the optimizer to step with these options.
  std::function<bool(const optim::OptimizerOptions&, const std::string& key)> required;
  std::function<StateValues(const optim::OptimizerParamState&)> read;
  std::function<std::unique_ptr<optim::OptimizerParamState>(const StateValues&)> make;
};

at::Tensor tensor_or_undefined(const StateValues& v, const char* key) {
  const at::Tensor* t = v.find(key);
  return t ? *t : at::Tensor();
}

void add_defined(StateValues& v, const char* key, const at::Tensor& t) {
  if (t.defined()) v.tensors.emplace_back(key, t);
}

// Adam and AdamW share their state and hyperparameter names.
template <typename Options, typename State>
Family adam_family(const char* name) {
  Family f;
  f.name = name;
  f.options = {TT_OPTION(Options, "lr", lr, FieldKind::Number, double),
               TT_OPTION(Options, "betas", betas, FieldKind::Betas, Betas),
               TT_OPTION(Options, "eps", eps, FieldKind::Number, double),
               TT_OPTION(Options, "weight_decay", weight_decay, FieldKind::Number, double),
               TT_OPTION(Options, "amsgrad", amsgrad, FieldKind::Bool, bool)};
  f.has_step = true;
  f.step_is_tensor = true;
  f.tensor_keys = {"exp_avg", "exp_avg_sq", "max_exp_avg_sq"};
  f.required = [](const optim::OptimizerOptions& o, const std::string& key) {
    return key != "max_exp_avg_sq" || static_cast<const Options&>(o).amsgrad();
  };
  f.read = [](const optim::OptimizerParamState& s) {
    const auto& state = static_cast<const State&>(s);
    StateValues v;
    v.step = state.step();
    add_defined(v, "exp_avg", state.exp_avg());
    add_defined(v, "exp_avg_sq", state.exp_avg_sq());
    add_defined(v, "max_exp_avg_sq", state.max_exp_avg_sq());
    return v;
  };
  f.make = [](const StateValues& v) {
    auto state = std::make_unique<State>();
    state->step(*v.step);
    state->exp_avg(tensor_or_undefined(v, "exp_avg"));
    state->exp_avg_sq(tensor_or_undefined(v, "exp_avg_sq"));
    state->max_exp_avg_sq(tensor_or_undefined(v, "max_exp_avg_sq"));
    return std::unique_ptr<optim::OptimizerParamState>(std::move(state));
  };
  return f;
}

Family sgd_family() {
  using Options = optim::SGDOptions;
  Family f;
  f.name = "SGD";
  f.options = {TT_OPTION(Options, "lr", lr, FieldKind::Number, double),
               TT_OPTION(Options, "momentum", momentum, FieldKind::Number, double),
               TT_OPTION(Options, "dampening", dampening, FieldKind::Number, double),
               TT_OPTION(Options, "weight_decay", weight_decay, FieldKind::Number, double),
               TT_OPTION(Options, "nesterov", nesterov, FieldKind::Bool, bool)};
  f.has_step = false;
  f.step_is_tensor = false;
  f.tensor_keys = {"momentum_buffer"};
  // Python stores `momentum_buffer: None` without momentum; an entry without a buffer is no state.
  f.required = [](const optim::OptimizerOptions&, const std::string&) { return true; };
  f.read = [](const optim::OptimizerParamState& s) {
    StateValues v;
    add_defined(v, "momentum_buffer", static_cast<const optim::SGDParamState&>(s).momentum_buffer());
    return v;
  };
  f.make = [](const StateValues& v) {
    auto state = std::make_unique<optim::SGDParamState>();
    state->momentum_buffer(tensor_or_undefined(v, "momentum_buffer"));
    return std::unique_ptr<optim::OptimizerParamState>(std::move(state));
  };
  return f;
}

Family rmsprop_family() {
  using Options = optim::RMSpropOptions;
  Family f;
  f.name = "RMSprop";
  f.options = {TT_OPTION(Options, "lr", lr, FieldKind::Number, double),
               TT_OPTION(Options, "alpha", alpha, FieldKind::Number, double),
               TT_OPTION(Options, "eps", eps, FieldKind::Number, double),
               TT_OPTION(Options, "weight_decay", weight_decay, FieldKind::Number, double),
               TT_OPTION(Options, "momentum", momentum, FieldKind::Number, double),
               TT_OPTION(Options, "centered", centered, FieldKind::Bool, bool)};
  f.has_step = true;
  f.step_is_tensor = false;
  f.tensor_keys = {"square_avg", "momentum_buffer", "grad_avg"};
  f.required = [](const optim::OptimizerOptions& o, const std::string& key) {
    const auto& options = static_cast<const Options&>(o);
    if (key == "momentum_buffer") return options.momentum() > 0;
    if (key == "grad_avg") return options.centered();
    return true;
  };
  f.read = [](const optim::OptimizerParamState& s) {
    const auto& state = static_cast<const optim::RMSpropParamState&>(s);
    StateValues v;
    v.step = state.step();
    add_defined(v, "square_avg", state.square_avg());
    add_defined(v, "momentum_buffer", state.momentum_buffer());
    add_defined(v, "grad_avg", state.grad_avg());
    return v;
  };
  f.make = [](const StateValues& v) {
    auto state = std::make_unique<optim::RMSpropParamState>();
    state->step(*v.step);
    state->square_avg(tensor_or_undefined(v, "square_avg"));
    state->momentum_buffer(tensor_or_undefined(v, "momentum_buffer"));
    state->grad_avg(tensor_or_undefined(v, "grad_avg"));
    return std::unique_ptr<optim::OptimizerParamState>(std::move(state));
  };
  return f;
}

#undef TT_OPTION

const Family& family_of(const optim::Optimizer& optimizer) {
  static const Family adam = adam_family<optim::AdamOptions, optim::AdamParamState>("Adam");
  static const Family adamw = adam_family<optim::AdamWOptions, optim::AdamWParamState>("AdamW");
  static const Family sgd = sgd_family();
  static const Family rmsprop = rmsprop_family();
  if (dynamic_cast<const optim::Adam*>(&optimizer)) return adam;
  if (dynamic_cast<const optim::AdamW*>(&optimizer)) return adamw;
  if (dynamic_cast<const optim::SGD*>(&optimizer)) return sgd;
  if (dynamic_cast<const optim::RMSprop*>(&optimizer)) return rmsprop;
  throw ValueError("optimizer state: only torch::optim::Adam, AdamW, SGD and RMSprop are supported");
}

// LibTorch keys an optimizer's state by the parameter's TensorImpl (a printed pointer in 1.13).
using StateMap = std::decay_t<decltype(std::declval<optim::Optimizer&>().state())>;
template <typename Key = typename StateMap::key_type>
Key state_key(const at::Tensor& param) {
  if constexpr (std::is_same_v<Key, std::string>) {
    std::ostringstream out;
    out << param.unsafeGetTensorImpl();
    return out.str();
  } else {
    return Key(param.unsafeGetTensorImpl());
  }
}

// Python's Optimizer.load_state_dict ignores these group entries or uses them only in Python.
bool python_only_option(const std::string& key) {
  return key == "foreach" || key == "capturable" || key == "differentiable" || key == "fused" ||
         key == "initial_lr" || key == "maximize";
}


const c10::IValue* dict_get(const c10::impl::GenericDict& dict, const std::string& key) {
  for (const auto& entry : dict)
    if (entry.key().isString() && entry.key().toStringRef() == key) return &entry.value();
  return nullptr;
}

bool valid_option(FieldKind kind, const c10::IValue& v) {
  switch (kind) {
    case FieldKind::Number: return (v.isDouble() || v.isInt()) && !v.isBool();
    case FieldKind::Bool: return v.isBool();
    case FieldKind::Betas: {
      if (!v.isTuple() && !v.isList()) return false;
      const auto items = v.isTuple() ? v.toTupleRef().elements().vec() : v.toListRef().vec();
      return items.size() == 2 && valid_option(FieldKind::Number, items[0]) && valid_option(FieldKind::Number, items[1]);
    }
  }
  return false;
}

// A step count: Python's Adam writes a float tensor (tensor(10.)), RMSprop an int.
std::optional<int64_t> step_count(const c10::IValue& v) {
  double value = 0;
  if (v.isInt()) {
    value = static_cast<double>(v.toInt());
  } else if (v.isDouble()) {
    value = v.toDouble();
  } else if (v.isTensor() && v.toTensor().defined() && v.toTensor().numel() == 1) {
    value = v.toTensor().to(torch::kCPU, torch::kDouble).item<double>();
  } else {
    return std::nullopt;
  }
  if (!(value >= 0) || value > 9.0e15 || value != static_cast<double>(static_cast<int64_t>(value))) return std::nullopt;
  return static_cast<int64_t>(value);
}

}  // namespace

c10::IValue optimizer_state_dict(const torch::optim::Optimizer& optimizer) {
  const Family& family = family_of(optimizer);
  c10::impl::GenericDict state(c10::IntType::get(), c10::AnyType::get());
  c10::impl::GenericList groups(c10::AnyType::get());
  int64_t index = 0;
  for (const auto& group : optimizer.param_groups()) {
    c10::impl::GenericDict out(c10::StringType::get(), c10::AnyType::get());
    for (const auto& field : family.options) out.insert(field.key, field.get(group.options()));
    c10::impl::GenericList params(c10::IntType::get());
    for (const auto& param : group.params()) {
      params.push_back(index);
      auto found = optimizer.state().find(state_key(param));
      if (found != optimizer.state().end()) {
        const StateValues values = family.read(*found->second);
        c10::impl::GenericDict entry(c10::StringType::get(), c10::AnyType::get());
        if (family.has_step && values.step) {
          if (family.step_is_tensor) {
            entry.insert("step", torch::tensor(static_cast<float>(*values.step)));
          } else {
            entry.insert("step", *values.step);
          }
        }
        for (const auto& [key, tensor] : values.tensors) entry.insert(key, tensor);
        state.insert(index, entry);
      }
      ++index;
    }
    out.insert("params", params);
    groups.push_back(out);
  }
  c10::impl::GenericDict result(c10::StringType::get(), c10::AnyType::get());
  result.insert("state", state);
  result.insert("param_groups", groups);
  return result;
}

namespace detail {

void PreparedOptimizerState::apply(torch::optim::Optimizer& optimizer) {
  auto& groups = optimizer.param_groups();
  for (size_t g = 0; g < groups.size(); ++g) groups[g].set_options(std::move(group_options[g]));
  optimizer.state().clear();
  for (auto& item : states) optimizer.state()[state_key(item.param)] = std::move(item.state);
}

PreparedOptimizerState prepare_optimizer_state(const torch::optim::Optimizer& optimizer, const c10::IValue& value,
                                               const std::string& what) {
  const Family& family = family_of(optimizer);
  const std::string where = what + " (" + family.name + ")";
  PreparedOptimizerState prepared;
  detail::ProblemList errors;
  auto fail = [&](const std::string& problem) {
    errors.add(problem);
    errors.throw_if_any(where);
  };

  if (!value.isGenericDict()) fail("expected a dict with 'state' and 'param_groups', found " + describe_value(value));
  const auto top = value.toGenericDict();
  const c10::IValue* state = dict_get(top, "state");
  const c10::IValue* groups_value = dict_get(top, "param_groups");
  if (state == nullptr || groups_value == nullptr) fail("expected a dict with 'state' and 'param_groups'");
  if (!state->isGenericDict()) fail("'state' is " + describe_value(*state) + ", expected a dict");
  if (!groups_value->isList()) fail("'param_groups' is " + describe_value(*groups_value) + ", expected a list");

  const auto& groups = optimizer.param_groups();
  const auto saved_groups = groups_value->toListRef();
  if (saved_groups.size() != groups.size())
    fail("the file has " + std::to_string(saved_groups.size()) + " parameter groups, the optimizer has " +
         std::to_string(groups.size()));

  // File index -> (parameter, its group's new options).
  std::map<int64_t, std::pair<at::Tensor, const optim::OptimizerOptions*>> params;
  for (size_t g = 0; g < groups.size(); ++g) {
    const std::string group_name = "param_groups[" + std::to_string(g) + "]";
    const c10::IValue& saved = saved_groups[g];
    if (!saved.isGenericDict()) fail(group_name + " is " + describe_value(saved) + ", expected a dict");
    const auto saved_dict = saved.toGenericDict();
    std::unique_ptr<optim::OptimizerOptions> options = groups[g].options().clone();
    for (const auto& entry : saved_dict) {
      if (!entry.key().isString()) {
        errors.add(group_name + " has a key that is " + describe_value(entry.key()));
        continue;
      }
      const std::string& key = entry.key().toStringRef();
      if (key == "params") continue;
      bool known = false;
      for (const auto& field : family.options) {
        if (key != field.key) continue;
        known = true;
        if (valid_option(field.kind, entry.value())) {
          field.set(*options, entry.value());
        } else {
          errors.add(group_name + "." + key + " is " + describe_value(entry.value()) +
                     (field.kind == FieldKind::Bool ? ", expected a bool" : field.kind == FieldKind::Betas ? ", expected a pair of numbers" : ", expected a number"));
        }
      }
      if (known) continue;
      if (key == "maximize" && entry.value().isBool() && entry.value().toBool()) {
        errors.add(group_name + ".maximize is True, which LibTorch's " + std::string(family.name) + " cannot do");
      } else if (!python_only_option(key)) {
        prepared.report.warnings.push_back(group_name + "." + key + " is not a " + family.name + " option; ignored");
      } else if (key == "initial_lr") {
        prepared.report.warnings.push_back(group_name + ".initial_lr (a Python LR scheduler's) ignored");
      }
    }
    const c10::IValue* saved_params = dict_get(saved_dict, "params");
    if (saved_params == nullptr || !saved_params->isList()) {
      errors.add(group_name + " has no 'params' list");
    } else {
      const auto ids = saved_params->toListRef();
      if (ids.size() != groups[g].params().size()) {
        errors.add(group_name + " has " + std::to_string(ids.size()) + " parameters, the optimizer's group has " +
                   std::to_string(groups[g].params().size()));
      } else {
        for (size_t k = 0; k < ids.size(); ++k) {
          if (!ids[k].isInt()) {
            errors.add(group_name + ".params[" + std::to_string(k) + "] is " + describe_value(ids[k]) + ", expected an int");
          } else if (!params.emplace(ids[k].toInt(), std::make_pair(groups[g].params()[k], options.get())).second) {
            errors.add("parameter index " + std::to_string(ids[k].toInt()) + " appears twice in 'param_groups'");
          }
        }
      }
    }
    prepared.group_options.push_back(std::move(options));
  }
  // Bad hyperparameters are reported together with the state's problems; a broken parameter
  // mapping makes the state's indices meaningless, so it is reported alone.
  if (params.size() != optimizer.size()) errors.throw_if_any(where);

  for (const auto& entry : state->toGenericDict()) {
    // An int key as Python writes it; a decimal string from a writer that turned keys into strings.
    std::optional<int64_t> index;
    if (entry.key().isInt()) {
      index = entry.key().toInt();
    } else if (entry.key().isString()) {
      try {
        size_t used = 0;
        const std::string& text = entry.key().toStringRef();
        int64_t v = std::stoll(text, &used);
        if (used == text.size()) index = v;
      } catch (const std::exception&) {
      }
    }
    const std::string name = "state[" + (entry.key().isString() ? entry.key().toStringRef() : std::to_string(entry.key().isInt() ? entry.key().toInt() : -1)) + "]";
    if (!index) {
      errors.add("'state' has a key that is " + describe_value(entry.key()) + ", expected a parameter index");
      continue;
    }
    auto found = params.find(*index);
    if (found == params.end()) {
      errors.add(name + " names no parameter of 'param_groups'");
      continue;
    }
    if (!entry.value().isGenericDict()) {
      errors.add(name + " is " + describe_value(entry.value()) + ", expected a dict");
      continue;
    }
    const at::Tensor& param = found->second.first;
    const optim::OptimizerOptions& options = *found->second.second;
    const auto saved = entry.value().toGenericDict();
    StateValues values;
    bool usable = true;
    if (family.has_step) {
      const c10::IValue* step = dict_get(saved, "step");
      if (step == nullptr) {
        errors.add(name + " has no 'step'");
        usable = false;
      } else if (!(values.step = step_count(*step))) {
        errors.add(name + ".step is " + describe_value(*step) + ", expected a non-negative whole number");
        usable = false;
      }
    }
    for (const char* key : family.tensor_keys) {
      const c10::IValue* t = dict_get(saved, key);
      if (t == nullptr || t->isNone()) {
        if (family.required(options, key) && (family.has_step || t == nullptr)) {
          errors.add(name + " has no '" + key + "'");
          usable = false;
        }
        continue;
      }
      if (!t->isTensor() || !t->toTensor().defined()) {
        errors.add(name + "." + key + " is " + describe_value(*t) + ", expected a tensor");
        usable = false;
        continue;
      }
      const at::Tensor& tensor = t->toTensor();
      if (!tensor.sizes().equals(param.sizes())) {
        errors.add(name + "." + key + " has shape " + shape_string(tensor.sizes()) + ", its parameter has shape " +
                   shape_string(param.sizes()));
        usable = false;
        continue;
      }
      // As Python: floating state takes the parameter's dtype, every tensor its device.
      const auto dtype = tensor.is_floating_point() ? param.scalar_type() : tensor.scalar_type();
      values.tensors.emplace_back(key, detail::to_device(tensor.detach(), param.device(), name + "." + key, where, dtype).clone());
    }
    for (const auto& item : saved) {
      const std::string key = item.key().isString() ? item.key().toStringRef() : "";
      bool known = key == "step" && family.has_step;
      for (const char* k : family.tensor_keys) known |= key == k;
      if (!known) prepared.report.warnings.push_back(name + "." + key + " is not " + family.name + " state; ignored");
    }
    if (!usable) continue;
    // SGD without a momentum buffer (Python's None) is the same as no state at all.
    if (!family.has_step && values.tensors.empty()) continue;
    prepared.states.push_back({param, family.make(values)});
    prepared.report.loaded.push_back(name);
  }
  errors.throw_if_any(where);
  return prepared;
}

}  // namespace detail

LoadReport load_optimizer_state_dict(torch::optim::Optimizer& optimizer, const c10::IValue& state,
                                     const LoadOptions& options) {
  detail::PreparedOptimizerState prepared = detail::prepare_optimizer_state(optimizer, state, "load_optimizer_state_dict");
  prepared.apply(optimizer);
  return std::move(prepared.report);
}

void save_optimizer_state_dict(const torch::optim::Optimizer& optimizer, const std::string& path) {
  io::save_pt(optimizer_state_dict(optimizer), path);
}

LoadReport load_optimizer_state_dict(torch::optim::Optimizer& optimizer, const std::string& path,
                                     const LoadOptions& options) {
  const c10::IValue value = io::load_pt(path, options);
  detail::PreparedOptimizerState prepared = detail::prepare_optimizer_state(optimizer, value, path);
  prepared.apply(optimizer);
  return std::move(prepared.report);
}

}  // namespace tt
