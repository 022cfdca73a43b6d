// libFuzzer target: NIR files (HDF5) read from memory by tt::io::load_nir_bytes. Every input must
// load or throw tt::FileError.
#include <cstddef>
#include <cstdint>
#include <string>

#include "tracetorch/core/error.h"
#include "tracetorch/io/nir_file.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  const std::string bytes(reinterpret_cast<const char*>(data), size);
  try {
    tt::io::load_nir_bytes(bytes, "fuzz.nir");
  } catch (const tt::FileError&) {
  }
  return 0;
}
