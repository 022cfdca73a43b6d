// NIR files through libhdf5: the HDF5 tree the reference `nir` package writes (h5py layout) read
// into tt::io::NirGraph values and written back. Files are read from and written to memory images
// (libhdf5's core driver), so that loading works on bytes (fuzzing, archives) and saving goes
// through write_file_atomic like every other format.
#include <hdf5.h>

#include <algorithm>
#include <cstring>
#include <fstream>
#include <functional>
#include <limits>
#include <optional>
#include <sstream>

#include "tracetorch/core/error.h"
#include "tracetorch/io/nir_file.h"
#include "tracetorch/io/pt_file.h"

namespace tt::io {

namespace {

// Bounds a hostile file cannot push past: elements of one dataset, stored objects in all.
constexpr uint64_t kMaxElements = uint64_t{1} << 28;
constexpr uint64_t kMaxObjects = 1000000;

// Owns an HDF5 identifier and closes it with the matching function.
class Handle {
 public:
  Handle() = default;
  Handle(hid_t id, herr_t (*close)(hid_t)) : id_(id), close_(close) {}
  Handle(const Handle&) = delete;
  Handle& operator=(const Handle&) = delete;
  Handle(Handle&& other) noexcept : id_(other.id_), close_(other.close_) { other.id_ = -1; }
  Handle& operator=(Handle&& other) noexcept {
    std::swap(id_, other.id_);
    std::swap(close_, other.close_);
    return *this;
  }
  ~Handle() {
    if (id_ >= 0 && close_) close_(id_);
  }
  hid_t get() const { return id_; }
  bool valid() const { return id_ >= 0; }

 private:
  hid_t id_ = -1;
  herr_t (*close_)(hid_t) = nullptr;
};

// While alive, libhdf5 does not print its error stack (this thread's default stack), so that the
// library never prints; the previous handler comes back afterwards.
class QuietErrors {
 public:
  QuietErrors() {
    H5Eget_auto2(H5E_DEFAULT, &func_, &data_);
    H5Eset_auto2(H5E_DEFAULT, nullptr, nullptr);
  }
  ~QuietErrors() { H5Eset_auto2(H5E_DEFAULT, func_, data_); }
  QuietErrors(const QuietErrors&) = delete;
  QuietErrors& operator=(const QuietErrors&) = delete;

 private:
  H5E_auto2_t func_ = nullptr;
  void* data_ = nullptr;
};

// The innermost description on this thread's HDF5 error stack (then clears it).
std::string hdf5_error() {
  std::string message;
  H5Ewalk2(
      H5E_DEFAULT, H5E_WALK_DOWNWARD,
      [](unsigned n, const H5E_error2_t* error, void* out) -> herr_t {
        if (n == 0 && error && error->desc) *static_cast<std::string*>(out) = error->desc;
        return 0;
      },
      &message);
  H5Eclear2(H5E_DEFAULT);
  return message.empty() ? "libhdf5 error" : message;
}

// A file name for the in-memory image, unique among concurrent calls (libhdf5 keys open files
// by name).
std::string image_name(const void* anchor) {
  std::ostringstream name;
  name << "tracetorch-nir-image-" << anchor;
  return name.str();
}

bool has_hdf5_signature(const std::string& bytes) {
  static const char signature[8] = {'\x89', 'H', 'D', 'F', '\r', '\n', '\x1a', '\n'};
  // The superblock is at 0 or at 512 * 2^k (a user block before it).
  for (size_t offset = 0; offset + 8 <= bytes.size(); offset = offset == 0 ? 512 : offset * 2)
    if (std::memcmp(bytes.data() + offset, signature, 8) == 0) return true;
  return false;
}

// ---------------------------------------------------------------------------------------------
// reading

class Reader {
 public:
  explicit Reader(std::string what) : what_(std::move(what)) {}

