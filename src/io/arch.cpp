#include "tracetorch/core/arch.h"

#include <sys/stat.h>

#include <cerrno>
#include <cstring>
#include <fstream>
#include <iterator>
#include <limits>
#include <sstream>
#include <variant>

#include "tracetorch/core/error.h"
#include "tracetorch/io/pt_file.h"

namespace tt::arch {

namespace {

// A value as it appears in an error message: never a megabyte of JSON, and invalid UTF-8 (possible
// in a document built in memory) is replaced rather than thrown about.
std::string brief(const json& v) {
  std::string text = v.dump(-1, ' ', false, json::error_handler_t::replace);
  if (text.size() > 120) text = text.substr(0, 117) + "...";
  return text;
}

// JSON numbers above INT64_MAX parse as unsigned; get<int64_t>() would wrap them to negatives.
int64_t to_int64(const json& v, const std::string& path) {
  if (v.is_number_unsigned() && v.get<uint64_t>() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max()))
    throw ArchError(path + ": " + brief(v) + " is out of range (at most 9223372036854775807)");
  return v.get<int64_t>();
}

// Building recurses once per nested node and nlohmann's dump() once per level, so an unbounded
// nesting is a stack overflow. Checked without recursion before anything else looks at the tree;
// the error names the path down to the first value that is too deep.
void check_depth(const json& root, const std::string& root_path) {
  struct Level {
    const json* node;
    json::const_iterator next;
  };
  std::vector<Level> stack;
  auto enter = [&](const json& node) {
    if (stack.size() >= kMaxDepth) {
      std::string path = root_path;
      for (const auto& level : stack) {
        if (path.size() > 200) {
          path += "...";
          break;
        }
        const auto at = std::prev(level.next);
        if (level.node->is_object()) path += (path.empty() ? "" : ".") + at.key();
        else path += "[" + std::to_string(at - level.node->cbegin()) + "]";
      }
      throw ArchError(path + ": nested deeper than " + std::to_string(kMaxDepth) + " levels");
    }
    stack.push_back({&node, node.cbegin()});
  };
  if (!root.is_structured()) return;
  enter(root);
  while (!stack.empty()) {
    Level& top = stack.back();
    if (top.next == top.node->cend()) {
      stack.pop_back();
      continue;
    }
    const json& child = *top.next;
    ++top.next;
    if (child.is_structured()) enter(child);
  }
}

}  // namespace

// ---------------------------------------------------------------------------------------------
// Args

Args::Args(const json& node, std::string path) : node_(node), path_(std::move(path)) {
  if (!node_.is_object()) throw ArchError(path_ + ": expected an object, got " + brief(node_));
  used_.push_back("type");
}

std::string Args::member_path(const std::string& name) const { return path_ + "." + name; }

bool Args::has(const std::string& name) const { return node_.contains(name); }

const json& Args::get_raw(const std::string& name) const {
  if (!node_.contains(name)) throw ArchError(member_path(name) + ": required argument is missing");
  used_.push_back(name);
  return node_.at(name);
}

int64_t Args::get_int(const std::string& name) const {
  const json& v = get_raw(name);
  if (!v.is_number_integer()) throw ArchError(member_path(name) + ": expected an integer, got " + brief(v));
  return to_int64(v, member_path(name));
}

int64_t Args::get_int(const std::string& name, int64_t fallback) const {
  return has(name) ? get_int(name) : fallback;
}

bool Args::get_bool(const std::string& name, bool fallback) const {
  if (!has(name)) return fallback;
  const json& v = get_raw(name);
  if (!v.is_boolean()) throw ArchError(member_path(name) + ": expected true or false, got " + brief(v));
  return v.get<bool>();
}

double Args::get_number(const std::string& name, double fallback) const {
  if (!has(name)) return fallback;
  const json& v = get_raw(name);
  if (!v.is_number()) throw ArchError(member_path(name) + ": expected a number, got " + brief(v));
  return v.get<double>();
}

std::string Args::get_string(const std::string& name, const std::string& fallback) const {
  if (!has(name)) return fallback;
  const json& v = get_raw(name);
  if (!v.is_string()) throw ArchError(member_path(name) + ": expected a string, got " + brief(v));
  return v.get<std::string>();
}

std::vector<int64_t> Args::get_int_list(const std::string& name, size_t length, int64_t fallback) const {
  if (!has(name)) return std::vector<int64_t>(length, fallback);
  const json& v = get_raw(name);
  if (v.is_number_integer()) return std::vector<int64_t>(length, to_int64(v, member_path(name)));
  if (v.is_array() && v.size() == length) {
    std::vector<int64_t> out;
    for (const auto& e : v) {
      if (!e.is_number_integer()) throw ArchError(member_path(name) + ": expected integers, got " + brief(v));
      out.push_back(to_int64(e, member_path(name)));
    }
    return out;
  }
  throw ArchError(member_path(name) + ": expected an integer or a list of " + std::to_string(length) +
                  " integers, got " + brief(v));
}

