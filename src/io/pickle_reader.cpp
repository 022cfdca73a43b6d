// A small, allow-listing pickle interpreter for torch.save's data.pkl.
//
// Objects live in an arena owned by the interpreter and refer to each other by raw pointer, so a
// hostile pickle that builds reference cycles cannot leak or recurse: cycles are detected when the
// result is converted to an IValue. Every read is bounds-checked, every global is checked against
// a fixed allow-list when it is named (not when it is called), and nothing is ever executed.
#include "pickle.h"

#include "tracetorch/core/error.h"

#include <torch/cuda.h>

#include <cstring>
#include <limits>
#include <map>
#include <memory>
#include <unordered_map>
#include <unordered_set>

namespace tt::io::detail {

size_t element_size(c10::ScalarType dtype) {
  switch (dtype) {
    case c10::ScalarType::Float: return 4;
    case c10::ScalarType::Double: return 8;
    case c10::ScalarType::Half: return 2;
    case c10::ScalarType::BFloat16: return 2;
    case c10::ScalarType::Long: return 8;
    case c10::ScalarType::Int: return 4;
    case c10::ScalarType::Short: return 2;
    case c10::ScalarType::Char: return 1;
    case c10::ScalarType::Byte: return 1;
    case c10::ScalarType::Bool: return 1;
    default: return 0;
  }
}

namespace {

constexpr size_t kMaxDepth = 512;   // nesting of containers in the result
constexpr size_t kMaxDims = 64;     // tensor rank
// Every opcode allocates at most one node (~150 bytes) or one reference (8 bytes), so a tiny
// deflated file of one-byte opcodes could otherwise ask for gigabytes. A real state_dict needs
// about 20 nodes per tensor: 2M nodes is 100k tensors, at most ~300 MiB of interpreter memory.
constexpr size_t kMaxPickleBytes = size_t{256} << 20;
constexpr size_t kMaxNodes = size_t{1} << 21;
constexpr size_t kMaxReferences = size_t{1} << 24;  // stack and container slots, marks, memo entries

// Globals the file may name. Everything else is refused.
enum class Global : uint8_t {
  OrderedDict,
  RebuildTensorV2,
  RebuildParameter,
  RebuildParameterWithState,
  RestoreTypeTag,  // torch.jit._pickle.restore_type_tag (written by torch::pickle_save)
  BuildList,       // torch.jit._pickle.build_{int,double,bool,tensor}list
  StorageType,
  Dtype,
  Device,
};

enum class Kind : uint8_t { None, Bool, Int, Float, Str, Tuple, List, Dict, Tensor, Global, Storage };

const char* kind_name(Kind k) {
  switch (k) {
    case Kind::None: return "None";
    case Kind::Bool: return "bool";
    case Kind::Int: return "int";
    case Kind::Float: return "float";
    case Kind::Str: return "str";
    case Kind::Tuple: return "tuple";
    case Kind::List: return "list";
    case Kind::Dict: return "dict";
    case Kind::Tensor: return "tensor";
    case Kind::Global: return "global";
    case Kind::Storage: return "storage";
  }
  return "?";
}

struct Node {
  explicit Node(Kind k) : kind(k) {}
  Kind kind;
  bool b = false;
  bool ordered = false;  // a dict made by collections.OrderedDict (accepts BUILD)
  int64_t i = 0;
  double f = 0.0;
  std::string s;  // Str; Global: the qualified name; Storage: the key
  std::vector<Node*> items;                         // Tuple, List
  std::vector<std::pair<Node*, Node*>> entries;     // Dict
  at::Tensor tensor;                                // Tensor
  Global global = Global::OrderedDict;              // Global
  c10::ScalarType dtype = c10::ScalarType::Undefined;  // Global StorageType/Dtype, Storage
};

// A storage loaded from the archive, shared by all tensors that name its key.
struct StorageEntry {
  c10::ScalarType dtype;
  int64_t numel;
  c10::Device device;
  c10::Storage storage;  // on `device`
};

std::string printable(const std::string& s, size_t max_len = 120) {
  std::string out;
  for (unsigned char c : s) {
    if (out.size() >= max_len) {
      out += "...";
      break;
    }
    if (c >= 0x20 && c < 0x7f) {
      out += static_cast<char>(c);
    } else {
      static const char* hex = "0123456789abcdef";
      out += "\\x";
      out += hex[c >> 4];
      out += hex[c & 15];
    }
  }
  return out;
}

class Unpickler {
 public:
  Unpickler(const char* data, size_t size, const std::string& what, const StorageLoader& loader,
            std::optional<c10::Device> map_location)
      : data_(data), size_(size), what_(what), loader_(loader), map_location_(map_location) {}

