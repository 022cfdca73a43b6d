// Tests for tracetorch/io/pt_file.h: round trips, interop with Python's torch.save/torch.load,
// the golden files, hostile/corrupt/truncated input, and atomic saves.
#include <caffe2/serialize/inline_container.h>
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <filesystem>
#include <fstream>
#include <random>
#include <set>

#include "test_support.h"
#include "tracetorch/core/error.h"
#include "tracetorch/io/pt_file.h"

namespace fs = std::filesystem;
using nlohmann::json;
using tt::io::TensorDict;
using namespace std::string_literals;

namespace {

// ---- helpers -------------------------------------------------------------------------------

c10::impl::GenericDict new_dict() { return c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get()); }

c10::IValue roundtrip(const c10::IValue& v) { return tt::io::load_pt_bytes(tt::io::save_pt_bytes(v), "roundtrip"); }

void expect_same_tensor(const at::Tensor& expected, const at::Tensor& actual, const std::string& what) {
  ASSERT_TRUE(actual.defined()) << what;
  EXPECT_EQ(expected.scalar_type(), actual.scalar_type()) << what;
  EXPECT_EQ(expected.sizes(), actual.sizes()) << what;
  EXPECT_EQ(expected.strides(), actual.strides()) << what;
  EXPECT_EQ(expected.storage_offset(), actual.storage_offset()) << what;
  EXPECT_EQ(expected.is_contiguous(), actual.is_contiguous()) << what;
  EXPECT_TRUE(actual.device().is_cpu()) << what;
  EXPECT_TRUE(torch::equal(expected, actual)) << what;
}

// Message of the tt::FileError thrown by `f`; fails the test if something else happens.
template <typename F>
std::string file_error(F&& f) {
  try {
    f();
  } catch (const tt::FileError& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "expected tt::FileError, got another exception: " << e.what();
    return "";
  }
  ADD_FAILURE() << "expected tt::FileError, nothing was thrown";
  return "";
}

// Builds a zip archive like torch.save's from raw records (data.pkl first).
std::string make_archive(const std::vector<std::pair<std::string, std::string>>& records) {
  std::string out;
  {
    caffe2::serialize::PyTorchStreamWriter writer([&out](const void* buf, size_t n) -> size_t {
      if (buf != nullptr) out.append(static_cast<const char*>(buf), n);
      return n;
    });
    for (const auto& [name, data] : records) writer.writeRecord(name, data.data(), data.size());
    writer.writeEndOfFile();
  }
  return out;
}

std::string record(const std::string& archive, const std::string& name) {
  std::istringstream in(archive);
  caffe2::serialize::PyTorchStreamReader reader(&in);
  auto [ptr, size] = reader.getRecord(name);
  return std::string(static_cast<const char*>(ptr.get()), size);
}

// A value with every feature the format has: all dtypes, views, sharing, nesting.
c10::IValue rich_value() {
  auto d = new_dict();
  d.insert("f32", torch::randn({3, 4}));
  d.insert("i64", torch::arange(-3, 3, torch::kLong) * int64_t{1000000000000});
  d.insert("bool", torch::tensor({true, false, true}));
  at::Tensor base = torch::arange(20, torch::kFloat).reshape({4, 5});
  d.insert("sliced", base.slice(0, 1).slice(1, 0, 5, 2));
  d.insert("transposed", base.t());
  auto inner = new_dict();
  inner.insert("h", torch::ones({2}, torch::kHalf));
  inner.insert("n", int64_t{3});
  inner.insert("s", std::string("x"));
  c10::impl::GenericList list(c10::AnyType::get());
  list.push_back(c10::IValue(1.5));
  list.push_back(c10::IValue());
  inner.insert("l", list);
  d.insert("inner", inner);
  return d;
}

// ---- round trips in C++ -----------------------------------------------------------------------

TEST(PtFile, RoundTripEveryDtype) {
  tt_test::TempDir dir;
  torch::manual_seed(0);
  std::vector<at::Tensor> tensors = {
      torch::randn({2, 3}, torch::kFloat),
      torch::randn({2, 3}, torch::kDouble),
      torch::randn({2, 3}).to(torch::kHalf),
      torch::randn({2, 3}).to(torch::kBFloat16),
      torch::arange(-3, 3, torch::kLong).reshape({2, 3}) * int64_t{1000000000000},
      torch::arange(-3, 3, torch::kInt).reshape({2, 3}) * 100000,
      torch::arange(-3, 3, torch::kShort).reshape({2, 3}) * 1000,
      torch::arange(-3, 3, torch::kChar).reshape({2, 3}),
      torch::arange(250, 256, torch::kLong).to(torch::kByte).reshape({2, 3}),
      torch::tensor({true, false, true, true, false, false}).reshape({2, 3}),
  };
  for (const auto& t : tensors) {
    std::string what = std::string("dtype ") + c10::toString(t.scalar_type());
    std::string path = dir.file(std::string(c10::toString(t.scalar_type())) + ".pt");
    tt::io::save_tensor(t, path);
    expect_same_tensor(t, tt::io::load_tensor(path), what);
    expect_same_tensor(t, roundtrip(t).toTensor(), what + " (bytes)");
  }
}

TEST(PtFile, RoundTripZeroDimAndEmptyTensors) {
  for (const auto& t : {torch::tensor(2.5), torch::tensor(int64_t{-7}), torch::empty({0}), torch::empty({2, 0, 3}),
                        torch::empty({0}, torch::kBool)}) {
    expect_same_tensor(t, roundtrip(t).toTensor(), "shape " + c10::str(t.sizes()));
  }
}

TEST(PtFile, RoundTripNonContiguousKeepsStridesAndOffset) {
  at::Tensor base = torch::arange(60, torch::kFloat).reshape({3, 4, 5});
  std::vector<at::Tensor> views = {
      base.transpose(0, 2),                          // permuted strides
      base.select(0, 1).slice(1, 1, 5, 2),           // offset + step
      base.slice(2, 3),                              // offset, non-contiguous rows
      torch::arange(4, torch::kFloat).expand({3, 4}),  // stride 0
      base.select(1, 2).select(1, 4),                // 1-d with offset
  };
  for (const auto& v : views) {
    ASSERT_FALSE(v.is_contiguous() && v.storage_offset() == 0);
    expect_same_tensor(v, roundtrip(v).toTensor(), "view " + c10::str(v.sizes()) + " " + c10::str(v.strides()));
  }
}

TEST(PtFile, SharedStorageIsSavedOnceAndStaysShared) {
  at::Tensor a = torch::arange(10, torch::kFloat);
  auto d = new_dict();
  d.insert("a", a);
  d.insert("b", a.slice(0, 2, 5));
  d.insert("a_again", a);
  d.insert("other", torch::ones({2}));
  std::string bytes = tt::io::save_pt_bytes(d);
  EXPECT_EQ(record(bytes, "data/0").size(), 10u * 4);
  EXPECT_EQ(record(bytes, "data/1").size(), 2u * 4);
  std::istringstream in(bytes);
  caffe2::serialize::PyTorchStreamReader reader(&in);
  EXPECT_FALSE(reader.hasRecord("data/2"));

  auto loaded = tt::io::load_pt_bytes(bytes, "shared").toGenericDict();
  at::Tensor la = loaded.at("a").toTensor();
  at::Tensor lb = loaded.at("b").toTensor();
  EXPECT_TRUE(la.is_same(loaded.at("a_again").toTensor()));
  EXPECT_EQ(la.storage().unsafeGetStorageImpl(), lb.storage().unsafeGetStorageImpl());
  la.fill_(-1);
  EXPECT_TRUE(torch::equal(lb, torch::full({3}, -1.0f)));
}

