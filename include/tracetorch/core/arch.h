#pragma once
// Architecture JSON `tt-arch/1` (spec section 9.1): build a module tree from a document and
// write the document back from a built model (the round trip is equal).
//
//   {"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
//       {"type": "Linear", "in_features": 5, "out_features": 4, "bias": true},
//       {"type": "snn.LIB", "num_neurons": 4, "beta_rank": 0}]}}
//
// Node types come from a Registry (type name -> factory + describer). Every error is a
// tt::ArchError whose message starts with the JSON path of the offending value, e.g.
// "model.children[3].beta_rank: expected an integer, got \"x\"".
//
// Ownership: build / load return a new model owned by the caller (a module holder). Throws
// tt::ArchError for documents (also for invalid parameter values: the JSON path is named) and
// tt::FileError for files that cannot be read or written. Hostile documents are bounded: at most
// kMaxDepth levels of JSON nesting (checked without recursion before building) and kMaxFileBytes
// per file (see docs/hostile-inputs.md). Thread safety: a Registry is a value;
// building from one registry on several threads at once is safe, changing it meanwhile is not.
#include <torch/torch.h>

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "tracetorch/core/sequential.h"

namespace tt::arch {

using json = nlohmann::ordered_json;

// Deepest nesting of objects and arrays a document may have (a Sequential level costs two).
constexpr size_t kMaxDepth = 100;
// Largest architecture file load() reads.
constexpr size_t kMaxFileBytes = size_t{64} << 20;

// Typed access to one node's arguments with path-named errors. Every argument a factory does
// not read is reported by finish() as unknown.
class Args {
 public:
  Args(const json& node, std::string path);

  const std::string& path() const { return path_; }
  bool has(const std::string& name) const;
  int64_t get_int(const std::string& name) const;  // required
  int64_t get_int(const std::string& name, int64_t fallback) const;
  bool get_bool(const std::string& name, bool fallback) const;
  double get_number(const std::string& name, double fallback) const;
  std::string get_string(const std::string& name, const std::string& fallback) const;
  // An int or a list of ints (kernel sizes).
  std::vector<int64_t> get_int_list(const std::string& name, size_t length, int64_t fallback) const;
  const json& get_raw(const std::string& name) const;  // required, any JSON type
  // Throws for arguments nobody asked for.
  void finish() const;
  // Path of a member ("model.children[1].beta").
  std::string member_path(const std::string& name) const;

 private:
  const json& node_;
  std::string path_;
  mutable std::vector<std::string> used_;
};

class Registry;

struct Entry {
  // Builds the module for `args` (its node); nested nodes are built through `registry`.
  std::function<torch::nn::AnyModule(Args& args, const Registry& registry)> build;
  // The node for `module` if it is of this entry's type, else nullopt.
  std::function<std::optional<json>(const torch::nn::Module& module, const Registry& registry)> describe;
};

class Registry {
 public:
  void add(const std::string& type, Entry entry);  // replaces an existing entry of that type
  bool contains(const std::string& type) const;
  std::vector<std::string> types() const;

  torch::nn::AnyModule build_node(const json& node, const std::string& path) const;
  json describe(const torch::nn::Module& module, const std::string& path = "model") const;

 private:
  std::vector<std::pair<std::string, Entry>> entries_;
};

// Registries with every built-in type (Sequential, Linear, Conv2d, Flatten, snn.*, rnn.*, ssm.*).
Registry default_registry();
void register_torch_types(Registry& registry);
void register_snn_types(Registry& registry);
void register_rnn_types(Registry& registry);
void register_ssm_types(Registry& registry);

// Document-level API. The root node must be a Sequential; it becomes a tt::Sequential whose
// children are named "0", "1", ... (so state_dict keys match Python's: "1.raw_beta").
tt::Sequential build(const json& document, const Registry& registry = default_registry());
tt::Sequential load(const std::string& path, const Registry& registry = default_registry());
json to_json(const torch::nn::Module& root, const Registry& registry = default_registry());
void save(const torch::nn::Module& root, const std::string& path, const Registry& registry = default_registry());

}  // namespace tt::arch
