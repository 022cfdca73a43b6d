// The NIR node types and the fields each requires (the reference package's primitives table),
// the NirNode accessors, and the validation load_nir and save_nir share.
#include <map>
#include <set>

#include "core/text.h"
#include "tracetorch/core/error.h"
#include "tracetorch/io/nir_file.h"

namespace tt::io {

namespace {

// What a field may hold: numbers, or numbers or text (Conv padding: 2 or "same").
enum class FieldKind { Numbers, NumbersOrText };

struct FieldRule {
  const char* name;
  FieldKind kind;
  bool required;
};

using Rules = std::vector<FieldRule>;

constexpr FieldKind N = FieldKind::Numbers;

const std::map<std::string, Rules>& schema() {
  static const std::map<std::string, Rules> table = [] {
    const Rules conv = {{"weight", N, true},  {"stride", N, true}, {"padding", FieldKind::NumbersOrText, true},
                        {"dilation", N, true}, {"groups", N, true}, {"bias", N, true},
                        {"input_shape", N, false}};
    const Rules pool = {{"kernel_size", N, true}, {"stride", N, true}, {"padding", N, true}};
    return std::map<std::string, Rules>{
        {"Input", {{"shape", N, true}}},
        {"Output", {{"shape", N, true}}},
        {"Affine", {{"weight", N, true}, {"bias", N, true}}},
        {"Linear", {{"weight", N, true}}},
        {"Scale", {{"scale", N, true}}},
        {"Flatten", {{"start_dim", N, true}, {"end_dim", N, true}, {"input_type", N, false}}},
        {"Conv1d", conv},
        {"Conv2d", conv},
        {"SumPool2d", pool},
        {"AvgPool2d", pool},
        {"Delay", {{"delay", N, true}}},
        {"Threshold", {{"threshold", N, true}}},
        {"I", {{"r", N, true}}},
        {"IF", {{"r", N, true}, {"v_threshold", N, true}, {"v_reset", N, false}}},
        {"LI", {{"tau", N, true}, {"r", N, true}, {"v_leak", N, true}}},
        {"LIF",
         {{"tau", N, true}, {"r", N, true}, {"v_leak", N, true}, {"v_threshold", N, true}, {"v_reset", N, false}}},
        {"CubaLI",
         {{"tau_syn", N, true}, {"tau_mem", N, true}, {"r", N, true}, {"v_leak", N, true}, {"w_in", N, false}}},
        {"CubaLIF",
         {{"tau_syn", N, true},
          {"tau_mem", N, true},
          {"r", N, true},
          {"v_leak", N, true},
          {"v_threshold", N, true},
          {"v_reset", N, false},
          {"w_in", N, false}}},
        {"NIRGraph", {}},
    };
  }();
  return table;
}

std::string node_label(const std::string& path, const NirNode& node) {
  return "node '" + (path.empty() ? std::string("<root>") : path) + "' (" + node.type + ")";
}

std::string child_path(const std::string& path, const std::string& name) {
  return path.empty() ? name : path + "." + name;
}

void validate_node(const NirNode& node, const std::string& path, const std::string& what, int depth) {
  constexpr int kMaxDepth = 32;
  if (depth > kMaxDepth)
    throw FileError(what + ": " + node_label(path, node) + ": graphs nested deeper than " +
                    std::to_string(kMaxDepth) + " levels");
  const auto rules = schema().find(node.type);
  if (rules == schema().end())
    throw FileError(what + ": " + node_label(path, node) + ": unknown node type '" + node.type +
                    "' (supported: " + detail::join_keys(nir_node_types()) + ")");
  for (const FieldRule& rule : rules->second) {
    if (!node.has(rule.name)) {
      if (rule.required) throw FileError(what + ": " + node_label(path, node) + ": missing field '" + rule.name + "'");
      continue;
    }
    const NirValue& value = node.get(rule.name);
    const bool ok = value.is_array() || (rule.kind == FieldKind::NumbersOrText && value.is_text());
    if (!ok)
      throw FileError(what + ": " + node_label(path, node) + ": field '" + rule.name + "' must be " +
                      (rule.kind == FieldKind::Numbers ? "numbers" : "numbers or a string") + ", got text");
    if (value.is_array() && !value.array().defined())
      throw FileError(what + ": " + node_label(path, node) + ": field '" + rule.name + "' is an undefined tensor");
  }
  if (node.type != "NIRGraph") {
    if (!node.nodes.empty() || !node.edges.empty())
      throw FileError(what + ": " + node_label(path, node) + ": only NIRGraph nodes have nodes and edges");
    return;
  }
  std::set<std::string> names;
  for (const NirNode& child : node.nodes) {
    const std::string p = child_path(path, child.name);
    if (child.name.empty() || child.name.find('/') != std::string::npos || child.name == "." || child.name == "..")
      throw FileError(what + ": " + node_label(path, node) + ": invalid node name '" + child.name +
                      "' (empty, '.', '..' or containing '/')");
    if (!names.insert(child.name).second)
      throw FileError(what + ": " + node_label(path, node) + ": two nodes are called '" + child.name + "'");
    validate_node(child, p, what, depth + 1);
  }
  for (const auto& [source, target] : node.edges) {
    const std::string edge = "edge ('" + source + "', '" + target + "')";
    if (!find_endpoint(node, source, /*as_target=*/false))
      throw FileError(what + ": " + node_label(path, node) + ": " + edge + ": no node '" + source + "'");
    if (!find_endpoint(node, target, /*as_target=*/true))
      throw FileError(what + ": " + node_label(path, node) + ": " + edge + ": no node '" + target + "'");
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// NirNode

bool NirNode::has(const std::string& field) const {
  for (const auto& [key, value] : params)
    if (key == field) return true;
  return false;
}

const NirValue& NirNode::get(const std::string& field) const {
  for (const auto& [key, value] : params)
    if (key == field) return value;
  throw ValueError("NIR node '" + name + "' (" + type + ") has no field '" + field + "'");
}

const NirNode* NirNode::find(const std::string& node_name) const {
  for (const NirNode& n : nodes)
    if (n.name == node_name) return &n;
  return nullptr;
}

NirNode* NirNode::find(const std::string& node_name) {
  for (NirNode& n : nodes)
    if (n.name == node_name) return &n;
  return nullptr;
}

NirNode& NirNode::set(const std::string& field, NirValue value) {
  for (auto& [key, v] : params)
    if (key == field) {
      v = std::move(value);
      return *this;
    }
  params.emplace_back(field, std::move(value));
  return *this;
}

NirNode& NirNode::add_node(NirNode node) {
  nodes.push_back(std::move(node));
  return *this;
}

NirNode& NirNode::add_edge(const std::string& source, const std::string& target) {
  edges.emplace_back(source, target);
  return *this;
}

const NirNode* find_endpoint(const NirNode& graph, const std::string& endpoint, bool as_target) {
  if (const NirNode* node = graph.find(endpoint)) return node;
  // Names may hold dots themselves: try every split into <subgraph>.<inner node>.
  for (size_t dot = endpoint.find('.'); dot != std::string::npos; dot = endpoint.find('.', dot + 1)) {
    const NirNode* sub = graph.find(endpoint.substr(0, dot));
    if (!sub || sub->type != "NIRGraph") continue;
    const NirNode* inner = sub->find(endpoint.substr(dot + 1));
    if (inner && inner->type == (as_target ? "Input" : "Output")) return sub;
  }
  return nullptr;
}

NirNode make_nir_node(const std::string& name, const std::string& type) {
  NirNode node;
  node.name = name;
  node.type = type;
  return node;
}

const std::vector<std::string>& nir_node_types() {
  static const std::vector<std::string> types = [] {
    std::vector<std::string> out;
    for (const auto& [type, rules] : schema()) out.push_back(type);
    return out;
  }();
  return types;
}

void validate_nir(const NirNode& graph, const std::string& what) {
  if (graph.type != "NIRGraph")
    throw FileError(what + ": the root node must be a NIRGraph, got '" + graph.type + "'");
  validate_node(graph, "", what, 0);
}

}  // namespace tt::io
