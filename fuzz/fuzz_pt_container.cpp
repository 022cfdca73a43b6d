// libFuzzer target: a whole .pt file (zip container, then data.pkl and the storage records).
// Every input must load or throw tt::FileError; anything else (a crash, a sanitizer report, a leak,
// another exception) is a bug.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tracetorch/core/error.h"
#include "tracetorch/io/pt_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    tt::io::load_pt_bytes(bytes, "fuzz.pt");
  } catch (const tt::FileError&) {
  }
  return 0;
}
