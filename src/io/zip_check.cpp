// check_zip_container: the zip structure LibTorch's PyTorchStreamReader (miniz) relies on, checked
// in the same order and at least as strictly as miniz's own reader, plus what miniz leaves unchecked
// (declared sizes the file cannot back, overlapping records, duplicate names).
#include "zip_check.h"

#include <caffe2/serialize/versions.h>
#include <zlib.h>

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <unordered_set>
#include <vector>

#include "tracetorch/core/error.h"

namespace tt::io::detail {

namespace {

constexpr uint32_t kEndSignature = 0x06054b50;
constexpr uint32_t kZip64LocatorSignature = 0x07064b50;
constexpr uint32_t kZip64EndSignature = 0x06064b50;
constexpr uint32_t kCentralSignature = 0x02014b50;
constexpr uint32_t kLocalSignature = 0x04034b50;
constexpr size_t kEndSize = 22;
constexpr size_t kZip64LocatorSize = 20;
constexpr size_t kZip64EndSize = 56;
constexpr size_t kCentralSize = 46;
constexpr size_t kLocalSize = 30;
constexpr uint32_t kUnknown32 = 0xFFFFFFFFu;
constexpr uint16_t kZip64ExtraId = 0x0001;
constexpr uint16_t kFlagEncrypted = 0x0001;
constexpr uint16_t kFlagMaskedLocalHeader = 0x2000;

uint16_t u16(const char* p) {
  const auto* b = reinterpret_cast<const unsigned char*>(p);
  return static_cast<uint16_t>(b[0] | (b[1] << 8));
}
uint32_t u32(const char* p) { return u16(p) | (static_cast<uint32_t>(u16(p + 2)) << 16); }
uint64_t u64(const char* p) { return u32(p) | (static_cast<uint64_t>(u32(p + 4)) << 32); }

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

std::string printable(const std::string& s) {
  std::string out;
  for (char c : s.substr(0, 80)) out += std::isprint(static_cast<unsigned char>(c)) ? c : '?';
  return s.size() > 80 ? out + "..." : out;
}

struct Record {
  std::string name;
  uint16_t flags = 0;
  uint16_t method = 0;
  uint32_t crc = 0;
  uint64_t compressed = 0;
  uint64_t size = 0;
  uint64_t offset = 0;
};

class Checker {
 public:
  Checker(const caffe2::serialize::ReadAdapterInterface& in, const std::string& what)
      : in_(in), what_(what), size_(in.size()) {}

  void run() {
    const uint64_t end = find_end_record();
    const std::string eocd = read(end, kEndSize, "the end-of-central-directory record");
    uint64_t entries = u16(eocd.data() + 10);
    uint64_t entries_here = u16(eocd.data() + 8);
    uint64_t disk = u16(eocd.data() + 4);
    uint64_t directory_disk = u16(eocd.data() + 6);
    uint64_t directory_size = u32(eocd.data() + 12);
    uint64_t directory_offset = u32(eocd.data() + 16);
    if (end >= kZip64LocatorSize + kZip64EndSize) {
      const std::string locator = read(end - kZip64LocatorSize, kZip64LocatorSize, "the zip64 locator");
      if (u32(locator.data()) == kZip64LocatorSignature) {
        const uint64_t at = u64(locator.data() + 8);
        if (at > size_ - kZip64EndSize) fail("the zip64 end-of-central-directory record lies outside the file");
        const std::string z = read(at, kZip64EndSize, "the zip64 end-of-central-directory record");
        if (u32(z.data()) == kZip64EndSignature) {
          if (u64(z.data() + 4) < kZip64EndSize - 12) fail("the zip64 end-of-central-directory record is too short");
          if (u32(locator.data() + 16) != 1) fail("multi-disk zip archives are not supported");
          entries = u64(z.data() + 32);
          entries_here = u64(z.data() + 24);
          disk = u32(z.data() + 16);
          directory_disk = u32(z.data() + 20);
          directory_size = u64(z.data() + 40);
          directory_offset = u64(z.data() + 48);
          if (entries > kUnknown32 || entries_here > kUnknown32 || directory_size > kUnknown32)
            fail("the zip64 central directory is too large");
        }
      }
    }
    if (entries != entries_here || ((disk | directory_disk) != 0 && (disk != 1 || directory_disk != 1)))
      fail("multi-disk zip archives are not supported");
    if (entries == 0) fail("the zip archive holds no records");
    if (entries > kMaxZipEntries)
      fail(std::to_string(entries) + " records is more than the limit of " + std::to_string(kMaxZipEntries));
    if (directory_size < entries * kCentralSize || directory_offset > size_ || directory_size > size_ - directory_offset)
      fail("the central directory does not fit its declared size and place");
    if (directory_size > kMaxCentralDirectoryBytes)
      fail("a central directory of " + std::to_string(directory_size) + " bytes is more than the limit of " +
           std::to_string(kMaxCentralDirectoryBytes));
    read_directory(read(directory_offset, directory_size, "the central directory"), entries, disk);
    check_layout(directory_offset);
    check_names_and_version();
  }