TEST(PtFile, RoundTripDictsKeepOrderAndScalars) {
  EXPECT_EQ(roundtrip(new_dict()).toGenericDict().size(), 0u);

  auto d = new_dict();
  for (const char* k : {"zeta", "alpha", "mid", "0", "beta"}) d.insert(k, torch::ones({1}));
  auto inner = new_dict();
  inner.insert("x", torch::zeros({2, 2}));
  inner.insert("deeper", new_dict());
  d.insert("inner", inner);
  d.insert("int", int64_t{-5});
  d.insert("big", int64_t{1} << 40);
  d.insert("neg_big", -(int64_t{1} << 50));
  d.insert("float", 0.1);
  d.insert("true", true);
  d.insert("none", c10::IValue());
  d.insert("str", std::string("h\xc3\xa9llo"));
  d.insert("tuple", c10::ivalue::Tuple::create({c10::IValue(int64_t{1}), c10::IValue(std::string("a")), c10::IValue(2.0),
                                                c10::IValue(false)}));
  c10::impl::GenericList list(c10::AnyType::get());
  list.push_back(c10::IValue(int64_t{300}));
  list.push_back(c10::IValue(int64_t{70000}));
  list.push_back(c10::IValue(torch::ones({1})));
  d.insert("list", list);

  auto out = roundtrip(d).toGenericDict();
  std::vector<std::string> keys;
  for (const auto& e : out) keys.push_back(e.key().toStringRef());
  std::vector<std::string> expected = {"zeta", "alpha", "mid", "0",    "beta", "inner", "int", "big",
                                       "neg_big", "float", "true", "none", "str", "tuple", "list"};
  EXPECT_EQ(keys, expected);
  auto lin = out.at("inner").toGenericDict();
  EXPECT_TRUE(torch::equal(lin.at("x").toTensor(), torch::zeros({2, 2})));
  EXPECT_EQ(lin.at("deeper").toGenericDict().size(), 0u);
  EXPECT_EQ(out.at("int").toInt(), -5);
  EXPECT_EQ(out.at("big").toInt(), int64_t{1} << 40);
  EXPECT_EQ(out.at("neg_big").toInt(), -(int64_t{1} << 50));
  EXPECT_EQ(out.at("float").toDouble(), 0.1);
  EXPECT_TRUE(out.at("true").toBool());
  EXPECT_TRUE(out.at("none").isNone());
  EXPECT_EQ(out.at("str").toStringRef(), "h\xc3\xa9llo");
  auto tuple = out.at("tuple").toTupleRef().elements();
  ASSERT_EQ(tuple.size(), 4u);
  EXPECT_EQ(tuple[0].toInt(), 1);
  EXPECT_EQ(tuple[1].toStringRef(), "a");
  EXPECT_EQ(tuple[2].toDouble(), 2.0);
  EXPECT_FALSE(tuple[3].toBool());
  auto l = out.at("list").toListRef();
  ASSERT_EQ(l.size(), 3u);
  EXPECT_EQ(l[0].toInt(), 300);
  EXPECT_EQ(l[1].toInt(), 70000);
  EXPECT_TRUE(torch::equal(l[2].toTensor(), torch::ones({1})));
}

TEST(PtFile, DictKeysKeepTheirPythonType) {
  // An optimizer's {0: ..., 1: ...} stays int-keyed; a mix of str and int keys is Any-keyed.
  c10::impl::GenericDict ints(c10::IntType::get(), c10::AnyType::get());
  ints.insert(int64_t{3}, torch::ones({1}));
  ints.insert(int64_t{-1}, std::string("x"));
  auto back = roundtrip(ints).toGenericDict();
  EXPECT_EQ(back.keyType()->kind(), c10::TypeKind::IntType);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.begin()->key().toInt(), 3);
  EXPECT_EQ(back.at(int64_t{-1}).toStringRef(), "x");

  c10::impl::GenericDict mixed(c10::AnyType::get(), c10::AnyType::get());
  mixed.insert(int64_t{0}, int64_t{10});
  mixed.insert(std::string("0"), int64_t{20});  // a different key in Python
  back = roundtrip(mixed).toGenericDict();
  EXPECT_EQ(back.keyType()->kind(), c10::TypeKind::AnyType);
  ASSERT_EQ(back.size(), 2u);
  EXPECT_EQ(back.at(int64_t{0}).toInt(), 10);
  EXPECT_EQ(back.at(std::string("0")).toInt(), 20);

  EXPECT_EQ(roundtrip(new_dict()).toGenericDict().keyType()->kind(), c10::TypeKind::StringType);
}