  NirGraph read_file(hid_t file) {
    NirGraph graph;
    if (H5Lexists(file, "version", H5P_DEFAULT) > 0) {
      Handle version(H5Dopen2(file, "version", H5P_DEFAULT), H5Dclose);
      if (!version.valid()) fail("cannot open 'version': " + hdf5_error());
      auto value = read_dataset(version.get(), "version");
      if (!value || !value->is_text()) fail("'version' is not a string");
      graph.version = value->text();
    }
    if (H5Lexists(file, "node", H5P_DEFAULT) <= 0) fail("no 'node' group: not a NIR file");
    Handle root = open_object(file, "node", "node");
    if (H5Iget_type(root.get()) != H5I_GROUP) fail("'node' is not a group: not a NIR file");
    static_cast<NirNode&>(graph) = read_node(root.get(), "", "node", 0);
    return graph;
  }

 private:
  [[noreturn]] void fail(const std::string& message) const { throw FileError(what_ + ": " + message); }

  // Names of the links in a group, in libhdf5's name order (h5py's order too).
  std::vector<std::string> link_names(hid_t group, const std::string& where) {
    H5G_info_t info;
    if (H5Gget_info(group, &info) < 0) fail(where + ": cannot list the group: " + hdf5_error());
    if (info.nlinks > kMaxObjects) fail(where + ": too many entries (" + std::to_string(info.nlinks) + ")");
    std::vector<std::string> names;
    for (hsize_t i = 0; i < info.nlinks; ++i) {
      const ssize_t length = H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, nullptr, 0, H5P_DEFAULT);
      if (length < 0) fail(where + ": cannot read an entry name: " + hdf5_error());
      std::string name(static_cast<size_t>(length) + 1, '\0');
      if (H5Lget_name_by_idx(group, ".", H5_INDEX_NAME, H5_ITER_INC, i, name.data(), name.size(), H5P_DEFAULT) < 0)
        fail(where + ": cannot read an entry name: " + hdf5_error());
      name.resize(static_cast<size_t>(length));
      names.push_back(std::move(name));
    }
    return names;
  }

  // Opens a hard-linked group or dataset (soft and external links are refused: a NIR file is
  // self-contained, and an external link would read another file).
  Handle open_object(hid_t group, const std::string& name, const std::string& where) {
    if (++objects_ > kMaxObjects) fail("more than " + std::to_string(kMaxObjects) + " objects");
    H5L_info_t link;
    if (H5Lget_info(group, name.c_str(), &link, H5P_DEFAULT) < 0) fail(where + ": cannot inspect: " + hdf5_error());
    if (link.type != H5L_TYPE_HARD) fail(where + ": soft or external links are not supported");
    Handle object(H5Oopen(group, name.c_str(), H5P_DEFAULT), H5Oclose);
    if (!object.valid()) fail(where + ": cannot open: " + hdf5_error());
    const H5I_type_t kind = H5Iget_type(object.get());
    if (kind != H5I_GROUP && kind != H5I_DATASET) fail(where + ": neither a group nor a dataset");
    return object;
  }

