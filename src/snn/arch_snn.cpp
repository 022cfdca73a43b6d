#include "tracetorch/core/error.h"
#include "tracetorch/core/arch.h"
#include "tracetorch/snn/presets.h"

namespace tt::arch {

namespace {

ParamValue read_value(const Args& args, const std::string& name) {
  const json& v = args.get_raw(name);
  if (v.is_number()) return ParamValue(v.get<double>());
  if (v.is_array()) {
    std::vector<double> values;
    for (const auto& e : v) {
      if (!e.is_number()) throw ArchError(args.member_path(name) + ": expected a number or a list of numbers, got " + v.dump());
      values.push_back(e.get<double>());
    }
    return ParamValue(values);
  }
  throw ArchError(args.member_path(name) + ": expected a number or a list of numbers, got " + v.dump());
}

json value_json(const ParamValue& value) {
  if (!value.is_tensor()) return value.number();
  if (!value.list().empty()) return value.list();
  const torch::Tensor t = value.tensor().to(torch::kFloat64).contiguous();
  if (t.dim() == 0) return t.item<double>();
  return std::vector<double>(t.data_ptr<double>(), t.data_ptr<double>() + t.numel());
}

torch::nn::AnyModule build_neuron(const std::string& class_name, Args& args) {
  snn::NeuronOptions options = snn::preset_options(class_name, args.get_int("num_neurons"));
  if (args.has("dim")) options.dim(args.get_int("dim"));
  for (const auto& spec : snn::neuron_parameters(options)) {
    if (args.has(spec.name)) {
      ParamValue value = read_value(args, spec.name);
      // Range-check here so that the error names the member ("model.children[1].beta").
      try {
        functional::to_raw(spec.transform, value.is_tensor() ? value.tensor() : torch::tensor(value.number()));
      } catch (const ValueError& e) {
        throw ArchError(args.member_path(spec.name) + ": " + e.what());
      }
      options.set_value(spec.name, value);
    }
    if (args.has(spec.name + "_rank")) {
      const int64_t rank = args.get_int(spec.name + "_rank");
      if (rank != 0 && rank != 1)
        throw ArchError(args.member_path(spec.name + "_rank") + ": rank must be 0 (scalar) or 1 (vector), got " +
                        std::to_string(rank));
      options.set_rank(spec.name, rank);
    }
    if (args.has("learn_" + spec.name)) options.set_learnable(spec.name, args.get_bool("learn_" + spec.name, true));
  }
  if (options.output() != snn::Output::LI) {
    try {
      if (args.has("spike_fn")) options.spike_fn(functional::parse_tensor_fn(args.get_string("spike_fn", "")));
    } catch (const ValueError& e) {
      throw ArchError(args.member_path("spike_fn") + ": " + e.what());
    }
    try {
      if (args.has("quant_fn")) options.quant_fn(functional::parse_tensor_fn(args.get_string("quant_fn", "")));
    } catch (const ValueError& e) {
      throw ArchError(args.member_path("quant_fn") + ": " + e.what());
    }
  }
  args.finish();  // before construction, so that an unknown argument is named as such
  try {
    return torch::nn::AnyModule(snn::Neuron(options));
  } catch (const ValueError& e) {
    throw ArchError(args.path() + ": " + e.what());
  }
}

std::optional<json> describe_neuron(const torch::nn::Module& module) {
  const auto* neuron = dynamic_cast<const snn::NeuronImpl*>(&module);
  if (!neuron) return std::nullopt;
  const snn::NeuronOptions& o = neuron->options();
  json node = {{"type", "snn." + o.class_name()}, {"num_neurons", o.num_neurons()}};
  const auto specs = snn::neuron_parameters(o);
  const auto& settings = o.settings();
  for (const auto& spec : specs) {
    auto s = settings.find(spec.name);
    if (s != settings.end() && s->second.value) node[spec.name] = value_json(*s->second.value);
  }
  if (o.dim_given()) node["dim"] = o.dim();
  for (const auto& spec : specs) {
    auto s = settings.find(spec.name);
    if (s != settings.end() && s->second.rank) node[spec.name + "_rank"] = *s->second.rank;
  }
  for (const auto& spec : specs) {
    auto s = settings.find(spec.name);
    if (s != settings.end() && s->second.learnable) node["learn_" + spec.name] = *s->second.learnable;
  }
  if (o.output() != snn::Output::LI) {
    if (o.spike_fn().name != "sigmoid4x") node["spike_fn"] = o.spike_fn().name;
    if (!o.quant_fn().is_identity()) node["quant_fn"] = o.quant_fn().name;
  }
  return node;
}

}  // namespace

void register_snn_types(Registry& registry) {
  for (const auto& name : snn::preset_names()) {
    Entry entry;
    entry.build = [name](Args& args, const Registry&) { return build_neuron(name, args); };
    // One describer serves every preset: attach it to the first name only.
    if (name == snn::preset_names().front())
      entry.describe = [](const torch::nn::Module& m, const Registry&) { return describe_neuron(m); };
    registry.add("snn." + name, std::move(entry));
  }
}

}  // namespace tt::arch
