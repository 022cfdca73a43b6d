// The .pt container: a zip archive (read/written by LibTorch's PyTorchStreamReader/Writer) holding
// "data.pkl" (src/io/pickle_*.cpp), one "data/<key>" record per storage, and "version".
#include "tracetorch/io/pt_file.h"

#include "pickle.h"
#include "value_kind.h"
#include "zip_check.h"
#include "tracetorch/core/error.h"

#include <caffe2/serialize/inline_container.h>
#include <caffe2/serialize/read_adapter_interface.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <memory>

namespace tt::io {

namespace {

namespace ser = caffe2::serialize;
using detail::describe_value;

// Reads from bytes in memory; never reads past the end (a corrupt archive may ask to).
class StringReadAdapter final : public ser::ReadAdapterInterface {
 public:
  explicit StringReadAdapter(const std::string& bytes) : bytes_(bytes) {}
  size_t size() const override { return bytes_.size(); }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= bytes_.size()) return 0;
    n = std::min<uint64_t>(n, bytes_.size() - pos);
    std::memcpy(buf, bytes_.data() + pos, n);
    return n;
  }

 private:
  const std::string& bytes_;
};

// Reads from an open file with pread; owns the descriptor.
class FileReadAdapter final : public ser::ReadAdapterInterface {
 public:
  FileReadAdapter(int fd, uint64_t size) : fd_(fd), size_(size) {}
  ~FileReadAdapter() override { ::close(fd_); }
  size_t size() const override { return size_; }
  size_t read(uint64_t pos, void* buf, size_t n, const char* /*what*/) const override {
    if (pos >= size_) return 0;
    n = std::min<uint64_t>(n, size_ - pos);
    size_t done = 0;
    while (done < n) {
      ssize_t got = ::pread(fd_, static_cast<char*>(buf) + done, n - done, static_cast<off_t>(pos + done));
      if (got < 0 && errno == EINTR) continue;
      if (got <= 0) break;
      done += static_cast<size_t>(got);
    }
    return done;
  }

 private:
  int fd_;
  uint64_t size_;
};

std::string first_line(const std::string& text) {
  std::string line = text.substr(0, text.find('\n'));
  if (line.size() > 300) line = line.substr(0, 300) + "...";
  return line;
}


c10::IValue load_archive(const std::shared_ptr<ser::ReadAdapterInterface>& in, const std::string& what,
                         std::optional<torch::Device> map_location) {
  try {
    char magic[4] = {0, 0, 0, 0};
    size_t got = in->size() >= 4 ? in->read(0, magic, 4) : 0;
    if (got < 4 || magic[0] != 'P' || magic[1] != 'K') {
      if (got >= 1 && static_cast<unsigned char>(magic[0]) == 0x80)
        throw tt::FileError(what + ": not a zip archive; it looks like the legacy (pre-1.6) torch.save format, which "
                                   "is not supported (re-save it with a current torch.save)");
      throw tt::FileError(what + ": not a torch file (not a zip archive)");
    }
    // Before LibTorch's reader: it trusts declared sizes and leaks when its constructor throws.
    detail::check_zip_container(*in, what);
    ser::PyTorchStreamReader reader(in);
    if (reader.hasRecord("constants.pkl") || reader.hasRecord("bytecode.pkl"))
      throw tt::FileError(what + ": is a TorchScript archive (torch.jit.save), not a torch.save file");
    if (!reader.hasRecord("data.pkl")) {
      throw tt::FileError(what + ": not a torch.save file (no data.pkl record)");
    }
    if (reader.hasRecord("byteorder")) {  // written by newer Pythons; absent means little-endian
      auto [order, order_size] = reader.getRecord("byteorder");
      std::string text(static_cast<const char*>(order.get()), order_size);
      if (text != "little")
        throw tt::FileError(what + ": byte order '" + first_line(text) + "' is not supported (only little-endian)");
    }
    auto [pickle_data, pickle_size] = reader.getRecord("data.pkl");
    if (pickle_size == 0 || pickle_data.get() == nullptr) throw tt::FileError(what + ": data.pkl is empty");

    detail::StorageLoader loader = [&](const std::string& key, uint64_t nbytes) {
      const std::string name = "data/" + key;
      if (!reader.hasRecord(name)) throw tt::FileError(what + ": missing record '" + name + "'");
      auto [ptr, size] = reader.getRecord(name);
      if (size != nbytes)
        throw tt::FileError(what + ": record '" + name + "' has " + std::to_string(size) + " bytes, expected " +
                            std::to_string(nbytes));
      return c10::Storage(c10::Storage::use_byte_size_t(), size, std::move(ptr), /*allocator=*/nullptr,
                          /*resizable=*/false);
    };
    return detail::unpickle(static_cast<const char*>(pickle_data.get()), pickle_size, what, loader, map_location);
  } catch (const tt::FileError&) {
    throw;
  } catch (const c10::Error& e) {
    throw tt::FileError(what + ": not a valid torch file: " + first_line(e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    throw tt::FileError(what + ": out of memory while reading (corrupt record sizes?)");
  } catch (const std::exception& e) {
    throw tt::FileError(what + ": not a valid torch file: " + first_line(e.what()));
  }
}

std::string save_bytes(const c10::IValue& value, const std::string& what) {
  try {
    std::vector<detail::PickledStorage> storages;
    const std::string pkl = detail::pickle(value, what, storages);
    std::string out;
    {
      ser::PyTorchStreamWriter writer([&out](const void* buf, size_t n) -> size_t {
        if (buf != nullptr) out.append(static_cast<const char*>(buf), n);
        else out.append(n, '\0');
        return n;
      });
      writer.writeRecord("data.pkl", pkl.data(), pkl.size());
      static const char empty = 0;
      for (const auto& s : storages) {
        const void* data = s.nbytes > 0 ? s.storage.data() : &empty;
        writer.writeRecord("data/" + s.key, data, s.nbytes);
      }
      writer.writeEndOfFile();  // also writes the "version" record
    }
    return out;
  } catch (const tt::FileError&) {
    throw;
  } catch (const c10::Error& e) {
    throw tt::FileError(what + ": cannot save: " + first_line(e.what_without_backtrace()));
  } catch (const std::bad_alloc&) {
    throw tt::FileError(what + ": cannot save: out of memory");
  }
}

}  // namespace

c10::IValue load_pt(const std::string& path, const LoadOptions& options) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0) {
    if (errno == ENOENT || errno == ENOTDIR) throw tt::FileError(path + ": no such file");
    throw tt::FileError(path + ": cannot open: " + std::strerror(errno));
  }
  if (S_ISDIR(st.st_mode)) throw tt::FileError(path + ": is a directory, not a file");
  int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) throw tt::FileError(path + ": cannot open: " + std::strerror(errno));
  if (::fstat(fd, &st) != 0) {
    int err = errno;
    ::close(fd);
    throw tt::FileError(path + ": cannot stat: " + std::strerror(err));
  }
  auto adapter = std::make_shared<FileReadAdapter>(fd, static_cast<uint64_t>(st.st_size));
  return load_archive(adapter, path, options.map_location());
}

