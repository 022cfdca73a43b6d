#include "tracetorch/io/idx.h"

#include <zlib.h>

#include <cstdlib>
#include <limits>
#include <vector>

#include "tracetorch/core/error.h"

namespace tt::io {

namespace {

// Reads the whole file through zlib, which passes plain (uncompressed) files through unchanged.
std::string read_all(const std::string& path) {
  gzFile file = gzopen(path.c_str(), "rb");
  if (file == nullptr) throw FileError(path + ": cannot open IDX file (no such file or not readable)");
  std::string data;
  std::vector<char> buffer(1 << 16);
  while (true) {
    const int n = gzread(file, buffer.data(), static_cast<unsigned>(buffer.size()));
    if (n < 0) {
      int code = 0;
      std::string message = gzerror(file, &code);
      gzclose(file);
      throw FileError(path + ": corrupt compressed data (" + message + ")");
    }
    if (n == 0) break;
    data.append(buffer.data(), static_cast<size_t>(n));
  }
  gzclose(file);
  return data;
}

uint32_t big_endian_u32(const std::string& data, size_t offset) {
  uint32_t v = 0;
  for (size_t i = 0; i < 4; ++i) v = (v << 8) | static_cast<uint8_t>(data[offset + i]);
  return v;
}

}  // namespace

torch::Tensor load_idx(const std::string& path) {
  const std::string data = read_all(path);
  if (data.size() < 4 || data[0] != 0 || data[1] != 0)
    throw FileError(path + ": not an IDX file (bad magic number)");
  torch::ScalarType dtype;
  size_t element_size = 0;
  switch (static_cast<uint8_t>(data[2])) {
    case 0x08: dtype = torch::kUInt8; element_size = 1; break;
    case 0x09: dtype = torch::kInt8; element_size = 1; break;
    case 0x0B: dtype = torch::kInt16; element_size = 2; break;
    case 0x0C: dtype = torch::kInt32; element_size = 4; break;
    case 0x0D: dtype = torch::kFloat32; element_size = 4; break;
    case 0x0E: dtype = torch::kFloat64; element_size = 8; break;
    default: throw FileError(path + ": unknown IDX element type " + std::to_string(static_cast<uint8_t>(data[2])));
  }
  const size_t rank = static_cast<uint8_t>(data[3]);
  if (data.size() < 4 + 4 * rank) throw FileError(path + ": truncated IDX header");
  std::vector<int64_t> shape;
  uint64_t count = 1;
  for (size_t i = 0; i < rank; ++i) {
    const uint32_t d = big_endian_u32(data, 4 + 4 * i);
    shape.push_back(d);
    if (d != 0 && count > std::numeric_limits<uint64_t>::max() / d) throw FileError(path + ": IDX dimensions overflow");
    count *= d;
  }
  const size_t header = 4 + 4 * rank;
  if (count > (data.size() - header) / element_size || data.size() - header != count * element_size)
    throw FileError(path + ": IDX payload has " + std::to_string(data.size() - header) + " bytes, expected " +
                    std::to_string(count * element_size) + " (truncated or corrupt)");
  torch::Tensor out = torch::empty(shape, torch::TensorOptions().dtype(dtype));
  auto* dst = static_cast<uint8_t*>(out.data_ptr());
  // IDX stores multi-byte values big-endian.
  for (size_t i = 0; i < count; ++i)
    for (size_t b = 0; b < element_size; ++b)
      dst[i * element_size + b] = static_cast<uint8_t>(data[header + i * element_size + (element_size - 1 - b)]);
  return out;
}

}  // namespace tt::io
