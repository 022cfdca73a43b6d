#pragma once
// The state_dict utilities users write again and again, on plain TensorDicts (values first, as
// the rest of tt::io), and the reader that finds a TensorDict in any file we know: a plain
// state_dict or states file, a checkpoint (its 'model_state_dict', or a chosen entry such as
// 'model_states' or 'optimizer_state_dict'), a torch_rc ESN file ('state_dict',
// 'reservoir_states'). The `tracetorch inspect|diff|filter|rename|convert` commands wrap them.
//
// Throws: tt::FileError (files, a missing entry), tt::ValueError (a bad argument, e.g. a
// non-floating dtype for convert). Results are values; inputs are never modified. Thread safety:
// no shared state.
#include <torch/torch.h>

#include <string>
#include <utility>
#include <vector>

#include "tracetorch/core/load_options.h"
#include "tracetorch/io/pt_file.h"

namespace tt::io {

// Reads the tensor dict of `path`. `entry` empty: the file itself when it is a flat dict of
// tensors, else its 'model_state_dict', else its 'state_dict'. Otherwise that top-level entry; a
// nested dict is flattened with '.' ("state.0.exp_avg"), non-tensor leaves are left out.
TensorDict load_tensor_dict_entry(const std::string& path, const std::string& entry = "",
                                  const LoadOptions& options = {});

struct TensorSummary {
  std::string key;
  std::vector<int64_t> shape;
  std::string dtype;   // "float32", as Python prints it without "torch."
  std::string device;  // "cpu", "cuda:0"
  int64_t numel = 0;
  int64_t bytes = 0;
  // Over the finite values (NaN when there are none or the dtype is bool).
  double min = 0, max = 0, mean = 0;
  int64_t nan_count = 0, inf_count = 0;
};
std::vector<TensorSummary> summarize(const TensorDict& dict);

struct KeyDifference {
  std::string key;
  std::string problem;      // empty when shapes and dtypes agree; else "shape [2] vs [3]" / "dtype ..."
  double max_abs = 0;       // over elements, when comparable
  double max_rel = 0;       // |a - b| / |b|, over elements where b != 0
  bool close = false;       // torch.allclose(a, b, rtol, atol) and same shape and dtype
};
struct DictDifference {
  std::vector<std::string> only_in_a, only_in_b;
  std::vector<KeyDifference> common;  // in a's order
  bool equal() const;                 // same keys, every common entry close
};
DictDifference diff(const TensorDict& a, const TensorDict& b, double rtol = 1e-5, double atol = 1e-8);

// Keeps the entries whose key and shape fit `target`'s state_dict (transfer learning); every
// other entry is listed with the reason ("not in the model", "shape [3, 4] vs the model's [2, 4]").
struct FilterResult {
  TensorDict kept;
  std::vector<std::pair<std::string, std::string>> skipped;  // key, reason
  std::vector<std::string> missing;                          // model keys not in `kept`
};
FilterResult filter_for(const TensorDict& dict, const TensorDict& target);

// Replaces the prefix `from` by `to` on every key that starts with `from` ("" adds `to` to every
// key; `to` "" strips). Keys that collide after renaming are a tt::ValueError naming both.
TensorDict rename_prefix(const TensorDict& dict, const std::string& from, const std::string& to);

// Floating tensors to `dtype` (a floating dtype); others unchanged.
TensorDict convert_dtype(const TensorDict& dict, torch::Dtype dtype);

}  // namespace tt::io