  c10::IValue run() {
    Node* result = interpret();
    std::unordered_map<const Node*, c10::IValue> done;
    std::unordered_set<const Node*> active;
    return convert(result, 0, done, active);
  }

 private:
  [[noreturn]] void fail(const std::string& msg) const {
    throw tt::FileError(what_ + ": corrupt data.pkl: " + msg + " (at byte " + std::to_string(op_pos_) + ")");
  }
  [[noreturn]] void fail_plain(const std::string& msg) const { throw tt::FileError(what_ + ": " + msg); }

  // ---- raw reads --------------------------------------------------------------------------
  void need(uint64_t n) {
    if (n > size_ - pos_) fail("truncated (needs " + std::to_string(n) + " more bytes, " +
                               std::to_string(size_ - pos_) + " left)");
  }
  uint8_t u8() {
    need(1);
    return static_cast<uint8_t>(data_[pos_++]);
  }
  uint64_t le(size_t n) {
    need(n);
    uint64_t v = 0;
    for (size_t k = 0; k < n; ++k) v |= static_cast<uint64_t>(static_cast<uint8_t>(data_[pos_ + k])) << (8 * k);
    pos_ += n;
    return v;
  }
  std::string bytes(uint64_t n) {
    need(n);
    std::string s(data_ + pos_, static_cast<size_t>(n));
    pos_ += static_cast<size_t>(n);
    return s;
  }
  std::string line() {
    size_t start = pos_;
    const void* nl = std::memchr(data_ + pos_, '\n', size_ - pos_);
    if (nl == nullptr) fail("unterminated GLOBAL name");
    size_t end = static_cast<size_t>(static_cast<const char*>(nl) - data_);
    pos_ = end + 1;
    return std::string(data_ + start, end - start);
  }

  // ---- arena and stack --------------------------------------------------------------------
  Node* make(Kind k) {
    if (arena_.size() >= kMaxNodes)
      fail_plain("data.pkl builds more than " + std::to_string(kMaxNodes) +
                 " objects (the limit for a torch file; a hostile or corrupt file?)");
    arena_.push_back(std::make_unique<Node>(k));
    return arena_.back().get();
  }
  size_t floor() const { return marks_.empty() ? 0 : marks_.back(); }
  // Counts one more stack or container slot, mark or memo entry against kMaxReferences.
  void reference() {
    if (++references_ > kMaxReferences)
      fail_plain("data.pkl makes more than " + std::to_string(kMaxReferences) +
                 " references (the limit for a torch file; a hostile or corrupt file?)");
  }
  void push(Node* n) {
    reference();
    stack_.push_back(n);
  }
  Node* pop() {
    if (stack_.size() <= floor()) fail("stack underflow");
    Node* n = stack_.back();
    stack_.pop_back();
    return n;
  }
  Node* top() {
    if (stack_.size() <= floor()) fail("stack underflow");
    return stack_.back();
  }
  // Pops everything above the last MARK (and the mark).
  std::vector<Node*> pop_mark() {
    if (marks_.empty()) fail("missing MARK");
    size_t m = marks_.back();
    marks_.pop_back();
    std::vector<Node*> items(stack_.begin() + static_cast<std::ptrdiff_t>(m), stack_.end());
    stack_.resize(m);
    return items;
  }
  Node* tuple(std::vector<Node*> items) {
    Node* t = make(Kind::Tuple);
    t->items = std::move(items);
    return t;
  }
  void memo_put(uint64_t index) {
    if (stack_.empty()) fail("memo store on an empty stack");
    reference();
    memo_[index] = stack_.back();
  }
  void memo_get(uint64_t index) {
    auto it = memo_.find(index);
    if (it == memo_.end()) fail("memo index " + std::to_string(index) + " was never stored");
    push(it->second);
  }

