// Pickles IValues the way Python's torch.save does, so that torch.load (including
// weights_only=True) reads them back: protocol 2, tensors as
//   torch._utils._rebuild_tensor_v2(persistent storage id, offset, size, stride, requires_grad,
//                                   collections.OrderedDict())
// with the whole underlying storage written once per storage.
#include "pickle.h"

#include "tracetorch/core/error.h"

#include <cstring>
#include <unordered_map>

namespace tt::io::detail {

namespace {

constexpr size_t kMaxDepth = 512;

const char* storage_type_name(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::ScalarType::Float: return "FloatStorage";
    case c10::ScalarType::Double: return "DoubleStorage";
    case c10::ScalarType::Half: return "HalfStorage";
    case c10::ScalarType::BFloat16: return "BFloat16Storage";
    case c10::ScalarType::Long: return "LongStorage";
    case c10::ScalarType::Int: return "IntStorage";
    case c10::ScalarType::Short: return "ShortStorage";
    case c10::ScalarType::Char: return "CharStorage";
    case c10::ScalarType::Byte: return "ByteStorage";
    case c10::ScalarType::Bool: return "BoolStorage";
    default: return nullptr;
  }
}

bool valid_utf8(const std::string& s) {
  size_t i = 0;
  const size_t n = s.size();
  while (i < n) {
    unsigned char c = static_cast<unsigned char>(s[i]);
    size_t extra = 0;
    uint32_t cp = 0;
    if (c < 0x80) {
      ++i;
      continue;
    } else if ((c & 0xE0) == 0xC0) {
      extra = 1;
      cp = c & 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      extra = 2;
      cp = c & 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      extra = 3;
      cp = c & 0x07;
    } else {
      return false;
    }
    if (i + extra >= n) return false;
    for (size_t k = 1; k <= extra; ++k) {
      unsigned char cc = static_cast<unsigned char>(s[i + k]);
      if ((cc & 0xC0) != 0x80) return false;
      cp = (cp << 6) | (cc & 0x3F);
    }
    static const uint32_t min_cp[4] = {0, 0x80, 0x800, 0x10000};
    if (cp < min_cp[extra] || cp > 0x10FFFF) return false;  // overlong or out of range
    i += extra + 1;
  }
  return true;
}

class Pickler {
 public:
  Pickler(const std::string& what, std::vector<PickledStorage>& storages) : what_(what), storages_(storages) {}