c10::IValue load_pt_bytes(const std::string& bytes, const std::string& what, const LoadOptions& options) {
  return load_archive(std::make_shared<StringReadAdapter>(bytes), what, options.map_location());
}

void save_pt(const c10::IValue& value, const std::string& path) { write_file_atomic(save_bytes(value, path), path); }

std::string save_pt_bytes(const c10::IValue& value) { return save_bytes(value, "save_pt_bytes"); }

torch::Tensor load_tensor(const std::string& path, const LoadOptions& options) {
  c10::IValue v = load_pt(path, options);
  if (!v.isTensor()) throw tt::FileError(path + ": expected a tensor at the top level, found " + describe_value(v));
  return v.toTensor();
}

void save_tensor(const torch::Tensor& tensor, const std::string& path) {
  if (!tensor.defined()) throw tt::FileError(path + ": cannot save an undefined tensor");
  save_pt(c10::IValue(tensor), path);
}

TensorDict load_tensor_dict(const std::string& path, const LoadOptions& options) {
  return to_tensor_dict(load_pt(path, options), path);
}

void save_tensor_dict(const TensorDict& dict, const std::string& path) { save_pt(to_ivalue(dict), path); }

c10::IValue to_ivalue(const TensorDict& dict) {
  c10::Dict<std::string, at::Tensor> out;
  for (const auto& item : dict) out.insert_or_assign(item.key(), item.value());
  return c10::IValue(out);
}

TensorDict to_tensor_dict(const c10::IValue& value, const std::string& what) {
  if (!value.isGenericDict()) throw tt::FileError(what + ": expected a dict of tensors, found " + describe_value(value));
  TensorDict out;
  for (const auto& entry : value.toGenericDict()) {
    if (!entry.key().isString())
      throw tt::FileError(what + ": expected a dict with string keys, found a key that is " + describe_value(entry.key()));
    const std::string& key = entry.key().toStringRef();
    const c10::IValue& v = entry.value();
    if (!v.isTensor() || !v.toTensor().defined())
      throw tt::FileError(what + ": value of '" + key + "' is " + describe_value(v) +
                          ", expected a tensor (nested dicts are not allowed here)");
    if (out.contains(key)) throw tt::FileError(what + ": duplicate key '" + key + "'");
    out.insert(key, v.toTensor());
  }
  return out;
}

}  // namespace tt::io
