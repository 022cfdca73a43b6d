#pragma once
// Private to src/io: the pickle subset used by torch.save files (protocol 2, plus the few
// protocol 4 opcodes a newer Python may emit), read and written without any Python.
#include <torch/torch.h>

#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace tt::io::detail {

// Returns the bytes of record "data/<key>" as a CPU storage of exactly `nbytes` bytes, or throws
// tt::FileError. Called at most once per key.
using StorageLoader = std::function<c10::Storage(const std::string& key, uint64_t nbytes)>;

// Interprets `data.pkl`. Only allow-listed globals are accepted (see pickle_reader.cpp); anything
// else, and any malformed, truncated or inconsistent input, throws tt::FileError whose message
// starts with `what`. Tensors are placed on `map_location` when given, otherwise on the device
// recorded in the file.
c10::IValue unpickle(const char* data, size_t size, const std::string& what, const StorageLoader& load_storage,
                     std::optional<c10::Device> map_location);

// One storage to write as record "data/<key>": `storage` holds `nbytes` bytes on the CPU.
struct PickledStorage {
  std::string key;
  c10::Storage storage;
  size_t nbytes = 0;
};

// Pickles `value` the way Python's torch.save does (protocol 2, tensors through
// torch._utils._rebuild_tensor_v2 and persistent storage ids). Storages to write are appended to
// `storages` in first-use order. Unsupported values throw tt::FileError starting with `what`.
std::string pickle(const c10::IValue& value, const std::string& what, std::vector<PickledStorage>& storages);

// Element size in bytes of the dtypes a .pt file may hold; 0 for any other dtype.
size_t element_size(c10::ScalarType dtype);

}  // namespace tt::io::detail