  std::string run(const c10::IValue& value) {
    out_ += "\x80\x02";  // PROTO 2
    write(value, 0);
    out_ += '.';  // STOP
    return std::move(out_);
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const { throw tt::FileError(what_ + ": " + msg); }

  void put_le(uint64_t v, size_t n) {
    for (size_t k = 0; k < n; ++k) out_ += static_cast<char>((v >> (8 * k)) & 0xFF);
  }

  void memoize() {
    uint64_t index = memo_count_++;
    if (index < 256) {
      out_ += 'q';
      put_le(index, 1);
    } else {
      out_ += 'r';
      put_le(index, 4);
    }
  }
  void memo_get(uint64_t index) {
    if (index < 256) {
      out_ += 'h';
      put_le(index, 1);
    } else {
      out_ += 'j';
      put_le(index, 4);
    }
  }

  void write_int(int64_t v) {
    if (v >= 0 && v < 256) {
      out_ += 'K';
      put_le(static_cast<uint64_t>(v), 1);
    } else if (v >= 0 && v < 65536) {
      out_ += 'M';
      put_le(static_cast<uint64_t>(v), 2);
    } else if (v >= std::numeric_limits<int32_t>::min() && v <= std::numeric_limits<int32_t>::max()) {
      out_ += 'J';
      put_le(static_cast<uint32_t>(static_cast<int32_t>(v)), 4);
    } else {
      out_ += '\x8a';  // LONG1, 8 bytes of two's complement
      out_ += '\x08';
      put_le(static_cast<uint64_t>(v), 8);
    }
  }

  void write_float(double v) {
    uint64_t bits = 0;
    std::memcpy(&bits, &v, 8);
    out_ += 'G';
    for (int k = 7; k >= 0; --k) out_ += static_cast<char>((bits >> (8 * k)) & 0xFF);
  }

  void write_str(const std::string& s) {
    if (!valid_utf8(s)) fail("string is not valid UTF-8 (Python could not read it)");
    if (s.size() > std::numeric_limits<uint32_t>::max()) fail("string too long");
    out_ += 'X';
    put_le(s.size(), 4);
    out_ += s;
  }

  // GLOBAL, memoized so that repeated uses become BINGETs (as Python does).
  void write_global(const std::string& module, const std::string& name) {
    std::string key = module + "\n" + name + "\n";
    auto it = globals_.find(key);
    if (it != globals_.end()) {
      memo_get(it->second);
      return;
    }
    out_ += 'c';
    out_ += key;
    globals_.emplace(key, memo_count_);
    memoize();
  }

  void write_tuple_of_ints(c10::IntArrayRef values) {
    if (values.empty()) {
      out_ += ')';
      return;
    }
    if (values.size() > 3) out_ += '(';
    for (int64_t v : values) write_int(v);
    if (values.size() == 1) out_ += '\x85';
    else if (values.size() == 2) out_ += '\x86';
    else if (values.size() == 3) out_ += '\x87';
    else out_ += 't';
  }

  void write_tensor(const at::Tensor& tensor) {
    if (!tensor.defined()) {
      out_ += 'N';  // an undefined tensor is saved as None
      return;
    }
    auto found = tensors_.find(tensor.unsafeGetTensorImpl());
    if (found != tensors_.end()) {
      memo_get(found->second);
      return;
    }
    if (tensor.layout() != at::kStrided) fail("cannot save a tensor with layout " + c10::str(tensor.layout()));
    if (tensor.is_quantized()) fail("cannot save a quantized tensor");
    if (tensor.is_conj() || tensor.is_neg()) fail("cannot save a tensor with a pending conj/neg bit");
    const char* type_name = storage_type_name(tensor.scalar_type());
    if (type_name == nullptr) fail("cannot save a tensor of dtype " + std::string(c10::toString(tensor.scalar_type())));
    const size_t elem = element_size(tensor.scalar_type());

    const c10::Storage& storage = tensor.storage();
    const c10::StorageImpl* impl = storage.unsafeGetStorageImpl();
    const int64_t storage_numel = static_cast<int64_t>(storage.nbytes() / elem);
    auto known = storage_keys_.find(impl);
    std::string key;
    if (known != storage_keys_.end()) {
      if (known->second.second != tensor.scalar_type())
        fail("cannot save two tensors that view the same storage as different dtypes");
      key = known->second.first;
    } else {
      key = std::to_string(storage_keys_.size());
      storage_keys_.emplace(impl, std::make_pair(key, tensor.scalar_type()));
      PickledStorage record;
      record.key = key;
      record.nbytes = static_cast<size_t>(storage_numel) * elem;
      if (tensor.device().is_cpu()) {
        record.storage = storage;
      } else {
        // Copy the whole storage, so offset and strides stay valid on the CPU.
        at::Tensor whole = at::empty({0}, tensor.options()).set_(storage, 0, {storage_numel}, {1});
        record.storage = whole.cpu().storage();
      }
      storages_.push_back(std::move(record));
    }

    write_global("torch._utils", "_rebuild_tensor_v2");
    out_ += '(';
    // persistent id: ('storage', torch.<Type>Storage, key, 'cpu', numel)
    out_ += '(';
    write_str("storage");
    write_global("torch", type_name);
    write_str(key);
    write_str("cpu");
    write_int(storage_numel);
    out_ += 't';
    out_ += 'Q';  // BINPERSID
    write_int(tensor.storage_offset());
    write_tuple_of_ints(tensor.sizes());
    write_tuple_of_ints(tensor.strides());
    out_ += tensor.requires_grad() ? '\x88' : '\x89';
    write_global("collections", "OrderedDict");
    out_ += ')';
    out_ += 'R';
    out_ += 't';
    out_ += 'R';
    tensors_.emplace(tensor.unsafeGetTensorImpl(), memo_count_);
    memoize();
  }

  void write(const c10::IValue& v, size_t depth) {
    if (depth > kMaxDepth) fail("value nests deeper than " + std::to_string(kMaxDepth) + " levels (a cycle?)");
    if (v.isNone()) {
      out_ += 'N';
    } else if (v.isBool()) {
      out_ += v.toBool() ? '\x88' : '\x89';
    } else if (v.isInt()) {
      write_int(v.toInt());
    } else if (v.isDouble()) {
      write_float(v.toDouble());
    } else if (v.isString()) {
      write_str(v.toStringRef());
    } else if (v.isTensor()) {
      write_tensor(v.toTensor());
    } else if (v.isTuple()) {
      const auto& items = v.toTupleRef().elements();
      if (items.empty()) {
        out_ += ')';
        return;
      }
      if (items.size() > 3) out_ += '(';
      for (const auto& item : items) write(item, depth + 1);
      if (items.size() == 1) out_ += '\x85';
      else if (items.size() == 2) out_ += '\x86';
      else if (items.size() == 3) out_ += '\x87';
      else out_ += 't';
    } else if (v.isList()) {
      out_ += ']';
      auto items = v.toListRef();
      if (items.empty()) return;
      out_ += '(';
      for (const auto& item : items) write(item, depth + 1);
      out_ += 'e';  // APPENDS
    } else if (v.isGenericDict()) {
      out_ += '}';
      auto dict = v.toGenericDict();
      if (dict.empty()) return;
      out_ += '(';
      for (const auto& entry : dict) {
        write(entry.key(), depth + 1);
        write(entry.value(), depth + 1);
      }
      out_ += 'u';  // SETITEMS
    } else {
      fail("cannot save a value of type " + v.type()->str() + " (only tensors, dicts, lists, tuples, strings, "
           "numbers, bools and None)");
    }
  }

  const std::string& what_;
  std::vector<PickledStorage>& storages_;
  std::string out_;
  uint64_t memo_count_ = 0;
  std::unordered_map<std::string, uint64_t> globals_;
  std::unordered_map<const c10::TensorImpl*, uint64_t> tensors_;
  std::unordered_map<const c10::StorageImpl*, std::pair<std::string, c10::ScalarType>> storage_keys_;
};

}  // namespace

std::string pickle(const c10::IValue& value, const std::string& what, std::vector<PickledStorage>& storages) {
  Pickler pickler(what, storages);
  return pickler.run(value);
}

}  // namespace tt::io::detail