  // ---- globals ----------------------------------------------------------------------------
  Node* resolve_global(const std::string& module, const std::string& name) {
    Node* g = make(Kind::Global);
    g->s = module + "." + name;
    static const std::map<std::string, c10::ScalarType> storages = {
        {"FloatStorage", c10::ScalarType::Float},   {"DoubleStorage", c10::ScalarType::Double},
        {"HalfStorage", c10::ScalarType::Half},     {"BFloat16Storage", c10::ScalarType::BFloat16},
        {"LongStorage", c10::ScalarType::Long},     {"IntStorage", c10::ScalarType::Int},
        {"ShortStorage", c10::ScalarType::Short},   {"CharStorage", c10::ScalarType::Char},
        {"ByteStorage", c10::ScalarType::Byte},     {"BoolStorage", c10::ScalarType::Bool},
    };
    static const std::map<std::string, c10::ScalarType> dtypes = {
        {"float32", c10::ScalarType::Float},  {"float", c10::ScalarType::Float},
        {"float64", c10::ScalarType::Double}, {"double", c10::ScalarType::Double},
        {"float16", c10::ScalarType::Half},   {"half", c10::ScalarType::Half},
        {"bfloat16", c10::ScalarType::BFloat16}, {"int64", c10::ScalarType::Long},
        {"long", c10::ScalarType::Long},      {"int32", c10::ScalarType::Int},
        {"int", c10::ScalarType::Int},        {"int16", c10::ScalarType::Short},
        {"short", c10::ScalarType::Short},    {"int8", c10::ScalarType::Char},
        {"uint8", c10::ScalarType::Byte},     {"bool", c10::ScalarType::Bool},
    };
    if (module == "collections" && name == "OrderedDict") {
      g->global = Global::OrderedDict;
    } else if (module == "torch._utils" && name == "_rebuild_tensor_v2") {
      g->global = Global::RebuildTensorV2;
    } else if (module == "torch._utils" && name == "_rebuild_parameter") {
      g->global = Global::RebuildParameter;
    } else if (module == "torch._utils" && name == "_rebuild_parameter_with_state") {
      g->global = Global::RebuildParameterWithState;
    } else if (module == "torch.jit._pickle" && name == "restore_type_tag") {
      g->global = Global::RestoreTypeTag;
    } else if (module == "torch.jit._pickle" &&
               (name == "build_intlist" || name == "build_doublelist" || name == "build_boollist" ||
                name == "build_tensorlist")) {
      g->global = Global::BuildList;
    } else if (module == "torch" && storages.count(name) != 0) {
      g->global = Global::StorageType;
      g->dtype = storages.at(name);
    } else if (module == "torch" && dtypes.count(name) != 0) {
      g->global = Global::Dtype;
      g->dtype = dtypes.at(name);
    } else if (module == "torch" && name == "device") {
      g->global = Global::Device;
    } else {
      fail_plain("unsupported global '" + printable(g->s) + "' (only tensors and dicts can be loaded)");
    }
    return g;
  }

  // ---- tensors ----------------------------------------------------------------------------
  c10::Device parse_location(const std::string& location) {
    try {
      return c10::Device(location);
    } catch (const std::exception&) {
      fail_plain("storage has an invalid location '" + printable(location) + "'");
    }
  }