void Args::finish() const {
  for (const auto& item : node_.items()) {
    bool used = false;
    for (const auto& u : used_) used = used || u == item.key();
    if (!used) throw ArchError(member_path(item.key()) + ": unknown argument for " + node_.value("type", std::string("?")));
  }
}

// ---------------------------------------------------------------------------------------------
// Registry

void Registry::add(const std::string& type, Entry entry) {
  for (auto& e : entries_) {
    if (e.first == type) {
      e.second = std::move(entry);
      return;
    }
  }
  entries_.emplace_back(type, std::move(entry));
}

bool Registry::contains(const std::string& type) const {
  for (const auto& e : entries_)
    if (e.first == type) return true;
  return false;
}

std::vector<std::string> Registry::types() const {
  std::vector<std::string> out;
  for (const auto& e : entries_) out.push_back(e.first);
  return out;
}

torch::nn::AnyModule Registry::build_node(const json& node, const std::string& path) const {
  if (!node.is_object()) throw ArchError(path + ": expected an object with a \"type\", got " + brief(node));
  if (!node.contains("type") || !node.at("type").is_string())
    throw ArchError(path + ".type: missing or not a string");
  const std::string type = node.at("type").get<std::string>();
  for (const auto& e : entries_) {
    if (e.first != type) continue;
    Args args(node, path);
    torch::nn::AnyModule module;
    try {
      module = e.second.build(args, *this);
    } catch (const ArchError&) {
      throw;
    } catch (const std::exception& ex) {
      throw ArchError(path + ": cannot build " + type + ": " + ex.what());
    }
    args.finish();
    return module;
  }
  std::string known;
  for (const auto& e : entries_) known += (known.empty() ? "" : ", ") + e.first;
  throw ArchError(path + ".type: unknown type \"" + type + "\" (known: " + known + ")");
}

json Registry::describe(const torch::nn::Module& module, const std::string& path) const {
  for (const auto& e : entries_) {
    if (!e.second.describe) continue;
    if (auto node = e.second.describe(module, *this)) return *node;
  }
  throw ArchError(path + ": no architecture type describes module " + module.name());
}

// ---------------------------------------------------------------------------------------------
// torch.nn types

namespace {

template <typename Impl>
const Impl* as(const torch::nn::Module& m) {
  return dynamic_cast<const Impl*>(&m);
}

json describe_children(const torch::nn::Module& module, const Registry& registry, const std::string& path) {
  json children = json::array();
  size_t i = 0;
  for (const auto& child : module.children()) children.push_back(registry.describe(*child, path + ".children[" + std::to_string(i++) + "]"));
  return children;
}

tt::Sequential build_sequential(Args& args, const Registry& registry) {
  const json& children = args.get_raw("children");
  if (!children.is_array()) throw ArchError(args.member_path("children") + ": expected a list of nodes");
  tt::Sequential seq;
  for (size_t i = 0; i < children.size(); ++i)
    seq->push_back(registry.build_node(children[i], args.member_path("children") + "[" + std::to_string(i) + "]"));
  return seq;
}

}  // namespace

