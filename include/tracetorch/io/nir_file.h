#pragma once
// NIR files (the Neuromorphic Intermediate Representation, HDF5 through libhdf5) as plain values:
// a graph of named nodes, the directed edges between them, and per-node parameters and metadata,
// laid out as the reference `nir` Python package writes them (`version` string, `node` group with
// `type`, `nodes/<name>/...`, `edges` [N, 2] strings). Running a graph is tt::nir::import_graph
// (nir/graph.h); turning a model into a graph is tt::nir::export_graph (nir/export.h).
//
//   tt::io::NirGraph g = tt::io::load_nir("net.nir");
//   for (const auto& node : g.nodes) std::cout << node.name << " " << node.type << "\n";
//   tt::io::save_nir(g, "copy.nir");
//
// Loading validates everything before returning: every node has a known type (the 17 primitives
// below) and the fields that type requires, with the right kind (numbers or text); edges name
// existing nodes; array sizes are checked before anything is allocated and graph nesting is
// bounded. Saving applies the same checks, so whatever saves loads back. Saves are atomic (temp
// file, fsync, rename). Node parameters keep the dtype the file stores (float32, float64, int64,
// bool); importing converts them.
// Throws: tt::FileError whose message names the file and the node path ("net.nir: node 'lif'
// (LIF): missing field 'tau'"), for unknown node types, missing or mistyped fields, bad edges,
// corrupt, truncated or non-HDF5 files; the library never prints (libhdf5's error printing is
// switched off for the duration of each call). Nothing half-built is returned.
// Thread safety: values are plain data. Debian's libhdf5 is built thread-safe (it serialises
// calls internally); distinct files may be read and written from distinct threads.
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

namespace tt::io {

// One stored field: a numeric array (any rank, 0-d for scalars), one string, or a list of strings.
class NirValue {
 public:
  enum class Kind { Array, Text, Texts };

  NirValue(torch::Tensor array) : kind_(Kind::Array), array_(std::move(array)) {}  // NOLINT: implicit on purpose
  NirValue(std::string text) : kind_(Kind::Text), text_(std::move(text)) {}        // NOLINT
  NirValue(const char* text) : NirValue(std::string(text)) {}                      // NOLINT
  NirValue(std::vector<std::string> texts) : kind_(Kind::Texts), texts_(std::move(texts)) {}  // NOLINT

  Kind kind() const { return kind_; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_text() const { return kind_ == Kind::Text; }
  const torch::Tensor& array() const { return array_; }  // undefined unless is_array()
  const std::string& text() const { return text_; }
  const std::vector<std::string>& texts() const { return texts_; }

 private:
  Kind kind_;
  torch::Tensor array_;
  std::string text_;
  std::vector<std::string> texts_;
};

// Ordered name -> value fields (file order on load: libhdf5 lists names alphabetically).
using NirFields = std::vector<std::pair<std::string, NirValue>>;

// One node. A node of type "NIRGraph" is a (sub)graph: it has `nodes` and `edges`.
struct NirNode {
  std::string name;  // its key in the parent graph ("" for the root)
  std::string type;  // "LIF", "Affine", "NIRGraph", ... (see nir_node_types())
  NirFields params;  // every stored field but type, metadata, nodes and edges
  NirFields metadata;  // nested metadata groups appear as "outer/inner" names
  std::vector<NirNode> nodes;                              // NIRGraph only
  std::vector<std::pair<std::string, std::string>> edges;  // NIRGraph only: (source, target)

  bool has(const std::string& field) const;
  // The field's value; throws tt::ValueError naming the node and field when it is absent.
  const NirValue& get(const std::string& field) const;
  // The child node called `name` (NIRGraph), or nullptr.
  const NirNode* find(const std::string& node_name) const;
  NirNode* find(const std::string& node_name);

  // Builders (chainable): set a field (replaces an existing one), add a child node or an edge.
  NirNode& set(const std::string& field, NirValue value);
  NirNode& add_node(NirNode node);
  NirNode& add_edge(const std::string& source, const std::string& target);
};

// A whole file: the root graph and the NIR version string it was written with.
struct NirGraph : NirNode {
  std::string version;  // e.g. "1.0.7"; save_nir writes kNirVersion when empty
};

// The NIR format version written by default (the reference package this reader follows).
inline constexpr const char* kNirVersion = "1.0.7";

// A fresh node of `type` called `name` (an empty graph for "NIRGraph").
NirNode make_nir_node(const std::string& name, const std::string& type);

// The node an edge endpoint of `graph` names: one of its nodes, or "<subgraph>.<node>" naming a
// NIRGraph node through one of its Input nodes (as a target) or Output nodes (as a source), as
// some producers write edges into subgraphs. nullptr when it names nothing.
const NirNode* find_endpoint(const NirNode& graph, const std::string& endpoint, bool as_target);

// The node types a file may hold: Input, Output, Affine, Linear, Scale, Flatten, Conv1d, Conv2d,
// SumPool2d, AvgPool2d, Delay, Threshold, I, IF, LI, LIF, CubaLI, CubaLIF and NIRGraph.
const std::vector<std::string>& nir_node_types();

// Checks a graph as load_nir does (types, required fields, edges); throws tt::FileError whose
// message starts with `what` and names the node.
void validate_nir(const NirNode& graph, const std::string& what);

NirGraph load_nir(const std::string& path);
// Same, from the bytes of a file; `what` names the source in error messages.
NirGraph load_nir_bytes(const std::string& bytes, const std::string& what);

void save_nir(const NirGraph& graph, const std::string& path);
std::string save_nir_bytes(const NirGraph& graph);

}  // namespace tt::io