  Node* persistent_load(Node* pid) {
    if (pid->kind != Kind::Tuple || pid->items.size() != 5 || pid->items[0]->kind != Kind::Str ||
        pid->items[0]->s != "storage")
      fail("unsupported persistent id (expected ('storage', type, key, location, numel))");
    Node* type = pid->items[1];
    Node* key = pid->items[2];
    Node* location = pid->items[3];
    Node* numel = pid->items[4];
    if (type->kind != Kind::Global || type->global != Global::StorageType)
      fail("persistent id names no storage type");
    if (key->kind != Kind::Str || key->s.empty() || key->s.size() > 64)
      fail("persistent id has an invalid storage key");
    for (char c : key->s)
      if (!std::isalnum(static_cast<unsigned char>(c)) && c != '_') fail("invalid storage key '" + printable(key->s) + "'");
    if (location->kind != Kind::Str) fail("persistent id has no location string");
    if (numel->kind != Kind::Int || numel->i < 0) fail("persistent id has an invalid element count");

    auto it = storages_.find(key->s);
    if (it == storages_.end()) {
      c10::Device device = map_location_ ? *map_location_ : parse_location(location->s);
      // A meta tensor has a shape and no data: loading one only defers the failure.
      if (device.type() == c10::DeviceType::Meta)
        fail_plain("storage '" + key->s + "' would go to the meta device, which holds no data (map_location can place it elsewhere)");
      size_t elem = element_size(type->dtype);
      uint64_t nbytes = 0;
      if (__builtin_mul_overflow(static_cast<uint64_t>(numel->i), static_cast<uint64_t>(elem), &nbytes))
        fail("storage '" + key->s + "' element count overflows");
      c10::Storage storage = loader_(key->s, nbytes);
      if (!device.is_cpu()) storage = move_storage(storage, type->dtype, numel->i, device, key->s, location->s);
      it = storages_.emplace(key->s, StorageEntry{type->dtype, numel->i, device, std::move(storage)}).first;
    } else if (it->second.dtype != type->dtype || it->second.numel != numel->i) {
      fail("storage '" + key->s + "' is used with two different types or sizes");
    }
    Node* n = make(Kind::Storage);
    n->s = key->s;
    n->dtype = type->dtype;
    return n;
  }

  c10::Storage move_storage(const c10::Storage& cpu, c10::ScalarType dtype, int64_t numel, c10::Device device,
                            const std::string& key, const std::string& location) {
    if (device.is_cuda() && (!torch::cuda::is_available() ||
                             (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count()))))
      fail_plain("storage '" + key + "' was saved on '" + printable(location) + "' but device '" + device.str() +
                 "' is not available; pass map_location (e.g. torch::kCPU)");
    at::Tensor base = at::empty({0}, at::TensorOptions().dtype(dtype)).set_(cpu, 0, {numel}, {1});
    return base.to(device).storage();
  }

  int64_t as_int(Node* n, const char* what) {
    if (n->kind != Kind::Int) fail(std::string(what) + " is a " + kind_name(n->kind) + ", expected an int");
    return n->i;
  }
  std::vector<int64_t> int_tuple(Node* n, const char* what) {
    if (n->kind != Kind::Tuple && n->kind != Kind::List)
      fail(std::string(what) + " is a " + kind_name(n->kind) + ", expected a tuple of ints");
    if (n->items.size() > kMaxDims) fail(std::string(what) + " has too many dimensions");
    std::vector<int64_t> out;
    for (Node* item : n->items) {
      int64_t v = as_int(item, what);
      if (v < 0) fail(std::string(what) + " has a negative entry");
      out.push_back(v);
    }
    return out;
  }

