#pragma once
// Python-compatible .pt files (the zip container written by Python's torch.save): plain values
// (tensors, dicts of tensors, nested containers of scalars and strings). Loading state into a
// module is core/model.h (states) and core/state_dict.h (parameters and buffers).
//
// Reading: our own reader of the zip archive and of the subset of the pickle protocol that
// tensor files use. It accepts only known globals (tensor rebuild functions, storage types,
// collections.OrderedDict, torch dtypes) and rejects anything else, like Python's
// torch.load(weights_only=True). It never executes code from the file.
// Writing: files that Python's torch.load reads back identically (dtype, shape, strides, values).
// Saves are atomic: write to a temporary file in the same directory, flush, fsync, rename.
// Parent directories are created.
//
// Argument order follows torch::save(value, path): the value first, then the path.
// Throws: tt::FileError naming the path and the problem for a missing, unreadable, corrupt,
// truncated or hostile file, or a top-level value of the wrong type; never crashes.
// Thread safety: the functions keep no shared state; distinct files may be read and written from
// distinct threads.
#include <torch/torch.h>

#include <optional>
#include <string>

#include "tracetorch/core/load_options.h"

namespace tt::io {

// Ordered string -> tensor mapping (the C++ face of a Python state_dict / save_states() dict).
using TensorDict = torch::OrderedDict<std::string, torch::Tensor>;

// Reads any supported file into an IValue: a Tensor, or a GenericDict (string keys, insertion
// order kept; OrderedDict becomes a dict) whose values are tensors, nested dicts, lists, tuples,
// strings, ints, doubles, bools or None. Tensors are moved to options.map_location() when given;
// otherwise they go to the device recorded in the file, like Python (a file saved from CUDA on a
// machine without CUDA is a FileError that suggests map_location). Tensors sharing a storage in
// the file share it in memory; requires_grad is restored.
// Details: dict keys keep their type (str, int as in an optimizer's `state`, or both); others are a FileError.
// dtypes load as strings ("torch.float32"), devices as "cuda:0". Limits: docs/hostile-inputs.md.
// Files from torch::pickle_save load too; the legacy (pre-1.6, non-zip) format and TorchScript
// archives are a FileError.
// Uses options.map_location() only.
c10::IValue load_pt(const std::string& path, const LoadOptions& options = {});

// Same, from bytes in memory. `what` names the source in error messages.
c10::IValue load_pt_bytes(const std::string& bytes, const std::string& what, const LoadOptions& options = {});

// Writes a Tensor, or a GenericDict of (nested) dicts / tensors / lists / scalars / strings.
// Tensors are saved from CPU copies, keeping their dtype, shape and strides (a non-contiguous
// tensor reads back non-contiguous with the same strides). Tensors sharing a storage are saved once.
// Python reads the result with torch.load; an undefined tensor is written as None. (Python torch 1.13's
// torch.load(weights_only=True) cannot read float scalars, ours or Python's own; tensors are fine.)
void save_pt(const c10::IValue& value, const std::string& path);
std::string save_pt_bytes(const c10::IValue& value);

// Convenience wrappers with the top-level type checked (FileError naming the path otherwise).
torch::Tensor load_tensor(const std::string& path, const LoadOptions& options = {});
void save_tensor(const torch::Tensor& tensor, const std::string& path);

// A flat dict of string -> tensor (a state_dict or states file). Nested dicts are an error here.
TensorDict load_tensor_dict(const std::string& path, const LoadOptions& options = {});
void save_tensor_dict(const TensorDict& dict, const std::string& path);

// Conversions between TensorDict and a GenericDict IValue (for nesting into bigger files).
c10::IValue to_ivalue(const TensorDict& dict);
// `what` names the value in the error message, e.g. "<path>: 'state_dict'".
TensorDict to_tensor_dict(const c10::IValue& value, const std::string& what);

// Atomic write of raw bytes: temp file in the same directory, fsync, rename; creates parents.
void write_file_atomic(const std::string& bytes, const std::string& path);

}  // namespace tt::io
