// The NIR graph container: execution order, recurrent edges, shape inference and one step.
#include "tracetorch/nir/graph.h"

#include <set>

#include "core/text.h"
#include "nir/import.h"
#include "nir/params.h"
#include "tracetorch/core/error.h"

namespace tt::nir {

namespace {

using tt::detail::shape_string;

std::string child_name(const std::string& node, std::set<std::string>& taken) {
  std::string name = node;
  std::replace(name.begin(), name.end(), '.', '_');
  const std::string base = name;
  for (int i = 1; taken.count(name); ++i) name = base + "_" + std::to_string(i);
  taken.insert(name);
  return name;
}

}  // namespace

GraphImpl::GraphImpl(io::NirNode graph, ImportOptions options)
    : Cloneable("nir.Graph", 1), graph_(std::move(graph)), options_(options) {
  reset();
}

int GraphImpl::index_of(const std::string& node) const {
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (nodes_[i].name == node) return static_cast<int>(i);
  throw ValueError("nir.Graph has no node '" + node + "'");
}

void GraphImpl::reset() {
  begin_reset();
  expect_input_features(-1);
  io::validate_nir(graph_, "nir.Graph");
  if (!(options_.dt() > 0) || !std::isfinite(options_.dt()))
    throw ValueError("nir.Graph: dt must be positive, got " + std::to_string(options_.dt()));
  const std::string prefix = graph_.name.empty() ? "" : graph_.name + ".";
  auto where = [&](const std::string& node) { return prefix + node; };

  nodes_.clear();
  input_names_.clear();
  output_names_.clear();
  inputs_.clear();
  outputs_.clear();
  std::map<std::string, int> index;
  for (const io::NirNode& n : graph_.nodes) {
    index[n.name] = static_cast<int>(nodes_.size());
    Node node;
    node.name = n.name;
    node.type = n.type;
    nodes_.push_back(std::move(node));
  }
  // Successors in edge order, for the depth-first order; sources for the step.
  std::vector<std::vector<int>> successors(nodes_.size());
  std::vector<std::pair<int, int>> edges;
  for (const auto& [from, to] : graph_.edges) {
    const int s = index.at(io::find_endpoint(graph_, from, false)->name);
    const int t = index.at(io::find_endpoint(graph_, to, true)->name);
    if (nodes_[s].type == "Output") throw ValueError("NIR node '" + where(from) + "' (Output) has an outgoing edge");
    if (nodes_[t].type == "Input") throw ValueError("NIR node '" + where(to) + "' (Input) has an incoming edge");
    successors[s].push_back(t);
    edges.emplace_back(s, t);
  }

  // Depth first from the Input nodes (iteratively: graphs may be long chains); reverse post-order.
  std::vector<int> state(nodes_.size(), 0);  // 0 new, 1 on the stack, 2 done
  std::vector<int> post;
  for (size_t root = 0; root < nodes_.size(); ++root) {
    if (nodes_[root].type != "Input") continue;
    std::vector<std::pair<int, size_t>> stack = {{static_cast<int>(root), 0}};
    state[root] = 1;
    while (!stack.empty()) {
      auto& [node, next] = stack.back();
      if (next < successors[node].size()) {
        const int succ = successors[node][next++];
        if (state[succ] == 0) {
          state[succ] = 1;
          stack.emplace_back(succ, 0);
        }
      } else {
        state[node] = 2;
        post.push_back(node);
        stack.pop_back();
      }
    }
  }
  for (size_t i = 0; i < nodes_.size(); ++i)
    if (state[i] == 0)
      throw ValueError("NIR node '" + where(nodes_[i].name) + "' (" + nodes_[i].type +
                       ") is not reachable from any Input node");
  order_.assign(post.rbegin(), post.rend());
  std::vector<int> position(nodes_.size());
  for (size_t p = 0; p < order_.size(); ++p) position[order_[p]] = static_cast<int>(p);
  for (const auto& [s, t] : edges) nodes_[t].sources.push_back({s, position[t] <= position[s]});

  // Shapes and modules in execution order: every node but the Inputs has a source that runs
  // before it (its depth-first parent), so its input shape is known when it is built.
  std::set<std::string> taken;
  for (int i : order_) {
    Node& node = nodes_[i];
    const io::NirNode& spec = *graph_.find(node.name);
    if (node.type == "Input") {
      node.out_shape = detail::io_shape(spec, where(node.name));
      input_names_.push_back(node.name);
      inputs_.push_back(i);
      continue;
    }
    std::vector<int64_t>& in_shape = node.in_shape;
    bool known = false;
    for (const Source& s : node.sources) {
      if (s.recurrent) continue;
      const auto& shape = nodes_[s.node].out_shape;
      if (known && shape != in_shape)
        throw ValueError("NIR node '" + where(node.name) + "' (" + node.type + "): its inputs disagree: " +
                         shape_string(in_shape) + " vs " + shape_string(shape) + " from '" + nodes_[s.node].name + "'");
      in_shape = shape;
      known = true;
    }
    if (node.type == "Output") {
      const auto declared = detail::io_shape(spec, where(node.name));
      if (detail::product(declared) != detail::product(in_shape))
        throw ValueError("NIR node '" + where(node.name) + "' (Output) declares shape " + shape_string(declared) +
                         ", the incoming edges carry " + shape_string(in_shape));
      node.out_shape = in_shape;
      output_names_.push_back(node.name);
      outputs_.push_back(i);
      continue;
    }
    detail::BuiltNode built = detail::build_node(spec, in_shape, options_, where(node.name));
    node.out_shape = built.out_shape;
    node.child = child_name(node.name, taken);
    node.module = std::move(built.module);
    register_module(node.child, node.module.ptr());
  }
  // Recurrent edges: shapes must fit too, and each source keeps its previous output as a state.
  for (Node& node : nodes_) {
    for (const Source& s : node.sources) {
      if (!s.recurrent) continue;
      Node& source = nodes_[s.node];
      if (source.out_shape != node.in_shape)
        throw ValueError("NIR node '" + where(node.name) + "' (" + node.type + "): the recurrent edge from '" +
                         source.name + "' carries " + shape_string(source.out_shape) + ", its other inputs " +
                         shape_string(node.in_shape));
      if (source.feedback < 0)
        source.feedback = static_cast<int>(register_state((source.child.empty() ? source.name : source.child) + ".output"));
    }
  }
  if (inputs_.empty()) throw ValueError("nir.Graph: the graph has no Input node");
  if (outputs_.empty()) throw ValueError("nir.Graph: the graph has no Output node");
}

// ---------------------------------------------------------------------------------------------
// one step

std::map<std::string, torch::Tensor> GraphImpl::run(const std::vector<torch::Tensor>& given) {
  // Inputs: [batch, shape...], or [shape...] (batch 1 inside, squeezed again on the way out).
  int64_t batch = -1;
  bool unbatched = false;
  std::vector<torch::Tensor> values(nodes_.size());
  for (size_t k = 0; k < inputs_.size(); ++k) {
    const Node& node = nodes_[inputs_[k]];
    const torch::Tensor& x = given[k];
    const auto& shape = node.out_shape;
    const auto rank = static_cast<int64_t>(shape.size());
    const bool plain = x.defined() && x.dim() == rank && x.sizes().vec() == shape;
    const bool batched = x.defined() && x.dim() == rank + 1 && detail::has_trailing_shape(x.sizes(), shape);
    if (!plain && !batched)
      throw ValueError("nir.Graph: Input '" + node.name + "' takes [batch, " + shape_string(shape).substr(1) +
                       " or " + shape_string(shape) + ", got " + (x.defined() ? shape_string(x.sizes()) : "undefined"));
    const torch::Tensor b = plain ? x.unsqueeze(0) : x;
    if (batch >= 0 && (b.size(0) != batch || plain != unbatched))
      throw ValueError("nir.Graph: Input '" + node.name + "' has batch shape " + shape_string(b.sizes()) +
                       ", the other inputs another");
    batch = b.size(0);
    unbatched = plain;
    values[inputs_[k]] = b;
  }
  const torch::Tensor& like = values[inputs_[0]];
  auto previous = [&](const Node& source) {
    torch::Tensor& s = state_at(static_cast<size_t>(source.feedback));
    if (!s.defined()) {
      std::vector<int64_t> shape = {batch};
      shape.insert(shape.end(), source.out_shape.begin(), source.out_shape.end());
      s = torch::zeros(shape, like.options());
    } else if (s.size(0) != batch) {
      throw ValueError("nir.Graph: state '" + state_names()[static_cast<size_t>(source.feedback)] + "' has shape " +
                       shape_string(s.sizes()) + ", which does not fit a batch of " + std::to_string(batch) +
                       " (the batch size changed?); call zero_states() first");
    }
    return s;
  };
  for (int i : order_) {
    Node& node = nodes_[i];
    if (node.type == "Input") continue;
    torch::Tensor sum;
    for (const Source& s : node.sources) {
      const torch::Tensor v = s.recurrent ? previous(nodes_[s.node]) : values[s.node];
      sum = sum.defined() ? sum.add(v) : v;
    }
    values[i] = node.module.is_empty() ? sum : node.module.forward<torch::Tensor>(sum);
  }
  for (const Node& node : nodes_)
    if (node.feedback >= 0) state_at(static_cast<size_t>(node.feedback)) = values[&node - nodes_.data()];
  std::map<std::string, torch::Tensor> out;
  for (int i : outputs_) out[nodes_[i].name] = unbatched ? values[i].squeeze(0) : values[i];
  return out;
}

torch::Tensor GraphImpl::forward(const torch::Tensor& x) {
  if (inputs_.size() != 1 || outputs_.size() != 1)
    throw ValueError("nir.Graph: forward(x) needs one Input and one Output node (this graph has " +
                     std::to_string(inputs_.size()) + " and " + std::to_string(outputs_.size()) +
                     "); use forward_named");
  return run({x}).begin()->second;
}

std::map<std::string, torch::Tensor> GraphImpl::forward_named(const std::map<std::string, torch::Tensor>& inputs) {
  std::vector<torch::Tensor> given;
  for (const auto& name : input_names_) {
    auto found = inputs.find(name);
    if (found == inputs.end())
      throw ValueError("nir.Graph: no value for Input '" + name + "' (inputs: " + tt::detail::join_keys(input_names_) + ")");
    given.push_back(found->second);
  }
  for (const auto& [name, value] : inputs)
    if (std::find(input_names_.begin(), input_names_.end(), name) == input_names_.end())
      throw ValueError("nir.Graph: '" + name + "' is not an Input node (inputs: " + tt::detail::join_keys(input_names_) + ")");
  return run(given);
}

// ---------------------------------------------------------------------------------------------
// introspection

const std::vector<int64_t>& GraphImpl::input_shape(const std::string& node) const {
  const Node& n = nodes_[static_cast<size_t>(index_of(node))];
  return n.type == "Input" ? n.out_shape : n.in_shape;
}

const std::vector<int64_t>& GraphImpl::output_shape(const std::string& node) const {
  return nodes_[static_cast<size_t>(index_of(node))].out_shape;
}

std::vector<std::string> GraphImpl::execution_order() const {
  std::vector<std::string> out;
  for (int i : order_) out.push_back(nodes_[i].name);
  return out;
}

std::vector<std::pair<std::string, std::string>> GraphImpl::recurrent_edges() const {
  std::vector<std::pair<std::string, std::string>> out;
  for (int i : order_)
    for (const Source& s : nodes_[i].sources)
      if (s.recurrent) out.emplace_back(nodes_[s.node].name, nodes_[i].name);
  return out;
}

std::shared_ptr<torch::nn::Module> GraphImpl::node_module(const std::string& node) const {
  const Node& n = nodes_[static_cast<size_t>(index_of(node))];
  return n.module.is_empty() ? nullptr : n.module.ptr();
}

std::optional<std::string> GraphImpl::check_state_shape(size_t index, torch::IntArrayRef sizes) const {
  for (const Node& node : nodes_) {
    if (node.feedback != static_cast<int>(index)) continue;
    if (detail::has_trailing_shape(sizes, node.out_shape) && sizes.size() == node.out_shape.size() + 1)
      return std::nullopt;
    return "expected [batch, " + shape_string(node.out_shape).substr(1) + ", got " + shape_string(sizes);
  }
  return "no such state";
}

void GraphImpl::pretty_print(std::ostream& stream) const {
  stream << "tt::nir::Graph(nodes=" << nodes_.size() << ", recurrent_edges=" << recurrent_edges().size()
         << ", dt=" << options_.dt() << ")";
}

Graph import_graph(const io::NirNode& graph, const ImportOptions& options) { return Graph(graph, options); }

Graph load(const std::string& path, const ImportOptions& options) {
  const io::NirGraph graph = io::load_nir(path);
  try {
    return import_graph(graph, options);
  } catch (const ValueError& e) {
    throw ValueError(path + ": " + e.what());
  }
}

}  // namespace tt::nir
