#pragma once
// Private to src/io: checks a .pt zip container before LibTorch's PyTorchStreamReader opens it.
// That reader allocates whatever size a record declares before reading it, and leaks its zip state
// when its constructor throws; so every way its constructor can fail, and every declared size that
// the archive cannot back, is refused here first with a tt::FileError naming the file and record.
// The limits are listed in docs/hostile-inputs.md.
#include <caffe2/serialize/read_adapter_interface.h>

#include <cstdint>
#include <string>

namespace tt::io::detail {

// At most this many records, and this many bytes of central directory (a state_dict of 10^5
// tensors needs about 15 MB).
constexpr uint64_t kMaxZipEntries = uint64_t{1} << 20;
constexpr uint64_t kMaxCentralDirectoryBytes = uint64_t{128} << 20;
// Deflate cannot expand data by more than about 1032:1; a record that declares more is lying.
constexpr uint64_t kMaxDeflateRatio = 1032;
// The records LibTorch reads while opening ("version", ".data/serialization_id") are tiny.
constexpr uint64_t kMaxMetadataRecordBytes = 1024;

// Throws tt::FileError ("<what>: ...") unless `in` holds a zip archive LibTorch can open: one
// end-of-central-directory record (zip64 understood), a consistent central directory, records that
// lie inside the file without overlapping, sizes a stored or deflated record can really have, no
// encryption, unique names, an archive folder, and a readable version record LibTorch supports.
void check_zip_container(const caffe2::serialize::ReadAdapterInterface& in, const std::string& what);

}  // namespace tt::io::detail