 private:
  [[noreturn]] void fail(const std::string& why) const {
    throw tt::FileError(what_ + ": not a valid torch file: " + why);
  }
  [[noreturn]] void fail(const Record& r, const std::string& why) const {
    fail("record '" + printable(r.name) + "' " + why);
  }

  std::string read(uint64_t pos, uint64_t n, const std::string& part) const {
    if (pos > size_ || n > size_ - pos) fail(part + " lies outside the file (truncated?)");
    std::string buf(static_cast<size_t>(n), '\0');
    if (n > 0 && in_.read(pos, buf.data(), buf.size(), "zip check") != buf.size()) fail("cannot read " + part);
    return buf;
  }

  // The last end-of-central-directory signature with room for the record after it, as miniz
  // picks it (a zip comment may be at most 65535 bytes).
  uint64_t find_end_record() const {
    const char* const no_record =
        ": not a torch file: truncated or corrupt zip archive (no end-of-central-directory record)";
    if (size_ < kEndSize) throw tt::FileError(what_ + no_record);
    const uint64_t tail = std::min<uint64_t>(size_, kEndSize + 65535);
    const std::string buf = read(size_ - tail, tail, "the end of the file");
    for (size_t pos = buf.size() - kEndSize + 1; pos-- > 0;)
      if (u32(buf.data() + pos) == kEndSignature) return size_ - tail + pos;
    throw tt::FileError(what_ + no_record);
  }

  void read_directory(const std::string& dir, uint64_t entries, uint64_t disk) {
    size_t p = 0;
    records_.reserve(static_cast<size_t>(entries));
    for (uint64_t i = 0; i < entries; ++i) {
      if (dir.size() - p < kCentralSize || u32(dir.data() + p) != kCentralSignature)
        fail("central directory entry " + std::to_string(i) + " is damaged");
      const char* h = dir.data() + p;
      Record r;
      r.flags = u16(h + 8);
      r.method = u16(h + 10);
      r.crc = u32(h + 16);
      r.compressed = u32(h + 20);
      r.size = u32(h + 24);
      r.offset = u32(h + 42);
      const size_t name_length = u16(h + 28), extra_length = u16(h + 30), comment_length = u16(h + 32);
      const uint16_t record_disk = u16(h + 34);
      if (kCentralSize + name_length + extra_length + comment_length > dir.size() - p)
        fail("central directory entry " + std::to_string(i) + " runs past the directory");
      r.name.assign(h + kCentralSize, name_length);
      if (record_disk == 0xFFFF || (record_disk != disk && record_disk != 1)) fail("multi-disk zip archives are not supported");
      read_zip64_extra(r, h + kCentralSize + name_length, extra_length);
      p += kCentralSize + name_length + extra_length + comment_length;
      check_sizes(r);
      records_.push_back(std::move(r));
    }
  }

  // Sizes and offsets of 0xFFFFFFFF are in the zip64 extra field, in this order.
  void read_zip64_extra(Record& r, const char* extra, size_t length) const {
    const bool needs_size = r.size == kUnknown32, needs_compressed = r.compressed == kUnknown32,
               needs_offset = r.offset == kUnknown32;
    size_t p = 0;
    while (p < length) {
      if (length - p < 4) fail(r, "has a damaged extra field");
      const uint16_t id = u16(extra + p), field_length = u16(extra + p + 2);
      if (field_length > length - p - 4) fail(r, "has a damaged extra field");
      if (id == kZip64ExtraId && (needs_size || needs_compressed || needs_offset)) {
        size_t q = p + 4;
        auto take = [&](uint64_t& value) {
          if (q + 8 > p + 4 + field_length) fail(r, "has a short zip64 extra field");
          value = u64(extra + q);
          q += 8;
        };
        if (needs_size) take(r.size);
        if (needs_compressed) take(r.compressed);
        if (needs_offset) take(r.offset);
        return;
      }
      p += 4 + field_length;
    }
    if (needs_size || needs_compressed || needs_offset) fail(r, "needs a zip64 extra field and has none");
  }

  void check_sizes(const Record& r) const {
    if (r.flags & (kFlagEncrypted | kFlagMaskedLocalHeader)) fail(r, "is encrypted");
    if (r.method != 0 && r.method != 8)
      fail(r, "uses compression method " + std::to_string(r.method) + " (only stored and deflate are supported)");
    if (r.method == 0 && r.compressed != r.size)
      fail(r, "is stored uncompressed but declares " + std::to_string(r.size) + " bytes in " +
                  std::to_string(r.compressed));
    if (r.method == 8 && (r.size / kMaxDeflateRatio > r.compressed || (r.size > 0 && r.compressed == 0)))
      fail(r, "declares " + std::to_string(r.size) + " bytes from " + std::to_string(r.compressed) +
                  " compressed bytes, more than deflate can expand");
    if (r.offset > size_ || r.compressed > size_ - r.offset || kLocalSize > size_ - r.offset - r.compressed)
      fail(r, "declares " + std::to_string(r.compressed) + " bytes at offset " + std::to_string(r.offset) +
                  ", beyond the end of the " + std::to_string(size_) + "-byte file");
  }

