#pragma once
// tt::nir::Graph: a NIR graph as a runnable, stateful model. Every node becomes a module (NIR
// neurons -> tt::nir::Neuron, Affine -> torch::nn::Linear, ...; see docs/nir.md), registered as a
// child under its node name ('.' replaced by '_'), and one forward() is one timestep of the graph.
//
//   tt::nir::Graph net = tt::nir::import_graph(tt::io::load_nir("net.nir"), tt::nir::ImportOptions(1e-3));
//   for (int64_t t = 0; t < x.size(0); ++t) y[t] = net->forward(x[t]);   // x[t]: [batch, input shape...]
//   tt::save_states(*net, "states.pt");                                   // like every model
//
// Semantics of one step:
// - Inputs are [batch, shape...] for each Input node (or [shape...] without the batch axis: then
//   the outputs have none either); shapes are per sample, as NIR types are.
// - A node's input is the sum of what its incoming edges carry.
// - Execution order: depth first from the Input nodes (in the file's node order), following
//   edges in the file's order; the nodes run in reverse post-order. An edge whose target runs
//   before (or is) its source closes a cycle: it is a recurrent edge and carries the source's
//   output of the previous step (zeros at the first step and after zero_states). Those outputs
//   are hidden states of the graph, named "<node>.output".
// - A NIRGraph node is a nested Graph (one Input, one Output).
// States are managed like every model's (tt::zero_states, detach_states, save_states, load_states,
// compile, clone) through tt::named_layers: the graph itself is a tt::Layer (its recurrent
// outputs) holding the node layers as children.
// Throws: tt::ValueError at import for graphs that cannot run (a node not reachable from any
// Input, shapes that do not fit along an edge, unsupported parameters), naming the node and the
// shapes; at run time for inputs of the wrong shape, naming the Input node. Nothing half-built.
// Thread safety: as any module; one forward at a time per instance.
#include <torch/torch.h>

#include <map>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "tracetorch/core/cloneable.h"
#include "tracetorch/core/layer.h"
#include "tracetorch/io/nir_file.h"
#include "tracetorch/nir/neuron.h"

namespace tt::nir {

struct ImportOptions {
  explicit ImportOptions(double dt) : dt_(dt) {}
  // The time step, in the file's time unit (seconds for snnTorch, Norse and most producers).
  TORCH_ARG(double, dt);
  // Forward Euler (the default; what snnTorch and Norse assume) or exact exponential decay.
  TORCH_ARG(Discretisation, discretisation) = Discretisation::Euler;
  // The dtype of every parameter and buffer (float64 keeps a float64 file's values exact).
  TORCH_ARG(torch::Dtype, dtype) = torch::kFloat32;
};

class GraphImpl : public Cloneable<GraphImpl> {
 public:
  GraphImpl(io::NirNode graph, ImportOptions options);

  // Builds every node module, the execution order and the recurrent states from the graph.
  void reset() override;

  // One step of a graph with one Input and one Output node.
  torch::Tensor forward(const torch::Tensor& x);
  torch::Tensor forward_step(const torch::Tensor& x) override { return forward(x); }
  // One step with inputs and outputs by Input / Output node name (every input must be given).
  std::map<std::string, torch::Tensor> forward_named(const std::map<std::string, torch::Tensor>& inputs);

  const std::vector<std::string>& input_names() const { return input_names_; }
  const std::vector<std::string>& output_names() const { return output_names_; }
  // Per-sample shapes of what a node takes and gives (an Input node gives what it takes).
  // Throws tt::ValueError for unknown names.
  const std::vector<int64_t>& input_shape(const std::string& node) const;
  const std::vector<int64_t>& output_shape(const std::string& node) const;
  // Node names in execution order (Input and Output nodes included).
  std::vector<std::string> execution_order() const;
  // The edges that carry the previous step's value.
  std::vector<std::pair<std::string, std::string>> recurrent_edges() const;
  // The module that runs a node (nullptr for Input and Output nodes). Throws for unknown names.
  std::shared_ptr<torch::nn::Module> node_module(const std::string& node) const;
  // The graph as imported (parameters as they were then; tt::nir::export_graph gives the current ones).
  const io::NirNode& graph() const { return graph_; }
  const ImportOptions& options() const { return options_; }

  std::optional<std::string> check_state_shape(size_t index, torch::IntArrayRef sizes) const override;
  void pretty_print(std::ostream& stream) const override;

 private:
  struct Source {
    int node;
    bool recurrent;
  };
  struct Node {
    std::string name;   // NIR name
    std::string child;  // registered child name ("" for Input / Output)
    std::string type;
    torch::nn::AnyModule module;
    std::vector<Source> sources;
    std::vector<int64_t> in_shape, out_shape;
    int feedback = -1;  // state index holding the previous output, if a recurrent edge leaves here
  };
  int index_of(const std::string& node) const;
  std::map<std::string, torch::Tensor> run(const std::vector<torch::Tensor>& inputs);

  io::NirNode graph_;
  ImportOptions options_;
  std::vector<Node> nodes_;
  std::vector<int> order_;
  std::vector<std::string> input_names_, output_names_;
  std::vector<int> inputs_, outputs_;  // node indices
};

TORCH_MODULE(Graph);

// The graph as a model (see above). Throws tt::ValueError naming the node for graphs that cannot
// run; validates the value first as load_nir does (tt::FileError).
Graph import_graph(const io::NirNode& graph, const ImportOptions& options);
// io::load_nir + import_graph; errors name the file.
Graph load(const std::string& path, const ImportOptions& options);

}  // namespace tt::nir