  // The dataset's value, or nullopt for an empty (null dataspace) dataset, which stands for None.
  std::optional<NirValue> read_dataset(hid_t dataset, const std::string& where) {
    Handle space(H5Dget_space(dataset), H5Sclose);
    Handle type(H5Dget_type(dataset), H5Tclose);
    if (!space.valid() || !type.valid()) fail(where + ": cannot read: " + hdf5_error());
    const H5S_class_t space_class = H5Sget_simple_extent_type(space.get());
    if (space_class == H5S_NULL) return std::nullopt;
    std::vector<int64_t> shape;
    if (space_class == H5S_SIMPLE) {
      const int rank = H5Sget_simple_extent_ndims(space.get());
      if (rank < 0 || rank > H5S_MAX_RANK) fail(where + ": invalid rank");
      std::vector<hsize_t> dims(static_cast<size_t>(rank));
      if (H5Sget_simple_extent_dims(space.get(), dims.data(), nullptr) < 0) fail(where + ": cannot read the shape");
      for (hsize_t d : dims) {
        if (d > kMaxElements) fail(where + ": dimension " + std::to_string(d) + " is too large");
        shape.push_back(static_cast<int64_t>(d));
      }
    } else if (space_class != H5S_SCALAR) {
      fail(where + ": unsupported dataspace");
    }
    uint64_t count = 1;
    for (int64_t d : shape) {
      count *= static_cast<uint64_t>(d);
      if (count > kMaxElements) fail(where + ": more than " + std::to_string(kMaxElements) + " elements");
    }

    const H5T_class_t type_class = H5Tget_class(type.get());
    if (type_class == H5T_STRING) {
      std::vector<std::string> texts = read_strings(dataset, type.get(), count, where);
      if (shape.empty()) return NirValue(texts.at(0));
      return NirValue(std::move(texts));
    }
    torch::Tensor out;
    if (type_class == H5T_INTEGER) {
      out = torch::empty(shape, torch::kInt64);
      if (count && H5Dread(dataset, H5T_NATIVE_INT64, H5S_ALL, H5S_ALL, H5P_DEFAULT, out.data_ptr()) < 0)
        fail(where + ": cannot read integers: " + hdf5_error());
    } else if (type_class == H5T_FLOAT) {
      const bool single = H5Tget_size(type.get()) <= 4;
      out = torch::empty(shape, single ? torch::kFloat32 : torch::kFloat64);
      if (count && H5Dread(dataset, single ? H5T_NATIVE_FLOAT : H5T_NATIVE_DOUBLE, H5S_ALL, H5S_ALL, H5P_DEFAULT,
                           out.data_ptr()) < 0)
        fail(where + ": cannot read numbers: " + hdf5_error());
    } else if (type_class == H5T_ENUM) {
      // h5py stores numpy bools as an enum over int8 {FALSE, TRUE}.
      Handle base(H5Tget_super(type.get()), H5Tclose);
      Handle native(H5Tget_native_type(type.get(), H5T_DIR_ASCEND), H5Tclose);
      if (!base.valid() || !native.valid() || H5Tget_size(base.get()) != 1)
        fail(where + ": unsupported enum type (only h5py booleans are)");
      torch::Tensor raw = torch::empty(shape, torch::kUInt8);
      if (count && H5Dread(dataset, native.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, raw.data_ptr()) < 0)
        fail(where + ": cannot read booleans: " + hdf5_error());
      out = raw.ne(0);
    } else {
      fail(where + ": unsupported datatype (numbers, booleans and strings are supported)");
    }
    return NirValue(out);
  }

