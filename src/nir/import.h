#pragma once
// The module that runs one NIR node (private to the NIR importer): one place per node type for
// its parameters, its modules and its output shape.
#include <torch/torch.h>

#include <vector>

#include "tracetorch/io/nir_file.h"
#include "tracetorch/nir/graph.h"

namespace tt::nir::detail {

struct BuiltNode {
  torch::nn::AnyModule module;     // empty for Input and Output nodes
  std::vector<int64_t> out_shape;  // per sample
};

// Builds the module for `node` (any type but Input, Output) given the per-sample shape of its
// input. Throws tt::ValueError naming the node (`where` is its path) when the parameters do not
// fit the shape or are not supported.
BuiltNode build_node(const io::NirNode& node, const std::vector<int64_t>& in_shape, const ImportOptions& options,
                     const std::string& where);

// The per-sample shape stored in an Input or Output node's "shape" field.
std::vector<int64_t> io_shape(const io::NirNode& node, const std::string& where);

}  // namespace tt::nir::detail