TEST(PtFile, TensorDictHelpers) {
  tt_test::TempDir dir;
  TensorDict d;
  d.insert("z.weight", torch::randn({2, 3}));
  d.insert("a.bias", torch::randn({2}));
  d.insert("m.raw_beta", torch::rand({2}));
  std::string path = dir.file("sd.pt");
  tt::io::save_tensor_dict(d, path);
  TensorDict loaded = tt::io::load_tensor_dict(path);
  ASSERT_EQ(loaded.size(), 3u);
  for (size_t i = 0; i < d.size(); ++i) {
    EXPECT_EQ(loaded[i].key(), d[i].key());
    expect_same_tensor(d[i].value(), loaded[i].value(), d[i].key());
  }

  // Nested into a bigger file and taken back out.
  auto outer = new_dict();
  outer.insert("state_dict", tt::io::to_ivalue(d));
  outer.insert("epoch", int64_t{3});
  auto back = roundtrip(outer).toGenericDict();
  TensorDict inner = tt::io::to_tensor_dict(back.at("state_dict"), "file: 'state_dict'");
  EXPECT_EQ(inner.keys(), d.keys());
  std::string msg = file_error([&] { tt::io::to_tensor_dict(back.at("epoch"), "file: 'epoch'"); });
  EXPECT_NE(msg.find("file: 'epoch'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("an int"), std::string::npos) << msg;
}

TEST(PtFile, MapLocationCpu) {
  at::Tensor t = torch::randn({3});
  tt_test::TempDir dir;
  tt::io::save_tensor(t, dir.file("t.pt"));
  at::Tensor loaded = tt::io::load_tensor(dir.file("t.pt"), tt::LoadOptions().map_location(torch::Device(torch::kCPU)));
  EXPECT_TRUE(loaded.device().is_cpu());
  EXPECT_TRUE(torch::equal(loaded, t));
  if (torch::cuda::is_available()) {
    at::Tensor cuda = tt::io::load_tensor(dir.file("t.pt"), tt::LoadOptions().map_location(torch::Device(torch::kCUDA, 0)));
    EXPECT_TRUE(cuda.device().is_cuda());
    EXPECT_TRUE(torch::equal(cuda.cpu(), t));
  }
}

TEST(PtFile, RequiresGradRoundTrips) {
  at::Tensor t = torch::ones({2}).requires_grad_(true);
  at::Tensor loaded = roundtrip(t).toTensor();
  EXPECT_TRUE(loaded.requires_grad());
  EXPECT_FALSE(roundtrip(torch::ones({2})).toTensor().requires_grad());
}

TEST(PtFile, UndefinedTensorIsSavedAsNone) {
  auto d = new_dict();
  d.insert("undef", at::Tensor());
  EXPECT_TRUE(roundtrip(d).toGenericDict().at("undef").isNone());
  tt_test::TempDir dir;
  std::string msg = file_error([&] { tt::io::save_tensor(at::Tensor(), dir.file("u.pt")); });
  EXPECT_NE(msg.find(dir.file("u.pt")), std::string::npos) << msg;
}

TEST(PtFile, UnsupportedValuesAreRejectedOnSave) {
  tt_test::TempDir dir;
  std::string path = dir.file("bad.pt");
  std::string msg = file_error([&] { tt::io::save_pt(torch::ones({2}, torch::kComplexFloat), path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("dtype"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::save_pt(c10::IValue(torch::Device(torch::kCPU)), path); });
  EXPECT_NE(msg.find("cannot save"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::save_pt(c10::IValue(std::string("\xff\xfe")), path); });
  EXPECT_NE(msg.find("UTF-8"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(path));
}

// ---- LibTorch's own pickler/unpickler as a second opinion ------------------------------------

TEST(PtFile, LibTorchPickleSaveFilesAreReadable) {
  c10::Dict<std::string, at::Tensor> d;
  d.insert("w", torch::randn({3, 2}).t());
  d.insert("b", torch::arange(4));
  std::vector<char> bytes = torch::pickle_save(c10::IValue(d));
  auto loaded = tt::io::load_pt_bytes(std::string(bytes.begin(), bytes.end()), "pickle_save").toGenericDict();
  ASSERT_EQ(loaded.size(), 2u);
  expect_same_tensor(d.at("w"), loaded.at("w").toTensor(), "w");
  expect_same_tensor(d.at("b"), loaded.at("b").toTensor(), "b");
}

TEST(PtFile, OurFilesAreReadableByLibTorchPickleLoad) {
  auto d = new_dict();
  at::Tensor base = torch::arange(20, torch::kFloat).reshape({4, 5});
  d.insert("sliced", base.slice(0, 1).slice(1, 0, 5, 2));
  d.insert("i64", torch::arange(-3, 3, torch::kLong));
  d.insert("n", int64_t{-70000});
  d.insert("f", 2.5);
  std::string bytes = tt::io::save_pt_bytes(d);
  c10::IValue v = torch::pickle_load(std::vector<char>(bytes.begin(), bytes.end()));
  auto out = v.toGenericDict();
  expect_same_tensor(d.at("sliced").toTensor(), out.at("sliced").toTensor(), "sliced");
  expect_same_tensor(d.at("i64").toTensor(), out.at("i64").toTensor(), "i64");
  EXPECT_EQ(out.at("n").toInt(), -70000);
  EXPECT_EQ(out.at("f").toDouble(), 2.5);
}

// ---- interop with Python ---------------------------------------------------------------------

std::string py_dtype(c10::ScalarType t) {
  switch (t) {
    case c10::ScalarType::Float: return "torch.float32";
    case c10::ScalarType::Double: return "torch.float64";
    case c10::ScalarType::Half: return "torch.float16";
    case c10::ScalarType::BFloat16: return "torch.bfloat16";
    case c10::ScalarType::Long: return "torch.int64";
    case c10::ScalarType::Int: return "torch.int32";
    case c10::ScalarType::Short: return "torch.int16";
    case c10::ScalarType::Char: return "torch.int8";
    case c10::ScalarType::Byte: return "torch.uint8";
    case c10::ScalarType::Bool: return "torch.bool";
    default: return "?";
  }
}

// Compares a loaded value with the description Python wrote (see kPythonWriter).
void check_desc(const c10::IValue& v, const json& j, const std::string& where) {
  SCOPED_TRACE(where);
  if (j.contains("tensor")) {
    ASSERT_TRUE(v.isTensor());
    const json& d = j["tensor"];
    at::Tensor t = v.toTensor();
    EXPECT_EQ(py_dtype(t.scalar_type()), d["dtype"].get<std::string>());
    EXPECT_EQ(t.sizes().vec(), d["shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.strides().vec(), d["stride"].get<std::vector<int64_t>>());
    EXPECT_EQ(t.storage_offset(), d["offset"].get<int64_t>());
    EXPECT_EQ(t.is_contiguous(), d["contiguous"].get<bool>());
    EXPECT_EQ(t.requires_grad(), d["requires_grad"].get<bool>());
    const json& values = d["values"];
    at::Tensor flat = t.detach().reshape(-1);
    ASSERT_EQ(static_cast<size_t>(flat.numel()), values.size());
    if (t.scalar_type() == c10::ScalarType::Bool) {
      at::Tensor b = flat.contiguous();
      for (int64_t i = 0; i < b.numel(); ++i) EXPECT_EQ(b.data_ptr<bool>()[i], values[i].get<bool>()) << i;
    } else if (at::isFloatingType(t.scalar_type())) {
      at::Tensor f = flat.to(torch::kDouble).contiguous();
      for (int64_t i = 0; i < f.numel(); ++i) EXPECT_EQ(f.data_ptr<double>()[i], values[i].get<double>()) << i;
    } else {
      at::Tensor l = flat.to(torch::kLong).contiguous();
      for (int64_t i = 0; i < l.numel(); ++i) EXPECT_EQ(l.data_ptr<int64_t>()[i], values[i].get<int64_t>()) << i;
    }
  } else if (j.contains("dict")) {
    ASSERT_TRUE(v.isGenericDict());
    auto dict = v.toGenericDict();
    const json& items = j["dict"];
    ASSERT_EQ(dict.size(), items.size());
    size_t i = 0;
    for (const auto& entry : dict) {
      const std::string key = items[i][0].get<std::string>();
      EXPECT_EQ(entry.key().toStringRef(), key) << "key order at " << i;
      check_desc(entry.value(), items[i][1], where + "['" + key + "']");
      ++i;
    }
  } else if (j.contains("list") || j.contains("tuple")) {
    bool is_list = j.contains("list");
    ASSERT_TRUE(is_list ? v.isList() : v.isTuple());
    const json& items = is_list ? j["list"] : j["tuple"];
    std::vector<c10::IValue> elems = is_list ? v.toListRef().vec() : v.toTupleRef().elements().vec();
    ASSERT_EQ(elems.size(), items.size());
    for (size_t i = 0; i < elems.size(); ++i) check_desc(elems[i], items[i], where + "[" + std::to_string(i) + "]");
  } else if (j.contains("bool")) {
    ASSERT_TRUE(v.isBool());
    EXPECT_EQ(v.toBool(), j["bool"].get<bool>());
  } else if (j.contains("int")) {
    ASSERT_TRUE(v.isInt());
    EXPECT_EQ(v.toInt(), j["int"].get<int64_t>());
  } else if (j.contains("float")) {
    ASSERT_TRUE(v.isDouble());
    EXPECT_EQ(v.toDouble(), j["float"].get<double>());
  } else if (j.contains("str")) {
    ASSERT_TRUE(v.isString());
    EXPECT_EQ(v.toStringRef(), j["str"].get<std::string>());
  } else {
    ASSERT_TRUE(j.contains("none"));
    EXPECT_TRUE(v.isNone());
  }
}

const char* kPythonWriter = R"PY(
import collections, json, os, pickle, zipfile, torch
torch.manual_seed(0)

def desc(o):
    if isinstance(o, torch.Tensor):
        flat = o.detach().reshape(-1)
        if o.dtype in (torch.float16, torch.bfloat16):
            flat = flat.double()
        return {'tensor': {'dtype': str(o.dtype), 'shape': list(o.shape), 'stride': list(o.stride()),
                           'offset': o.storage_offset(), 'contiguous': o.is_contiguous(),
                           'requires_grad': o.requires_grad, 'values': flat.tolist()}}
    if isinstance(o, dict):
        return {'dict': [[k, desc(v)] for k, v in o.items()]}
    if isinstance(o, list):
        return {'list': [desc(v) for v in o]}
    if isinstance(o, tuple):
        return {'tuple': [desc(v) for v in o]}
    if isinstance(o, bool):
        return {'bool': o}
    if isinstance(o, int):
        return {'int': o}
    if isinstance(o, float):
        return {'float': o}
    if isinstance(o, str):
        return {'str': o}
    if o is None:
        return {'none': None}
    raise TypeError(type(o))

net = torch.nn.Sequential(torch.nn.Linear(3, 4), torch.nn.ReLU(), torch.nn.Linear(4, 2))
sd = net.state_dict()
assert isinstance(sd, collections.OrderedDict)
x = torch.arange(24.).reshape(4, 6)
dtypes = {
    'f32': torch.randn(2, 3), 'f64': torch.randn(2, 3, dtype=torch.float64),
    'f16': torch.randn(2, 3).half(), 'bf16': torch.randn(2, 3).bfloat16(),
    'i64': torch.tensor([-2**62, 0, 2**62 - 1]), 'i32': torch.tensor([-2**31, 5, 2**31 - 1], dtype=torch.int32),
    'i16': torch.tensor([-2**15, 7, 2**15 - 1], dtype=torch.int16), 'i8': torch.tensor([-128, 0, 127], dtype=torch.int8),
    'u8': torch.tensor([0, 128, 255], dtype=torch.uint8), 'bool': torch.tensor([[True, False], [False, True]]),
}
shared = torch.arange(10.)
files = {
    'state_dict.pt': sd,
    'plain.pt': dict(sd),
    'nested.pt': {'state_dict': sd,
                  'reservoir_states': {'1.mem': torch.randn(2, 4), '._modules[1].mem': torch.randn(2, 4)},
                  'epoch': 7, 'lr': 1e-3, 'name': 'r\u00e9sum\u00e9', 'flags': [True, None, -2**40, 70000], 'shape': (2, 3),
                  'big': 2**62, 'neg': -5},
    'tensor.pt': torch.randn(3, 4),
    'noncontig.pt': x[1:, ::2].t(),
    'dtypes.pt': dtypes,
    'param.pt': {'p': torch.nn.Parameter(torch.ones(2, 2)),
                 'frozen': torch.nn.Parameter(torch.zeros(1), requires_grad=False)},
    'my.weights.pt': {'w': torch.ones(3)},
    'empty.pt': {},
    'scalar.pt': torch.tensor(3.25),
    'empty_tensor.pt': torch.empty(0, 3),
    'shared.pt': {'a': shared, 'b': shared[2:5], 'a2': shared},
}
expect = {}
for name, obj in files.items():
    torch.save(obj, os.path.join(D, name))
    expect[name] = desc(obj)
torch.save(dtypes, os.path.join(D, 'proto4.pt'), pickle_protocol=4)
expect['proto4.pt'] = desc(dtypes)
for case in ('snn_LIB', 'ssm_Mamba'):
    for f in ('weights.pt', 'states_mid.pt', 'inputs.pt'):
        path = os.path.join(G, case, f)
        expect[path] = desc(torch.load(path))
json.dump(expect, open(os.path.join(D, 'expect.json'), 'w'))

# Files that must be refused.
torch.save(x, os.path.join(D, 'legacy.pt'), _use_new_zipfile_serialization=False)
class Evil:
    def __reduce__(self):
        return (os.system, ('touch ' + os.path.join(D, 'pwned'),))
with zipfile.ZipFile(os.path.join(D, 'evil.pt'), 'w') as z:
    z.writestr('archive/data.pkl', pickle.dumps({'x': Evil()}, protocol=2))
    z.writestr('archive/version', '3\n')
torch.jit.save(torch.jit.script(torch.nn.Linear(2, 2)), os.path.join(D, 'script.pt'))
print('written')
)PY";

TEST(PtFile, PythonFilesReadIdentically) {
  if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  tt_test::TempDir dir;
  std::string out;
  std::string script = "D = " + json(dir.path()).dump() + "\nG = " + json(tt_test::shared_dir() + "/golden/cases").dump() +
                       "\n" + kPythonWriter;
  ASSERT_EQ(tt_test::run_python(script, &out), 0) << out;
  json expect = json::parse(tt_test::read_text(dir.file("expect.json")));
  ASSERT_GE(expect.size(), 15u);
  for (const auto& [name, desc] : expect.items()) {
    std::string path = name[0] == '/' ? name : dir.file(name);
    c10::IValue v;
    ASSERT_NO_THROW(v = tt::io::load_pt(path)) << path;
    check_desc(v, desc, name);
  }
  // Shared storage stays shared; the same tensor object comes back as the same tensor.
  auto shared = tt::io::load_pt(dir.file("shared.pt")).toGenericDict();
  EXPECT_TRUE(shared.at("a").toTensor().is_same(shared.at("a2").toTensor()));
  EXPECT_EQ(shared.at("a").toTensor().storage().unsafeGetStorageImpl(),
            shared.at("b").toTensor().storage().unsafeGetStorageImpl());
  // A state_dict (OrderedDict with _metadata) through the typed helper.
  TensorDict sd = tt::io::load_tensor_dict(dir.file("state_dict.pt"));
  EXPECT_EQ(sd.keys(), (std::vector<std::string>{"0.weight", "0.bias", "2.weight", "2.bias"}));
  EXPECT_EQ(tt::io::load_tensor(dir.file("tensor.pt")).sizes(), (std::vector<int64_t>{3, 4}));

  // Refused files.
  std::string msg = file_error([&] { tt::io::load_pt(dir.file("legacy.pt")); });
  EXPECT_NE(msg.find(dir.file("legacy.pt")), std::string::npos) << msg;
  EXPECT_NE(msg.find("legacy"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::load_pt(dir.file("evil.pt")); });
  EXPECT_NE(msg.find("unsupported global 'posix.system'"), std::string::npos) << msg;
  EXPECT_FALSE(fs::exists(dir.file("pwned")));
  msg = file_error([&] { tt::io::load_pt(dir.file("script.pt")); });
  EXPECT_NE(msg.find("TorchScript"), std::string::npos) << msg;
}

TEST(PtFile, PythonReadsOurFilesIdentically) {
  if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  tt_test::TempDir dir;
  auto d = new_dict();
  d.insert("f32", torch::arange(12, torch::kFloat).reshape({3, 4}) / 8);
  d.insert("f64", torch::arange(6, torch::kDouble).reshape({2, 3}) / 3);
  d.insert("f16", torch::arange(6).to(torch::kHalf) / 4);
  d.insert("bf16", torch::arange(6).to(torch::kBFloat16) / 4);
  d.insert("i64", torch::arange(-3, 3, torch::kLong) * int64_t{1000000000000});
  d.insert("i32", torch::arange(-3, 3, torch::kInt) * 100000);
  d.insert("i16", torch::arange(-3, 3, torch::kShort) * 1000);
  d.insert("i8", torch::arange(-3, 3, torch::kChar));
  d.insert("u8", torch::arange(250, 256).to(torch::kByte));
  d.insert("bool", torch::tensor({true, false, true}));
  d.insert("scalar", torch::full({}, 2.5, torch::kFloat));
  d.insert("empty", torch::empty({0, 3}));
  d.insert("transposed", torch::arange(12, torch::kFloat).reshape({3, 4}).t());
  d.insert("sliced", torch::arange(20, torch::kFloat).reshape({4, 5}).slice(0, 1).slice(1, 0, 5, 2));
  at::Tensor shared = torch::arange(10, torch::kFloat);
  d.insert("shared_a", shared);
  d.insert("shared_b", shared.slice(0, 2, 5));
  auto nested = new_dict();
  auto inner = new_dict();
  inner.insert("x", torch::ones({2}));
  nested.insert("inner", inner);
  nested.insert("n", int64_t{3});
  nested.insert("f", 0.25);
  nested.insert("s", std::string("h\xc3\xa9llo"));
  c10::impl::GenericList list(c10::AnyType::get());
  list.push_back(c10::IValue(int64_t{1}));
  list.push_back(c10::IValue(2.5));
  list.push_back(c10::IValue());
  list.push_back(c10::IValue(true));
  nested.insert("l", list);
  nested.insert("t", c10::ivalue::Tuple::create({c10::IValue(int64_t{1}), c10::IValue(std::string("a"))}));
  nested.insert("big", int64_t{1} << 40);
  nested.insert("neg", int64_t{-70000});
  d.insert("nested", nested);
  d.insert("grad", torch::ones({2}).requires_grad_(true));
  d.insert("empty_dict", new_dict());
  std::string path = dir.file("sub/dir/cpp.pt");
  tt::io::save_pt(d, path);

  const std::string script_rich = R"PY(
names = sorted(zipfile.ZipFile(P).namelist())
assert names == sorted(['archive/data.pkl', 'archive/version'] + ['archive/data/%d' % i for i in range(17)]), names
# LibTorch 1.13's weights_only unpickler lacks BINFLOAT (Python's own float pickles fail it
# too), so this file, which holds floats, is read unrestricted; the two files below use weights_only.
d = torch.load(P)
assert type(d) is dict, type(d)
assert list(d.keys()) == ['f32', 'f64', 'f16', 'bf16', 'i64', 'i32', 'i16', 'i8', 'u8', 'bool', 'scalar', 'empty',
                          'transposed', 'sliced', 'shared_a', 'shared_b', 'nested', 'grad', 'empty_dict'], list(d.keys())
def same(name, expected):
    t = d[name]
    assert t.dtype == expected.dtype, (name, t.dtype, expected.dtype)
    assert t.shape == expected.shape, (name, t.shape, expected.shape)
    assert t.stride() == expected.stride(), (name, t.stride(), expected.stride())
    assert t.storage_offset() == expected.storage_offset(), (name, t.storage_offset())
    assert t.is_contiguous() == expected.is_contiguous(), name
    assert t.requires_grad == expected.requires_grad, name
    assert torch.equal(t, expected), (name, t, expected)
same('f32', torch.arange(12, dtype=torch.float32).reshape(3, 4) / 8)
same('f64', torch.arange(6, dtype=torch.float64).reshape(2, 3) / 3)
same('f16', torch.arange(6).half() / 4)
same('bf16', torch.arange(6).bfloat16() / 4)
same('i64', torch.arange(-3, 3) * 1000000000000)
same('i32', torch.arange(-3, 3, dtype=torch.int32) * 100000)
same('i16', torch.arange(-3, 3, dtype=torch.int16) * 1000)
same('i8', torch.arange(-3, 3, dtype=torch.int8))
same('u8', torch.arange(250, 256).to(torch.uint8))
same('bool', torch.tensor([True, False, True]))
same('scalar', torch.tensor(2.5))
same('empty', torch.empty(0, 3))
same('transposed', torch.arange(12, dtype=torch.float32).reshape(3, 4).t())
same('sliced', torch.arange(20, dtype=torch.float32).reshape(4, 5)[1:, ::2])
shared = torch.arange(10, dtype=torch.float32)
same('shared_a', shared)
same('shared_b', shared[2:5])
assert d['shared_b'].data_ptr() == d['shared_a'].data_ptr() + 8
same('grad', torch.ones(2).requires_grad_(True))
n = d['nested']
assert list(n.keys()) == ['inner', 'n', 'f', 's', 'l', 't', 'big', 'neg'], list(n.keys())
assert torch.equal(n['inner']['x'], torch.ones(2))
assert n['n'] == 3 and type(n['n']) is int
assert n['f'] == 0.25 and type(n['f']) is float
assert n['s'] == 'h\u00e9llo', n['s']
assert n['l'] == [1, 2.5, None, True], n['l']
assert n['t'] == (1, 'a'), n['t']
assert n['big'] == 2**40 and n['neg'] == -70000
assert d['empty_dict'] == {}
)PY";

  // Without floats, torch.load(weights_only=True) (the restricted unpickler) accepts our files.
  auto restricted = new_dict();
  restricted.insert("sliced", d.at("sliced"));
  restricted.insert("shared_a", shared);
  restricted.insert("shared_b", d.at("shared_b"));
  restricted.insert("i64", d.at("i64"));
  auto r_inner = new_dict();
  r_inner.insert("n", int64_t{-70000});
  r_inner.insert("big", int64_t{1} << 40);
  r_inner.insert("s", std::string("h\xc3\xa9llo"));
  c10::impl::GenericList r_list(c10::AnyType::get());
  r_list.push_back(c10::IValue(int64_t{1}));
  r_list.push_back(c10::IValue());
  r_list.push_back(c10::IValue(true));
  r_inner.insert("l", r_list);
  r_inner.insert("t", c10::ivalue::Tuple::create({c10::IValue(int64_t{1}), c10::IValue(std::string("a"))}));
  restricted.insert("inner", r_inner);
  std::string restricted_path = dir.file("restricted.pt");
  tt::io::save_pt(restricted, restricted_path);
  const std::string script_restricted = R"PY(
d = torch.load(P_RESTRICTED, weights_only=True)
assert list(d.keys()) == ['sliced', 'shared_a', 'shared_b', 'i64', 'inner'], list(d.keys())
s = d['sliced']
assert s.stride() == (5, 2) and s.storage_offset() == 5 and not s.is_contiguous(), (s.stride(), s.storage_offset())
assert torch.equal(s, torch.arange(20, dtype=torch.float32).reshape(4, 5)[1:, ::2])
assert d['shared_b'].data_ptr() == d['shared_a'].data_ptr() + 8
assert torch.equal(d['i64'], torch.arange(-3, 3) * 1000000000000)
assert d['inner'] == {'n': -70000, 'big': 2**40, 's': 'h\u00e9llo', 'l': [1, None, True], 't': (1, 'a')}, d['inner']
)PY";

  // A state_dict written by us loads into a Python module with load_state_dict.
  TensorDict sd;
  sd.insert("weight", torch::arange(6, torch::kFloat).reshape({2, 3}) / 10);
  sd.insert("bias", torch::tensor({-1.5f, 2.0f}));
  std::string sd_path = dir.file("linear.pt");
  tt::io::save_tensor_dict(sd, sd_path);
  const std::string script_linear = R"PY(
m = torch.nn.Linear(3, 2)
m.load_state_dict(torch.load(P_LINEAR, weights_only=True))
assert torch.equal(m.weight.detach(), torch.arange(6, dtype=torch.float32).reshape(2, 3) / 10)
assert torch.equal(m.bias.detach(), torch.tensor([-1.5, 2.0]))
print('ok')
)PY";

  // One Python process (importing torch is the slow part) checks all three files.
  std::string script = "import torch, zipfile\nP = " + json(path).dump() + "\nP_RESTRICTED = " +
                       json(restricted_path).dump() + "\nP_LINEAR = " + json(sd_path).dump() + "\n" + script_rich +
                       script_restricted + script_linear;
  std::string out;
  EXPECT_EQ(tt_test::run_python(script, &out), 0) << out;
}

// ---- the golden data -------------------------------------------------------------------------

TEST(PtFile, GoldenFilesMatchManifest) {
  const std::string root = tt_test::shared_dir() + "/golden";
  if (!fs::exists(root + "/manifest.json")) GTEST_SKIP() << "no golden data";
  json manifest = json::parse(tt_test::read_text(root + "/manifest.json"));
  ASSERT_FALSE(manifest["cases"].empty());
  for (const json& c : manifest["cases"]) {
    const std::string name = c["name"].get<std::string>();
    SCOPED_TRACE(name);
    const std::string dir = root + "/cases/" + name + "/";

    for (const auto& [file, keys_field] : {std::pair<std::string, std::string>{"weights.pt", "weights_keys"},
                                           {"weights_compiled.pt", "weights_compiled_keys"}}) {
      TensorDict w = tt::io::load_tensor_dict(dir + file);
      const json& keys = c[keys_field];
      ASSERT_EQ(w.size(), keys.size()) << file;
      for (size_t i = 0; i < keys.size(); ++i) {
        EXPECT_EQ(w[i].key(), keys[i][0].get<std::string>()) << file;
        EXPECT_EQ(w[i].value().sizes().vec(), keys[i][1].get<std::vector<int64_t>>()) << file << " " << w[i].key();
        EXPECT_EQ(w[i].value().scalar_type(), torch::kFloat);
      }
    }

    for (const char* file : {"states_mid.pt", "states_final.pt"}) {
      TensorDict s = tt::io::load_tensor_dict(dir + file);
      const std::vector<std::string> key_list = s.keys();
      std::set<std::string> keys(key_list.begin(), key_list.end());
      auto all = c["state_keys_all"].get<std::vector<std::string>>();
      EXPECT_EQ(keys, std::set<std::string>(all.begin(), all.end())) << file;
      for (const auto& [key, shape] : c["state_shapes"].items()) {
        ASSERT_TRUE(s.contains(key)) << file << " " << key;
        EXPECT_EQ(s[key].sizes().vec(), shape.get<std::vector<int64_t>>()) << file << " " << key;
      }
    }

    at::Tensor inputs = tt::io::load_tensor(dir + "inputs.pt");
    EXPECT_EQ(inputs.sizes().vec(), c["input_shape"].get<std::vector<int64_t>>());
    EXPECT_EQ(inputs.scalar_type(), torch::kFloat);
    at::Tensor outputs = tt::io::load_tensor(dir + "outputs.pt");
    EXPECT_EQ(outputs.sizes().vec(), c["output_shape"].get<std::vector<int64_t>>());
  }
}

// ---- errors ------------------------------------------------------------------------------------

TEST(PtFileErrors, MissingFileNamesPath) {
  tt_test::TempDir dir;
  std::string path = dir.file("nope/missing.pt");
  std::string msg = file_error([&] { tt::io::load_pt(path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;
  EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::load_tensor_dict(path); });
  EXPECT_NE(msg.find("no such file"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::load_pt(dir.path()); });
  EXPECT_NE(msg.find("directory"), std::string::npos) << msg;
}

TEST(PtFileErrors, NotAZipFile) {
  tt_test::TempDir dir;
  for (const std::string text : {std::string("hello, this is text\n"), std::string(""), std::string("PK"),
                                 std::string("PK\x03\x04garbage garbage garbage", 27)}) {
    std::string path = dir.file("text.pt");
    tt_test::write_text(path, text);
    std::string msg = file_error([&] { tt::io::load_pt(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
    EXPECT_NE(msg.find("torch file"), std::string::npos) << msg;
  }
  std::string msg = file_error([&] {
    tt::io::load_pt_bytes(make_archive({{"other.txt", "x"}}), "mem");
  });
  EXPECT_NE(msg.find("no data.pkl"), std::string::npos) << msg;
}

TEST(PtFileErrors, WrongTopLevelType) {
  tt_test::TempDir dir;
  auto d = new_dict();
  d.insert("x", torch::ones({2}));
  tt::io::save_pt(d, dir.file("dict.pt"));
  tt::io::save_tensor(torch::ones({2}), dir.file("tensor.pt"));
  auto nested = new_dict();
  nested.insert("inner", d);
  tt::io::save_pt(nested, dir.file("nested.pt"));
  auto mixed = new_dict();
  mixed.insert("x", torch::ones({2}));
  mixed.insert("n", int64_t{3});
  tt::io::save_pt(mixed, dir.file("mixed.pt"));

  std::string msg = file_error([&] { tt::io::load_tensor(dir.file("dict.pt")); });
  EXPECT_NE(msg.find(dir.file("dict.pt")), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected a tensor"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::load_tensor_dict(dir.file("tensor.pt")); });
  EXPECT_NE(msg.find(dir.file("tensor.pt")), std::string::npos) << msg;
  EXPECT_NE(msg.find("expected a dict"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::load_tensor_dict(dir.file("nested.pt")); });
  EXPECT_NE(msg.find("'inner'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nested"), std::string::npos) << msg;
  msg = file_error([&] { tt::io::load_tensor_dict(dir.file("mixed.pt")); });
  EXPECT_NE(msg.find("'n'"), std::string::npos) << msg;
}

// Pickle building blocks for hand-made hostile files.
std::string binunicode(const std::string& s) {
  std::string out = "X";
  uint32_t n = static_cast<uint32_t>(s.size());
  for (int k = 0; k < 4; ++k) out += static_cast<char>((n >> (8 * k)) & 0xFF);
  return out + s;
}
std::string long1(int64_t v) {
  std::string out = "\x8a\x08";
  for (int k = 0; k < 8; ++k) out += static_cast<char>((static_cast<uint64_t>(v) >> (8 * k)) & 0xFF);
  return out;
}
std::string int_tuple(const std::vector<int64_t>& values) {
  std::string out = "(";
  for (int64_t v : values) out += long1(v);
  return out + "t";
}
// data.pkl for one tensor: _rebuild_tensor_v2(('storage', torch.<type>, key, 'cpu', numel), offset, size, stride, ...)
std::string tensor_pickle(const std::string& type, const std::string& key, int64_t numel, int64_t offset,
                          const std::vector<int64_t>& size, const std::vector<int64_t>& stride,
                          const std::string& location = "cpu") {
  return std::string("\x80\x02") + "ctorch._utils\n_rebuild_tensor_v2\n((" + binunicode("storage") + "ctorch\n" + type +
         "\n" + binunicode(key) + binunicode(location) + long1(numel) + "tQ" + long1(offset) + int_tuple(size) +
         int_tuple(stride) + "\x89" + "ccollections\nOrderedDict\n)RtR.";
}

std::string load_error(const std::string& pkl, const std::vector<std::pair<std::string, std::string>>& extra = {}) {
  std::vector<std::pair<std::string, std::string>> records = {{"data.pkl", pkl}};
  records.insert(records.end(), extra.begin(), extra.end());
  std::string archive = make_archive(records);
  return file_error([&] { tt::io::load_pt_bytes(archive, "hostile.pt"); });
}

TEST(PtFileErrors, HostileGlobalsAreRefused) {
  tt_test::TempDir dir;
  std::string marker = dir.file("pwned");
  struct Case {
    std::string pkl;
    std::string name;
  };
  std::vector<Case> cases = {
      {"\x80\x02" "cos\nsystem\n" + binunicode("touch " + marker) + "\x85R.", "os.system"},
      {"\x80\x02" "cposix\nsystem\n" + binunicode("touch " + marker) + "\x85R.", "posix.system"},
      {"\x80\x04\x8c\x08" "builtins\x8c\x04" "eval\x93" + binunicode("open('" + marker + "','w')") + "\x85R.",
       "builtins.eval"},
      {"\x80\x02" "c__builtin__\ngetattr\n)R.", "__builtin__.getattr"},
      {"\x80\x02" "ctorch.storage\n_load_from_bytes\n" + binunicode("x") + "\x85R.", "torch.storage._load_from_bytes"},
      {"\x80\x02" "ctorch._utils\n_rebuild_tensor\n)R.", "torch._utils._rebuild_tensor"},
      {"\x80\x02" "ctorch\nload\n)R.", "torch.load"},
  };
  for (const auto& c : cases) {
    std::string msg = load_error(c.pkl);
    EXPECT_NE(msg.find("hostile.pt"), std::string::npos) << msg;
    EXPECT_NE(msg.find("unsupported global '" + c.name + "'"), std::string::npos) << msg;
    EXPECT_NE(msg.find("only tensors and dicts"), std::string::npos) << msg;
  }
  EXPECT_FALSE(fs::exists(marker));
}

TEST(PtFileErrors, MalformedPicklesAreRefused) {
  std::string storage16(16, '\0');
  struct Case {
    std::string pkl;
    std::string expect;
    std::vector<std::pair<std::string, std::string>> extra;
  };
  std::vector<Case> cases = {
      {"\x80\x02h\x05.", "memo index 5"},
      {"\x80\x02j\x01\x02\x03\x04.", "memo index"},
      {"\x80\x02X\xff\xff\xff\xff", "truncated"},
      {"\x80\x02\x8d\xff\xff\xff\xff\xff\xff\xff\xff", "truncated"},
      {"\x80\x02N", "no STOP"},
      {"\x80\x02.", "stack underflow"},
      {"\x80\x02(.", "stack underflow"},
      {"\x80\x02Nt.", "missing MARK"},
      {"\x80\x02\xff.", "unsupported pickle opcode 0xff"},
      {"\x80\x07N.", "protocol"},
      {"\x80\x02]q\x00h\x00" "a."s, "holds itself"},
      {"\x80\x02" + std::string(100000, ']') + std::string(99999, 'a') + ".", "deeper"},
      {"\x80\x02\x8a\x09" + std::string(9, '\x01') + ".", "64 bits"},
      {"\x80\x02}(K\x01K\x02\x86K\x03u.", "dict key of type tuple"},
      {"\x80\x02]Nb.", "BUILD"},
      {"\x80\x02NNNs.", "SETITEM on a None"},
      {"\x80\x02" "ctorch\nfloat32\n)R.", "cannot be called"},
      {"\x80\x02" "ccollections\nOrderedDict\nK\x01R.", "not a tuple"},
      {"\x80\x02" "ccollections\nOrderedDict", "unterminated"},
      {"\x80\x02(" + binunicode("module") + "tQ.", "persistent id"},
      {"\x80\x02(" + binunicode("storage") + "ctorch\nFloatStorage\n" + binunicode("0") + binunicode("cpu") +
           "K\x04tQ.",
       "bare storage", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 4, 0, {10}, {1}), "reaches past the end", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 4, 2, {2, 2}, {1, 1}), "reaches past the end", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 4, 5, {0}, {1}), "reaches past the end", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 4, 0, {int64_t{1} << 31, int64_t{1} << 31, int64_t{1} << 31}, {1, 1, 1}),
       "overflows", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 4, 0, {2}, {-1}), "negative", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 4, -1, {2}, {1}), "negative storage offset", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 4, 0, {2, 2}, {1}), "different lengths", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", 5, 0, {2}, {1}), "has 16 bytes, expected 20", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "7", 4, 0, {2}, {1}), "missing record 'data/7'", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "../0", 4, 0, {2}, {1}), "invalid storage key", {{"data/0", storage16}}},
      {tensor_pickle("FloatStorage", "0", int64_t{1} << 62, 0, {2}, {1}), "overflows", {{"data/0", storage16}}},
      {tensor_pickle("ComplexFloatStorage", "0", 2, 0, {2}, {1}), "unsupported global 'torch.ComplexFloatStorage'",
       {{"data/0", storage16}}},
  };
  for (const auto& c : cases) {
    std::string msg = load_error(c.pkl, c.extra);
    EXPECT_NE(msg.find("hostile.pt"), std::string::npos) << msg;
    EXPECT_NE(msg.find(c.expect), std::string::npos) << "expected '" << c.expect << "' in: " << msg;
  }
  // The hand-made tensor pickle itself is fine when consistent.
  std::string ok = make_archive({{"data.pkl", tensor_pickle("FloatStorage", "0", 4, 1, {3}, {1})}, {"data/0", storage16}});
  EXPECT_TRUE(torch::equal(tt::io::load_pt_bytes(ok, "ok").toTensor(), torch::zeros({3})));
}

TEST(PtFileErrors, PickleResourceLimits) {
  // Issue 14: one-byte opcodes that each allocate. A few MB of them used to take gigabytes.
  std::string msg = load_error("\x80\x02" + std::string(size_t{3} << 20, ']') + ".");
  EXPECT_NE(msg.find("more than 2097152 objects"), std::string::npos) << msg;
  msg = load_error("\x80\x02]" + std::string(size_t{17} << 20, '(') + ".");
  EXPECT_NE(msg.find("more than 16777216 references"), std::string::npos) << msg;
  // Duplicating one object (DUP) fills the stack without making objects.
  msg = load_error("\x80\x02]" + std::string(size_t{17} << 20, '2') + ".");
  EXPECT_NE(msg.find("references"), std::string::npos) << msg;
  // Deep nesting is refused when converting, not by overflowing the C++ stack.
  msg = load_error("\x80\x02" + std::string(600, ']') + std::string(599, 'a') + ".");
  EXPECT_NE(msg.find("deeper than 512 levels"), std::string::npos) << msg;
}

TEST(PtFileErrors, TruncatedFilesAlwaysThrowFileError) {
  tt_test::TempDir dir;
  std::string bytes = tt::io::save_pt_bytes(rich_value());
  ASSERT_GT(bytes.size(), 1000u);
  for (size_t cut = 0; cut < bytes.size(); ++cut) {
    bool file_error_thrown = false;
    try {
      tt::io::load_pt_bytes(bytes.substr(0, cut), "cut.pt");
    } catch (const tt::FileError& e) {
      file_error_thrown = std::string(e.what()).find("cut.pt") != std::string::npos;
    } catch (...) {
    }
    ASSERT_TRUE(file_error_thrown) << "cut at " << cut << " of " << bytes.size();
  }
  // Through the file path too.
  for (size_t cut : {size_t{0}, size_t{10}, bytes.size() / 2, bytes.size() - 1}) {
    std::string path = dir.file("cut.pt");
    tt_test::write_text(path, bytes.substr(0, cut));
    std::string msg = file_error([&] { tt::io::load_pt(path); });
    EXPECT_NE(msg.find(path), std::string::npos) << msg;
  }
}

// Every attempt must either load or throw tt::FileError.
void expect_loads_or_file_error(const std::string& bytes, const std::string& what) {
  try {
    tt::io::load_pt_bytes(bytes, what);
  } catch (const tt::FileError&) {
  } catch (const std::exception& e) {
    ADD_FAILURE() << what << ": unexpected exception " << e.what();
  } catch (...) {
    ADD_FAILURE() << what << ": unexpected non-std exception";
  }
}

TEST(PtFileErrors, CorruptedBytesNeverEscapeAsOtherErrors) {
  std::string bytes = tt::io::save_pt_bytes(rich_value());
  std::mt19937 rng(1234);
  for (int attempt = 0; attempt < 2000; ++attempt) {
    std::string broken = bytes;
    int flips = 1 + static_cast<int>(rng() % 4);
    for (int k = 0; k < flips; ++k) broken[rng() % broken.size()] = static_cast<char>(rng() & 0xFF);
    expect_loads_or_file_error(broken, "corrupt #" + std::to_string(attempt));
  }
  // Chunks cut out of the middle keep the end-of-central-directory record but shift everything.
  for (int attempt = 0; attempt < 300; ++attempt) {
    std::string broken = bytes;
    size_t at = rng() % (broken.size() - 30);
    broken.erase(at, 1 + rng() % 64);
    expect_loads_or_file_error(broken, "chunk #" + std::to_string(attempt));
  }
}

TEST(PtFileErrors, FuzzedPicklesNeverEscapeAsOtherErrors) {
  // Mutate data.pkl itself and re-wrap it in a valid zip, so the interpreter (not the zip
  // checksum) meets the damage.
  std::string bytes = tt::io::save_pt_bytes(rich_value());
  std::string pkl = record(bytes, "data.pkl");
  std::vector<std::pair<std::string, std::string>> storages;
  for (int i = 0;; ++i) {
    std::istringstream in(bytes);
    caffe2::serialize::PyTorchStreamReader reader(&in);
    std::string name = "data/" + std::to_string(i);
    if (!reader.hasRecord(name)) break;
    storages.emplace_back(name, record(bytes, name));
  }
  ASSERT_GE(storages.size(), 5u);
  std::mt19937 rng(42);
  int loaded = 0;
  for (int attempt = 0; attempt < 4000; ++attempt) {
    std::string p = pkl;
    int edits = 1 + static_cast<int>(rng() % 3);
    for (int k = 0; k < edits && !p.empty(); ++k) {
      size_t at = rng() % p.size();
      switch (rng() % 4) {
        case 0: p[at] = static_cast<char>(rng() & 0xFF); break;
        case 1: p.erase(at, 1 + rng() % 8); break;
        case 2: p.insert(at, 1, static_cast<char>(rng() & 0xFF)); break;
        case 3: p.resize(at); break;
      }
    }
    std::vector<std::pair<std::string, std::string>> records = {{"data.pkl", p}};
    records.insert(records.end(), storages.begin(), storages.end());
    std::string archive = make_archive(records);
    try {
      tt::io::load_pt_bytes(archive, "fuzz");
      ++loaded;
    } catch (const tt::FileError&) {
    } catch (const std::exception& e) {
      ADD_FAILURE() << "attempt " << attempt << ": unexpected exception " << e.what();
    }
  }
  // Some mutations (e.g. inside tensor data or string contents) still load; most must not.
  EXPECT_LT(loaded, 4000);
}

TEST(PtFileErrors, DeviceLocationsAndByteOrder) {
  std::string storage16(16, '\0');
  // A file saved from a GPU: loads with map_location; without one it needs that device.
  std::string gpu = make_archive({{"data.pkl", tensor_pickle("FloatStorage", "0", 4, 0, {4}, {1}, "cuda:0")},
                                  {"data/0", storage16}});
  at::Tensor t = tt::io::load_pt_bytes(gpu, "gpu.pt", tt::LoadOptions().map_location(torch::kCPU)).toTensor();
  EXPECT_TRUE(t.device().is_cpu());
  EXPECT_TRUE(torch::equal(t, torch::zeros({4})));
  if (!torch::cuda::is_available()) {
    std::string msg = file_error([&] { tt::io::load_pt_bytes(gpu, "gpu.pt"); });
    EXPECT_NE(msg.find("map_location"), std::string::npos) << msg;
  }
  std::string msg = load_error(tensor_pickle("FloatStorage", "0", 4, 0, {4}, {1}, "nowhere:7"), {{"data/0", storage16}});
  EXPECT_NE(msg.find("invalid location"), std::string::npos) << msg;

  std::string pkl = tensor_pickle("FloatStorage", "0", 4, 0, {4}, {1});
  EXPECT_NO_THROW(tt::io::load_pt_bytes(make_archive({{"data.pkl", pkl}, {"byteorder", "little"}, {"data/0", storage16}}), "le"));
  msg = load_error(pkl, {{"byteorder", "big"}, {"data/0", storage16}});
  EXPECT_NE(msg.find("byte order 'big'"), std::string::npos) << msg;
}

// ---- atomic saves ------------------------------------------------------------------------------

std::vector<std::string> list_dir(const std::string& dir) {
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  return names;
}

TEST(PtFileAtomic, SaveReplacesExistingFileAndLeavesNoTempFiles) {
  tt_test::TempDir dir;
  std::string path = dir.file("w.pt");
  tt_test::write_text(path, "old contents that are not a torch file");
  at::Tensor t = torch::randn({4, 4});
  tt::io::save_tensor(t, path);
  EXPECT_TRUE(torch::equal(tt::io::load_tensor(path), t));
  at::Tensor t2 = torch::randn({2});
  tt::io::save_tensor(t2, path);
  EXPECT_TRUE(torch::equal(tt::io::load_tensor(path), t2));
  EXPECT_EQ(list_dir(dir.path()), std::vector<std::string>{"w.pt"});
}

TEST(PtFileAtomic, CreatesParentDirectories) {
  tt_test::TempDir dir;
  std::string path = dir.file("a/b/c/w.pt");
  tt::io::save_tensor(torch::ones({2}), path);
  EXPECT_TRUE(torch::equal(tt::io::load_tensor(path), torch::ones({2})));
  EXPECT_EQ(list_dir(dir.file("a/b/c")), std::vector<std::string>{"w.pt"});
  tt::io::write_file_atomic(std::string("a\0b", 3), dir.file("x/raw.bin"));
  EXPECT_EQ(tt_test::read_text(dir.file("x/raw.bin")), std::string("a\0b", 3));
}

TEST(PtFileAtomic, FailureLeavesOldFileIntact) {
  tt_test::TempDir dir;
  std::string path = dir.file("w.pt");
  at::Tensor t = torch::randn({3});
  tt::io::save_tensor(t, path);
  const std::string before = tt_test::read_text(path);

  // A path "under" a regular file: the directory cannot exist.
  std::string under = dir.file("w.pt/inner.pt");
  std::string msg = file_error([&] { tt::io::save_tensor(torch::ones({2}), under); });
  EXPECT_NE(msg.find(under), std::string::npos) << msg;
  msg = file_error([&] { tt::io::write_file_atomic("x", dir.file("w.pt/sub/x.bin")); });
  EXPECT_NE(msg.find("w.pt/sub/x.bin"), std::string::npos) << msg;

  // The target is an existing directory.
  fs::create_directories(dir.file("adir"));
  msg = file_error([&] { tt::io::save_tensor(torch::ones({2}), dir.file("adir")); });
  EXPECT_NE(msg.find("adir"), std::string::npos) << msg;
  EXPECT_TRUE(fs::is_directory(dir.file("adir")));
  EXPECT_TRUE(fs::is_empty(dir.file("adir")));

  // An unsupported value fails before anything is written.
  msg = file_error([&] { tt::io::save_pt(torch::ones({2}, torch::kComplexDouble), path); });
  EXPECT_NE(msg.find(path), std::string::npos) << msg;

  EXPECT_EQ(tt_test::read_text(path), before);
  EXPECT_TRUE(torch::equal(tt::io::load_tensor(path), t));
  EXPECT_EQ(list_dir(dir.path()), (std::vector<std::string>{"adir", "w.pt"}));
}

}  // namespace