  std::vector<std::string> read_strings(hid_t dataset, hid_t file_type, uint64_t count, const std::string& where) {
    std::vector<std::string> texts;
    texts.reserve(static_cast<size_t>(count));
    const htri_t variable = H5Tis_variable_str(file_type);
    if (variable < 0) fail(where + ": cannot read the string type");
    Handle memory(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_cset(memory.get(), H5Tget_cset(file_type));
    if (variable > 0) {
      H5Tset_size(memory.get(), H5T_VARIABLE);
      std::vector<char*> pointers(static_cast<size_t>(count), nullptr);
      if (count && H5Dread(dataset, memory.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0)
        fail(where + ": cannot read strings: " + hdf5_error());
      for (char* p : pointers) {
        texts.emplace_back(p ? p : "");
        if (p) H5free_memory(p);
      }
    } else {
      const size_t size = H5Tget_size(file_type);
      if (size == 0 || size > kMaxElements / std::max<uint64_t>(count, 1)) fail(where + ": strings too long");
      H5Tset_size(memory.get(), size);
      H5Tset_strpad(memory.get(), H5T_STR_NULLPAD);
      std::vector<char> buffer(size * static_cast<size_t>(count));
      if (count && H5Dread(dataset, memory.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, buffer.data()) < 0)
        fail(where + ": cannot read strings: " + hdf5_error());
      for (uint64_t i = 0; i < count; ++i) {
        const char* start = buffer.data() + i * size;
        texts.emplace_back(start, strnlen(start, size));
      }
    }
    return texts;
  }

  void read_metadata(hid_t group, const std::string& prefix, const std::string& where, NirFields& out, int depth) {
    if (depth > 16) fail(where + ": metadata nested too deeply");
    for (const std::string& name : link_names(group, where)) {
      const std::string here = where + "/" + name;
      Handle object = open_object(group, name, here);
      if (H5Iget_type(object.get()) == H5I_GROUP) {
        read_metadata(object.get(), prefix + name + "/", here, out, depth + 1);
      } else if (auto value = read_dataset(object.get(), here)) {
        out.emplace_back(prefix + name, std::move(*value));
      }
    }
  }

  void read_edges(hid_t dataset, NirNode& node, const std::string& where) {
    auto value = read_dataset(dataset, where);
    if (!value) return;
    // An empty edge list may come back as an empty numeric array ([] in numpy).
    if (value->is_array() && value->array().numel() == 0) return;
    if (value->kind() != NirValue::Kind::Texts) fail(where + ": edges must be an [N, 2] array of strings");
    Handle space(H5Dget_space(dataset), H5Sclose);
    hsize_t dims[H5S_MAX_RANK];
    const int rank = H5Sget_simple_extent_dims(space.get(), dims, nullptr);
    if (rank != 2 || dims[1] != 2) fail(where + ": edges must be an [N, 2] array of strings");
    const auto& texts = value->texts();
    for (size_t i = 0; i + 1 < texts.size(); i += 2) node.edges.emplace_back(texts[i], texts[i + 1]);
  }

  NirNode read_node(hid_t group, const std::string& name, const std::string& where, int depth) {
    if (depth > 32) fail(where + ": graphs nested deeper than 32 levels");
    NirNode node;
    node.name = name;
    if (H5Lexists(group, "type", H5P_DEFAULT) <= 0) fail(where + ": node without a 'type'");
    {
      Handle type = open_object(group, "type", where + "/type");
      auto value = H5Iget_type(type.get()) == H5I_DATASET ? read_dataset(type.get(), where + "/type") : std::nullopt;
      if (!value || !value->is_text()) fail(where + ": 'type' is not a string");
      node.type = value->text();
    }
    const bool is_graph = node.type == "NIRGraph";
    for (const std::string& field : link_names(group, where)) {
      if (field == "type") continue;
      const std::string here = where + "/" + field;
      Handle object = open_object(group, field, here);
      const bool is_group = H5Iget_type(object.get()) == H5I_GROUP;
      if (field == "metadata" && is_group) {
        read_metadata(object.get(), "", here, node.metadata, 0);
      } else if (is_graph && field == "nodes" && is_group) {
        for (const std::string& child : link_names(object.get(), here)) {
          const std::string child_where = here + "/" + child;
          Handle child_group = open_object(object.get(), child, child_where);
          if (H5Iget_type(child_group.get()) != H5I_GROUP) fail(child_where + ": a node must be a group");
          node.nodes.push_back(read_node(child_group.get(), child, child_where, depth + 1));
        }
      } else if (is_graph && field == "edges" && !is_group) {
        read_edges(object.get(), node, here);
      } else if (is_group) {
        fail(here + ": unexpected group in a " + node.type + " node");
      } else if (auto value = read_dataset(object.get(), here)) {
        node.params.emplace_back(field, std::move(*value));
      }
    }
    return node;
  }

  std::string what_;
  uint64_t objects_ = 0;
};

// ---------------------------------------------------------------------------------------------
// writing

class Writer {
 public:
  explicit Writer(hid_t file) : file_(file), lcpl_(H5Pcreate(H5P_LINK_CREATE), H5Pclose) {
    H5Pset_create_intermediate_group(lcpl_.get(), 1);  // metadata "a/b" makes group a
  }

  void write_graph(const NirGraph& graph) {
    write_value(file_, "version", NirValue(graph.version.empty() ? std::string(kNirVersion) : graph.version));
    write_node(file_, "node", graph);
  }

 private:
  [[noreturn]] static void fail(const std::string& where, const std::string& message) {
    throw FileError("save_nir: " + where + ": " + message);
  }

  static Handle string_type() {
    Handle type(H5Tcopy(H5T_C_S1), H5Tclose);
    H5Tset_size(type.get(), H5T_VARIABLE);
    H5Tset_cset(type.get(), H5T_CSET_UTF8);
    return type;
  }

  void write_strings(hid_t parent, const std::string& name, const std::vector<std::string>& texts,
                     const std::vector<hsize_t>& dims) {
    Handle type = string_type();
    Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    Handle dataset(H5Dcreate2(parent, name.c_str(), type.get(), space.get(), lcpl_.get(), H5P_DEFAULT, H5P_DEFAULT),
                   H5Dclose);
    if (!dataset.valid()) fail(name, "cannot create: " + hdf5_error());
    std::vector<const char*> pointers;
    for (const auto& t : texts) pointers.push_back(t.c_str());
    if (!pointers.empty() && H5Dwrite(dataset.get(), type.get(), H5S_ALL, H5S_ALL, H5P_DEFAULT, pointers.data()) < 0)
      fail(name, "cannot write: " + hdf5_error());
  }

  void write_array(hid_t parent, const std::string& name, const torch::Tensor& array) {
    torch::Tensor t = array.detach().to(torch::kCPU);
    hid_t memory_type;
    Handle bool_type;
    switch (t.scalar_type()) {
      case torch::kFloat64: memory_type = H5T_NATIVE_DOUBLE; break;
      case torch::kFloat32: memory_type = H5T_NATIVE_FLOAT; break;
      case torch::kBool: {
        // As h5py writes numpy bools: an enum over int8, so that Python reads them back as bools.
        bool_type = Handle(H5Tenum_create(H5T_NATIVE_INT8), H5Tclose);
        int8_t no = 0, yes = 1;
        H5Tenum_insert(bool_type.get(), "FALSE", &no);
        H5Tenum_insert(bool_type.get(), "TRUE", &yes);
        memory_type = bool_type.get();
        t = t.to(torch::kInt8);
        break;
      }
      default:
        if (c10::isFloatingType(t.scalar_type())) {
          t = t.to(torch::kFloat32);
          memory_type = H5T_NATIVE_FLOAT;
        } else if (c10::isIntegralType(t.scalar_type(), /*includeBool=*/false)) {
          t = t.to(torch::kInt64);
          memory_type = H5T_NATIVE_INT64;
        } else {
          fail(name, std::string("unsupported dtype ") + c10::toString(t.scalar_type()));
        }
    }
    t = t.contiguous();
    std::vector<hsize_t> dims(t.sizes().begin(), t.sizes().end());
    Handle space(dims.empty() ? H5Screate(H5S_SCALAR) : H5Screate_simple(static_cast<int>(dims.size()), dims.data(), nullptr),
                 H5Sclose);
    Handle dataset(H5Dcreate2(parent, name.c_str(), memory_type, space.get(), lcpl_.get(), H5P_DEFAULT, H5P_DEFAULT),
                   H5Dclose);
    if (!dataset.valid()) fail(name, "cannot create: " + hdf5_error());
    if (t.numel() && H5Dwrite(dataset.get(), memory_type, H5S_ALL, H5S_ALL, H5P_DEFAULT, t.data_ptr()) < 0)
      fail(name, "cannot write: " + hdf5_error());
  }

  void write_value(hid_t parent, const std::string& name, const NirValue& value) {
    switch (value.kind()) {
      case NirValue::Kind::Array: write_array(parent, name, value.array()); break;
      case NirValue::Kind::Text: write_strings(parent, name, {value.text()}, {}); break;
      case NirValue::Kind::Texts:
        write_strings(parent, name, value.texts(), {static_cast<hsize_t>(value.texts().size())});
        break;
    }
  }

  Handle make_group(hid_t parent, const std::string& name) {
    Handle group(H5Gcreate2(parent, name.c_str(), H5P_DEFAULT, H5P_DEFAULT, H5P_DEFAULT), H5Gclose);
    if (!group.valid()) fail(name, "cannot create group: " + hdf5_error());
    return group;
  }

  void write_node(hid_t parent, const std::string& group_name, const NirNode& node) {
    Handle group = make_group(parent, group_name);
    write_value(group.get(), "type", NirValue(node.type));
    for (const auto& [field, value] : node.params) {
      if (field.empty() || field.find('/') != std::string::npos || field == "type" || field == "metadata" ||
          field == "nodes" || field == "edges")
        fail(node.name, "invalid field name '" + field + "'");
      write_value(group.get(), field, value);
    }
    if (!node.metadata.empty()) {
      Handle metadata = make_group(group.get(), "metadata");
      for (const auto& [key, value] : node.metadata) {
        if (key.empty() || key.front() == '/' || key.back() == '/' || key.find("//") != std::string::npos)
          fail(node.name, "invalid metadata name '" + key + "'");
        write_value(metadata.get(), key, value);
      }
    }
    if (node.type != "NIRGraph") return;
    Handle nodes = make_group(group.get(), "nodes");
    for (const NirNode& child : node.nodes) write_node(nodes.get(), child.name, child);
    std::vector<std::string> flat;
    for (const auto& [source, target] : node.edges) {
      flat.push_back(source);
      flat.push_back(target);
    }
    write_strings(group.get(), "edges", flat, {static_cast<hsize_t>(node.edges.size()), 2});
  }

  hid_t file_;
  Handle lcpl_;
};

std::string read_file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw FileError(path + ": cannot open NIR file (no such file or not readable)");
  std::ostringstream bytes;
  bytes << in.rdbuf();
  if (in.bad()) throw FileError(path + ": read error");
  return bytes.str();
}

}  // namespace

NirGraph load_nir_bytes(const std::string& bytes, const std::string& what) {
  if (!has_hdf5_signature(bytes)) throw FileError(what + ": not a NIR file (no HDF5 signature)");
  QuietErrors quiet;
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 1 << 16, /*backing_store=*/0) < 0 ||
      H5Pset_file_image(fapl.get(), const_cast<char*>(bytes.data()), bytes.size()) < 0)
    throw FileError(what + ": cannot prepare the HDF5 reader: " + hdf5_error());
  const int anchor = 0;
  Handle file(H5Fopen(image_name(&anchor).c_str(), H5F_ACC_RDONLY, fapl.get()), H5Fclose);
  if (!file.valid()) throw FileError(what + ": not a readable HDF5 file (truncated or corrupt?): " + hdf5_error());
  NirGraph graph = Reader(what).read_file(file.get());
  validate_nir(graph, what);
  return graph;
}