void register_torch_types(Registry& registry) {
  registry.add("Sequential", {[](Args& args, const Registry& r) { return torch::nn::AnyModule(build_sequential(args, r)); },
                              [](const torch::nn::Module& m, const Registry& r) -> std::optional<json> {
                                if (!as<torch::nn::SequentialImpl>(m)) return std::nullopt;
                                return json{{"type", "Sequential"}, {"children", describe_children(m, r, "model")}};
                              }});

  registry.add("Linear",
               {[](Args& args, const Registry&) {
                  auto options = torch::nn::LinearOptions(args.get_int("in_features"), args.get_int("out_features"))
                                     .bias(args.get_bool("bias", true));
                  return torch::nn::AnyModule(torch::nn::Linear(options));
                },
                [](const torch::nn::Module& m, const Registry&) -> std::optional<json> {
                  auto* l = as<torch::nn::LinearImpl>(m);
                  if (!l) return std::nullopt;
                  return json{{"type", "Linear"},
                              {"in_features", l->options.in_features()},
                              {"out_features", l->options.out_features()},
                              {"bias", l->options.bias()}};
                }});

  registry.add("Conv2d",
               {[](Args& args, const Registry&) {
                  auto kernel = args.get_int_list("kernel_size", 2, 1);
                  if (!args.has("kernel_size")) throw ArchError(args.member_path("kernel_size") + ": required argument is missing");
                  auto stride = args.get_int_list("stride", 2, 1);
                  auto padding = args.get_int_list("padding", 2, 0);
                  auto options = torch::nn::Conv2dOptions(args.get_int("in_channels"), args.get_int("out_channels"),
                                                          torch::ExpandingArray<2>({kernel[0], kernel[1]}))
                                     .stride(torch::ExpandingArray<2>({stride[0], stride[1]}))
                                     .padding(torch::ExpandingArray<2>({padding[0], padding[1]}))
                                     .bias(args.get_bool("bias", true));
                  return torch::nn::AnyModule(torch::nn::Conv2d(options));
                },
                [](const torch::nn::Module& m, const Registry&) -> std::optional<json> {
                  auto* c = as<torch::nn::Conv2dImpl>(m);
                  if (!c) return std::nullopt;
                  auto pair_or_int = [](const torch::ExpandingArray<2>& a) {
                    return a->at(0) == a->at(1) ? json(a->at(0)) : json::array({a->at(0), a->at(1)});
                  };
                  // c10::variant in LibTorch 1.13, std::variant in 2.x: let ADL pick get_if.
                  using std::get_if;
                  const auto* padding = get_if<torch::ExpandingArray<2>>(&c->options.padding());
                  return json{{"type", "Conv2d"},
                              {"in_channels", c->options.in_channels()},
                              {"out_channels", c->options.out_channels()},
                              {"kernel_size", pair_or_int(c->options.kernel_size())},
                              {"stride", pair_or_int(c->options.stride())},
                              {"padding", padding ? pair_or_int(*padding) : json(0)},
                              {"bias", c->options.bias()}};
                }});

  registry.add("Flatten",
               {[](Args& args, const Registry&) {
                  auto options = torch::nn::FlattenOptions().start_dim(args.get_int("start_dim", 1)).end_dim(args.get_int("end_dim", -1));
                  return torch::nn::AnyModule(torch::nn::Flatten(options));
                },
                [](const torch::nn::Module& m, const Registry&) -> std::optional<json> {
                  auto* f = as<torch::nn::FlattenImpl>(m);
                  if (!f) return std::nullopt;
                  return json{{"type", "Flatten"}, {"start_dim", f->options.start_dim()}, {"end_dim", f->options.end_dim()}};
                }});
}

Registry default_registry() {
  Registry registry;
  register_torch_types(registry);
  register_snn_types(registry);
  register_rnn_types(registry);
  register_ssm_types(registry);
  return registry;
}

// ---------------------------------------------------------------------------------------------
// documents

tt::Sequential build(const json& document, const Registry& registry) {
  if (!document.is_object()) throw ArchError("document: expected an object");
  check_depth(document, "");
  if (!document.contains("format") || document.at("format") != "tt-arch/1")
    throw ArchError("format: expected \"tt-arch/1\", got " + (document.contains("format") ? brief(document.at("format")) : std::string("nothing")));
  if (!document.contains("model")) throw ArchError("model: missing");
  const json& model = document.at("model");
  if (!model.is_object() || !model.contains("type") || model.at("type") != "Sequential")
    throw ArchError("model.type: the root node must be a Sequential");
  Args args(model, "model");
  tt::Sequential root = build_sequential(args, registry);
  args.finish();
  return root;
}

tt::Sequential load(const std::string& path, const Registry& registry) {
  struct stat st {};
  if (::stat(path.c_str(), &st) != 0)
    throw FileError(path + ": cannot open architecture file: " + std::strerror(errno));
  if (S_ISDIR(st.st_mode)) throw FileError(path + ": is a directory, not an architecture file");
  if (st.st_size > static_cast<off_t>(kMaxFileBytes))
    throw FileError(path + ": architecture file of " + std::to_string(st.st_size) + " bytes is larger than the " +
                    std::to_string(kMaxFileBytes) + "-byte limit");
  std::string text;
  try {
    std::ifstream in(path, std::ios::binary);
    if (!in) throw FileError(path + ": cannot open architecture file (not readable)");
    text.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad()) throw FileError(path + ": cannot read architecture file");
  } catch (const FileError&) {
    throw;
  } catch (const std::exception& e) {  // libstdc++ reports some read errors as exceptions
    throw FileError(path + ": cannot read architecture file: " + e.what());
  }
  if (text.size() > kMaxFileBytes) throw FileError(path + ": architecture file is larger than the limit");
  json document;
  try {
    document = json::parse(text);
  } catch (const json::exception& e) {
    throw ArchError(path + ": not valid JSON: " + e.what());
  }
  try {
    return build(document, registry);
  } catch (const ArchError& e) {
    throw ArchError(path + ": " + e.what());
  }
}

json to_json(const torch::nn::Module& root, const Registry& registry) {
  json model = registry.describe(root, "model");
  return json{{"format", "tt-arch/1"}, {"model", model}};
}

void save(const torch::nn::Module& root, const std::string& path, const Registry& registry) {
  io::write_file_atomic(to_json(root, registry).dump(1) + "\n", path);
}

}  // namespace tt::arch