  // Each record's local header and data lie before the central directory and apart from the
  // others: otherwise a few kilobytes could declare the same large payload a thousand times.
  void check_layout(uint64_t directory_offset) const {
    std::vector<const Record*> by_offset;
    by_offset.reserve(records_.size());
    for (const auto& r : records_) by_offset.push_back(&r);
    std::sort(by_offset.begin(), by_offset.end(), [](const Record* a, const Record* b) { return a->offset < b->offset; });
    for (size_t i = 0; i < by_offset.size(); ++i) {
      const Record& r = *by_offset[i];
      const uint64_t end = r.offset + kLocalSize + r.compressed;  // no overflow: checked against size_
      const uint64_t limit = i + 1 < by_offset.size() ? by_offset[i + 1]->offset : directory_offset;
      if (end > limit) fail(r, "overlaps the next record or the central directory");
    }
  }

  void check_names_and_version() const {
    const std::string& first = records_.front().name;
    const size_t slash = first.find('/');
    if (slash == std::string::npos) fail(records_.front(), "is not inside an archive folder");
    const std::string folder = first.substr(0, slash);
    if (folder.empty() || folder == "." || folder == "..")
      fail("the archive folder '" + printable(folder) + "' is not a folder name");
    // miniz looks names up without regard to case: two names that differ only in case are one.
    std::unordered_set<std::string> names;
    for (const auto& r : records_) {
      if (r.name.empty() || r.name.find('\0') != std::string::npos) fail("a record has an empty or binary name");
      if (!names.insert(lower(r.name)).second) fail(r, "appears twice");
    }
    const Record* version = find(folder + "/.data/version");
    if (version == nullptr) version = find(folder + "/version");
    if (version == nullptr) fail("no '" + printable(folder) + "/version' record (every torch.save file has one)");
    const std::string text = contents(*version);
    char* end = nullptr;
    errno = 0;
    const unsigned long long number = std::strtoull(text.c_str(), &end, 10);
    const bool parsed = end != text.c_str() && errno == 0;
    if (!parsed || number < caffe2::serialize::kMinSupportedFileFormatVersion ||
        number > caffe2::serialize::kMaxSupportedFileFormatVersion)
      fail("format version '" + printable(text.substr(0, text.find_last_not_of(" \n\r\t") + 1)) + "' is not one LibTorch supports (" +
           std::to_string(caffe2::serialize::kMinSupportedFileFormatVersion) + " to " +
           std::to_string(caffe2::serialize::kMaxSupportedFileFormatVersion) + ")");
    // LibTorch 2.x also reads this one while opening.
    if (const Record* id = find(folder + "/.data/serialization_id")) contents(*id);
  }

  const Record* find(const std::string& name) const {
    const std::string key = lower(name);
    for (const auto& r : records_)
      if (lower(r.name) == key) return &r;
    return nullptr;
  }

  // The bytes of a small record, decompressed and checked against its CRC as miniz does.
  std::string contents(const Record& r) const {
    if (r.size > kMaxMetadataRecordBytes)
      fail(r, "declares " + std::to_string(r.size) + " bytes, more than the " +
                  std::to_string(kMaxMetadataRecordBytes) + " such a record may have");
    const std::string local = read(r.offset, kLocalSize, "the local header of '" + printable(r.name) + "'");
    if (u32(local.data()) != kLocalSignature) fail(r, "has a damaged local header");
    const uint64_t data_at = r.offset + kLocalSize + u16(local.data() + 26) + u16(local.data() + 28);
    const std::string stored = read(data_at, r.compressed, "the data of '" + printable(r.name) + "'");
    std::string out(static_cast<size_t>(r.size), '\0');
    if (r.method == 0) {
      out = stored;
    } else {
      z_stream z{};
      if (inflateInit2(&z, -MAX_WBITS) != Z_OK) fail(r, "cannot be decompressed");
      z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(stored.data()));
      z.avail_in = static_cast<uInt>(stored.size());
      z.next_out = reinterpret_cast<Bytef*>(out.data());
      z.avail_out = static_cast<uInt>(out.size());
      const int rc = inflate(&z, Z_FINISH);
      const uLong produced = z.total_out;
      inflateEnd(&z);
      if (rc != Z_STREAM_END || produced != r.size) fail(r, "does not decompress to its declared size");
    }
    const uLong crc = crc32(crc32(0L, Z_NULL, 0), reinterpret_cast<const Bytef*>(out.data()), static_cast<uInt>(out.size()));
    if (crc != r.crc) fail(r, "fails its CRC check");
    return out;
  }

  const caffe2::serialize::ReadAdapterInterface& in_;
  const std::string& what_;
  const uint64_t size_;
  std::vector<Record> records_;
};

}  // namespace

void check_zip_container(const caffe2::serialize::ReadAdapterInterface& in, const std::string& what) {
  Checker(in, what).run();
}

}  // namespace tt::io::detail