NirGraph load_nir(const std::string& path) { return load_nir_bytes(read_file_bytes(path), path); }

std::string save_nir_bytes(const NirGraph& graph) {
  validate_nir(graph, "save_nir");
  QuietErrors quiet;
  Handle fapl(H5Pcreate(H5P_FILE_ACCESS), H5Pclose);
  if (!fapl.valid() || H5Pset_fapl_core(fapl.get(), 1 << 16, /*backing_store=*/0) < 0)
    throw FileError("save_nir: cannot prepare the HDF5 writer: " + hdf5_error());
  const int anchor = 0;
  Handle file(H5Fcreate(image_name(&anchor).c_str(), H5F_ACC_TRUNC, H5P_DEFAULT, fapl.get()), H5Fclose);
  if (!file.valid()) throw FileError("save_nir: cannot create the HDF5 image: " + hdf5_error());
  Writer(file.get()).write_graph(graph);
  if (H5Fflush(file.get(), H5F_SCOPE_GLOBAL) < 0) throw FileError("save_nir: cannot flush: " + hdf5_error());
  const ssize_t size = H5Fget_file_image(file.get(), nullptr, 0);
  if (size < 0) throw FileError("save_nir: cannot get the file image: " + hdf5_error());
  std::string bytes(static_cast<size_t>(size), '\0');
  if (H5Fget_file_image(file.get(), bytes.data(), bytes.size()) < 0)
    throw FileError("save_nir: cannot get the file image: " + hdf5_error());
  return bytes;
}

void save_nir(const NirGraph& graph, const std::string& path) {
  std::string bytes;
  try {
    bytes = save_nir_bytes(graph);
  } catch (const FileError& e) {
    throw FileError(path + ": " + e.what());
  }
  write_file_atomic(bytes, path);
}

}  // namespace tt::io
