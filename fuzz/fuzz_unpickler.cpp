// libFuzzer target: data.pkl driven directly (a mutated pickle inside a zip rarely survives the
// zip's CRC, so the container target alone seldom reaches the interpreter). Storage records are
// served as zeros, up to 1 MiB each.
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>

#include "io/pickle.h"
#include "tracetorch/core/error.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const tt::io::detail::StorageLoader zeros = [](const std::string& key, uint64_t nbytes) {
    if (nbytes > (uint64_t{1} << 20)) throw tt::FileError("fuzz.pkl: storage '" + key + "' is larger than the harness serves");
    c10::Storage storage(c10::Storage::use_byte_size_t(), static_cast<size_t>(nbytes), c10::GetCPUAllocator(), false);
    if (nbytes > 0) std::memset(storage.data(), 0, static_cast<size_t>(nbytes));
    return storage;
  };
  try {
    tt::io::detail::unpickle(reinterpret_cast<const char*>(data), size, "fuzz.pkl", zeros, std::nullopt);
  } catch (const tt::FileError&) {
  }
  return 0;
}