  Node* rebuild_tensor(Node* args) {
    if (args->items.size() < 6 || args->items.size() > 7)
      fail("_rebuild_tensor_v2 expects 6 or 7 arguments, got " + std::to_string(args->items.size()));
    Node* storage = args->items[0];
    if (storage->kind != Kind::Storage) fail("_rebuild_tensor_v2: first argument is not a storage");
    int64_t offset = as_int(args->items[1], "storage offset");
    std::vector<int64_t> sizes = int_tuple(args->items[2], "tensor size");
    std::vector<int64_t> strides = int_tuple(args->items[3], "tensor stride");
    Node* requires_grad = args->items[4];
    if (requires_grad->kind != Kind::Bool && requires_grad->kind != Kind::Int)
      fail("_rebuild_tensor_v2: requires_grad is not a bool");
    if (offset < 0) fail("negative storage offset");
    if (sizes.size() != strides.size()) fail("tensor size and stride have different lengths");

    const StorageEntry& entry = storages_.at(storage->s);
    // Every element the view can reach must lie inside the storage.
    uint64_t numel = 1;
    uint64_t max_index = static_cast<uint64_t>(offset);
    bool overflow = false;
    for (size_t d = 0; d < sizes.size(); ++d) overflow |= __builtin_mul_overflow(numel, static_cast<uint64_t>(sizes[d]), &numel);
    if (numel != 0) {
      for (size_t d = 0; d < sizes.size(); ++d) {
        uint64_t span = 0;
        overflow |= __builtin_mul_overflow(static_cast<uint64_t>(sizes[d] - 1), static_cast<uint64_t>(strides[d]), &span);
        overflow |= __builtin_add_overflow(max_index, span, &max_index);
      }
    }
    if (overflow || numel > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
      fail("tensor extent overflows");
    uint64_t storage_numel = static_cast<uint64_t>(entry.numel);
    if (numel != 0 ? max_index >= storage_numel : static_cast<uint64_t>(offset) > storage_numel)
      fail("tensor (offset " + std::to_string(offset) + ", size " + c10::str(c10::IntArrayRef(sizes)) + ", stride " +
           c10::str(c10::IntArrayRef(strides)) + ") reaches past the end of storage '" + storage->s + "' (" +
           std::to_string(storage_numel) + " elements)");

    at::Tensor t = at::empty({0}, at::TensorOptions().dtype(entry.dtype).device(entry.device))
                       .set_(entry.storage, offset, sizes, strides);
    bool grad = requires_grad->kind == Kind::Bool ? requires_grad->b : requires_grad->i != 0;
    if (grad && at::isFloatingType(entry.dtype)) t.set_requires_grad(true);
    Node* n = make(Kind::Tensor);
    n->tensor = std::move(t);
    return n;
  }

  Node* rebuild_parameter(Node* args, bool with_state) {
    size_t expected = with_state ? 4 : 3;
    if (args->items.size() != expected) fail("_rebuild_parameter expects " + std::to_string(expected) + " arguments");
    Node* data = args->items[0];
    if (data->kind != Kind::Tensor) fail("_rebuild_parameter: first argument is not a tensor");
    Node* requires_grad = args->items[1];
    if (requires_grad->kind != Kind::Bool) fail("_rebuild_parameter: requires_grad is not a bool");
    Node* n = make(Kind::Tensor);
    n->tensor = data->tensor.detach();
    if (requires_grad->b && at::isFloatingType(n->tensor.scalar_type())) n->tensor.set_requires_grad(true);
    return n;
  }

  Node* new_dict(Node* args) {
    Node* d = make(Kind::Dict);
    d->ordered = true;
    if (args->items.empty()) return d;
    // OrderedDict([(k, v), ...])
    if (args->items.size() != 1 || (args->items[0]->kind != Kind::List && args->items[0]->kind != Kind::Tuple))
      fail("unsupported OrderedDict arguments");
    for (Node* pair : args->items[0]->items) {
      if (pair->kind != Kind::Tuple || pair->items.size() != 2) fail("OrderedDict item is not a pair");
      d->entries.emplace_back(pair->items[0], pair->items[1]);
    }
    return d;
  }

  Node* call(Node* callable, Node* args) {
    if (callable->kind != Kind::Global) fail("REDUCE on a " + std::string(kind_name(callable->kind)) + ", not a callable");
    if (args->kind != Kind::Tuple) fail("REDUCE arguments are not a tuple");
    switch (callable->global) {
      case Global::OrderedDict: return new_dict(args);
      case Global::RebuildTensorV2: return rebuild_tensor(args);
      case Global::RebuildParameter: return rebuild_parameter(args, false);
      case Global::RebuildParameterWithState: return rebuild_parameter(args, true);
      case Global::RestoreTypeTag:
        if (args->items.size() != 2 || (args->items[0]->kind != Kind::Dict && args->items[0]->kind != Kind::List))
          fail("restore_type_tag expects (dict or list, type string)");
        return args->items[0];
      case Global::BuildList:
        if (args->items.size() != 1 || args->items[0]->kind != Kind::List) fail(callable->s + " expects a list");
        return args->items[0];
      case Global::Device: {
        std::string text;
        if (args->items.size() >= 1 && args->items[0]->kind == Kind::Str) text = args->items[0]->s;
        if (args->items.size() == 2 && args->items[1]->kind == Kind::Int) text += ":" + std::to_string(args->items[1]->i);
        if (text.empty() || args->items.size() > 2) fail("unsupported torch.device arguments");
        Node* s = make(Kind::Str);
        s->s = text;
        return s;
      }
      case Global::StorageType:
      case Global::Dtype:
        break;
    }
    fail("'" + callable->s + "' cannot be called");
  }

  // ---- the interpreter --------------------------------------------------------------------
  Node* interpret() {
    while (true) {
      op_pos_ = pos_;
      if (pos_ >= size_) fail("truncated (no STOP opcode)");
      uint8_t op = u8();
      switch (op) {
        case 0x80: {  // PROTO
          uint8_t proto = u8();
          if (proto > 5) fail("unsupported pickle protocol " + std::to_string(proto));
          break;
        }
        case 0x95:  // FRAME (framing is only an I/O hint)
          le(8);
          break;
        case '}': push(make(Kind::Dict)); break;
        case ']': push(make(Kind::List)); break;
        case ')': push(tuple({})); break;
        case '(':
          reference();
          marks_.push_back(stack_.size());
          break;
        case 't': push(tuple(pop_mark())); break;
        case 0x85: {
          Node* a = pop();
          push(tuple({a}));
          break;
        }
        case 0x86: {
          Node* b = pop();
          Node* a = pop();
          push(tuple({a, b}));
          break;
        }
        case 0x87: {
          Node* c = pop();
          Node* b = pop();
          Node* a = pop();
          push(tuple({a, b, c}));
          break;
        }
        case 's': {  // SETITEM
          Node* v = pop();
          Node* k = pop();
          Node* d = top();
          if (d->kind != Kind::Dict) fail("SETITEM on a " + std::string(kind_name(d->kind)));
          d->entries.emplace_back(k, v);
          break;
        }
        case 'u': {  // SETITEMS
          std::vector<Node*> items = pop_mark();
          Node* d = top();
          if (d->kind != Kind::Dict) fail("SETITEMS on a " + std::string(kind_name(d->kind)));
          if (items.size() % 2 != 0) fail("SETITEMS with an odd number of items");
          for (size_t k = 0; k < items.size(); k += 2) d->entries.emplace_back(items[k], items[k + 1]);
          break;
        }
        case 'a': {  // APPEND
          Node* v = pop();
          Node* l = top();
          if (l->kind != Kind::List) fail("APPEND on a " + std::string(kind_name(l->kind)));
          l->items.push_back(v);
          break;
        }
        case 'e': {  // APPENDS
          std::vector<Node*> items = pop_mark();
          Node* l = top();
          if (l->kind != Kind::List) fail("APPENDS on a " + std::string(kind_name(l->kind)));
          l->items.insert(l->items.end(), items.begin(), items.end());
          break;
        }
        case 'J': {  // BININT
          Node* n = make(Kind::Int);
          n->i = static_cast<int32_t>(static_cast<uint32_t>(le(4)));
          push(n);
          break;
        }
        case 'K': {
          Node* n = make(Kind::Int);
          n->i = static_cast<int64_t>(le(1));
          push(n);
          break;
        }
        case 'M': {
          Node* n = make(Kind::Int);
          n->i = static_cast<int64_t>(le(2));
          push(n);
          break;
        }
        case 0x8a:    // LONG1
        case 0x8b: {  // LONG4
          uint64_t len = op == 0x8a ? le(1) : le(4);
          if (len > 8) fail("integer does not fit in 64 bits");
          Node* n = make(Kind::Int);
          if (len > 0) {
            uint64_t v = le(static_cast<size_t>(len));
            if (len < 8 && (v >> (8 * len - 1)) & 1) v |= ~uint64_t{0} << (8 * len);  // sign-extend
            n->i = static_cast<int64_t>(v);
          }
          push(n);
          break;
        }
        case 'G': {  // BINFLOAT, big-endian
          need(8);
          uint64_t bits = 0;
          for (int k = 0; k < 8; ++k) bits = (bits << 8) | static_cast<uint8_t>(data_[pos_ + k]);
          pos_ += 8;
          Node* n = make(Kind::Float);
          std::memcpy(&n->f, &bits, 8);
          push(n);
          break;
        }
        case 'X':     // BINUNICODE
        case 0x8c:    // SHORT_BINUNICODE
        case 0x8d:    // BINUNICODE8
        case 'T':     // BINSTRING (Python 2 str)
        case 'U': {   // SHORT_BINSTRING
          uint64_t len = (op == 0x8c || op == 'U') ? le(1) : op == 0x8d ? le(8) : le(4);
          Node* n = make(Kind::Str);
          n->s = bytes(len);
          push(n);
          break;
        }
        case 0x88: {
          Node* n = make(Kind::Bool);
          n->b = true;
          push(n);
          break;
        }
        case 0x89: push(make(Kind::Bool)); break;
        case 'N': push(make(Kind::None)); break;
        case 'q': memo_put(le(1)); break;
        case 'r': memo_put(le(4)); break;
        case 0x94: memo_put(memo_.size()); break;
        case 'h': memo_get(le(1)); break;
        case 'j': memo_get(le(4)); break;
        case 'c': {  // GLOBAL
          std::string module = line();
          std::string name = line();
          push(resolve_global(module, name));
          break;
        }
        case 0x93: {  // STACK_GLOBAL
          Node* name = pop();
          Node* module = pop();
          if (name->kind != Kind::Str || module->kind != Kind::Str) fail("STACK_GLOBAL needs two strings");
          push(resolve_global(module->s, name->s));
          break;
        }
        case 'R': {  // REDUCE
          Node* args = pop();
          Node* callable = pop();
          push(call(callable, args));
          break;
        }
        case 0x81: {  // NEWOBJ: only OrderedDict is a class we instantiate
          Node* args = pop();
          Node* cls = pop();
          if (cls->kind != Kind::Global || cls->global != Global::OrderedDict)
            fail("NEWOBJ of '" + printable(cls->kind == Kind::Global ? cls->s : kind_name(cls->kind)) + "'");
          if (args->kind != Kind::Tuple) fail("NEWOBJ arguments are not a tuple");
          push(new_dict(args));
          break;
        }
        case 'b': {  // BUILD: OrderedDict's state (the `_metadata` attribute) is ignored
          pop();
          Node* target = top();
          if (target->kind != Kind::Dict || !target->ordered)
            fail("BUILD on a " + std::string(kind_name(target->kind)) + " is not supported");
          break;
        }
        case 'Q': {  // BINPERSID
          Node* pid = pop();
          push(persistent_load(pid));
          break;
        }
        case '0': pop(); break;
        case '1': pop_mark(); break;
        case '2': push(top()); break;
        case '.': {  // STOP
          Node* result = pop();
          return result;
        }
        default: {
          static const char* hex = "0123456789abcdef";
          fail(std::string("unsupported pickle opcode 0x") + hex[op >> 4] + hex[op & 15]);
        }
      }
    }
  }

  // ---- conversion to IValue ---------------------------------------------------------------
  c10::IValue convert(const Node* n, size_t depth, std::unordered_map<const Node*, c10::IValue>& done,
                      std::unordered_set<const Node*>& active) {
    if (depth > kMaxDepth) fail_plain("data.pkl nests containers deeper than " + std::to_string(kMaxDepth) + " levels");
    switch (n->kind) {
      case Kind::None: return c10::IValue();
      case Kind::Bool: return c10::IValue(n->b);
      case Kind::Int: return c10::IValue(n->i);
      case Kind::Float: return c10::IValue(n->f);
      case Kind::Str: return c10::IValue(n->s);
      case Kind::Tensor: return c10::IValue(n->tensor);
      case Kind::Global:
        if (n->global == Global::Dtype) return c10::IValue(n->s);  // e.g. "torch.float32"
        fail_plain("data.pkl holds a bare '" + printable(n->s) + "' object (only tensors and dicts can be loaded)");
      case Kind::Storage:
        fail_plain("data.pkl holds a bare storage (only tensors and dicts can be loaded)");
      case Kind::Tuple:
      case Kind::List:
      case Kind::Dict:
        break;
    }
    auto found = done.find(n);
    if (found != done.end()) return found->second;
    if (!active.insert(n).second) fail_plain("data.pkl contains a container that holds itself");
    c10::IValue out;
    if (n->kind == Kind::Tuple) {
      std::vector<c10::IValue> items;
      items.reserve(n->items.size());
      for (const Node* item : n->items) items.push_back(convert(item, depth + 1, done, active));
      out = c10::ivalue::Tuple::create(std::move(items));
    } else if (n->kind == Kind::List) {
      c10::impl::GenericList list(c10::AnyType::get());
      list.reserve(n->items.size());
      for (const Node* item : n->items) list.push_back(convert(item, depth + 1, done, active));
      out = c10::IValue(list);
    } else {
      // Keys keep their Python type: str keys give a str-keyed dict (state_dicts), int keys an
      // int-keyed one (an optimizer's `state`), a mix of both an Any-keyed one.
      bool any_str = false, any_int = false;
      for (const auto& entry : n->entries) {
        const Node* key = entry.first;
        if (key->kind == Kind::Str) {
          any_str = true;
        } else if (key->kind == Kind::Int) {
          any_int = true;
        } else {
          fail_plain(std::string("data.pkl has a dict key of type ") + kind_name(key->kind) +
                     " (only str and int keys are supported)");
        }
      }
      c10::TypePtr key_type = any_int ? (any_str ? c10::AnyType::get() : c10::TypePtr(c10::IntType::get()))
                                      : c10::TypePtr(c10::StringType::get());
      c10::impl::GenericDict dict(key_type, c10::AnyType::get());
      for (const auto& [key, value] : n->entries) {
        c10::IValue k = key->kind == Kind::Str ? c10::IValue(key->s) : c10::IValue(key->i);
        dict.insert_or_assign(std::move(k), convert(value, depth + 1, done, active));
      }
      out = c10::IValue(dict);
    }
    active.erase(n);
    done.emplace(n, out);
    return out;
  }

  const char* data_;
  size_t size_;
  size_t pos_ = 0;
  size_t op_pos_ = 0;
  const std::string& what_;
  const StorageLoader& loader_;
  std::optional<c10::Device> map_location_;
  std::vector<std::unique_ptr<Node>> arena_;
  std::vector<Node*> stack_;
  std::vector<size_t> marks_;
  std::unordered_map<uint64_t, Node*> memo_;
  std::unordered_map<std::string, StorageEntry> storages_;
  size_t references_ = 0;
};

}  // namespace

c10::IValue unpickle(const char* data, size_t size, const std::string& what, const StorageLoader& load_storage,
                     std::optional<c10::Device> map_location) {
  if (size > kMaxPickleBytes)
    throw tt::FileError(what + ": data.pkl has " + std::to_string(size) + " bytes, more than the limit of " +
                        std::to_string(kMaxPickleBytes) + " for a torch file");
  Unpickler unpickler(data, size, what, load_storage, map_location);
  return unpickler.run();
}

}  // namespace tt::io::detail
