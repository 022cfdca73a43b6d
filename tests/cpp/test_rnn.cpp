// Tests for tracetorch/rnn/rnn.h (spec section 6): names, shapes, state_dict keys, dim handling,
// bit-exact parity with the spec's equations run by Python's torch and with the golden data,
// initialisation parity, compile no-op, state loading checks, BPTT and a float64 gradient check,
// architecture JSON.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <map>

#include "test_support.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/model.h"
#include "tracetorch/core/sequence.h"
#include "tracetorch/core/sequential.h"
#include "tracetorch/core/arch.h"
#include "tracetorch/io/pt_file.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/rnn/rnn.h"

using json = tt::arch::json;  // ordered: key order is part of the format
using tt::io::TensorDict;

namespace {

// ---- helpers -------------------------------------------------------------------------------

// A layer from its Python type name and keyword arguments.
torch::nn::AnyModule make_layer(const std::string& type, const json& args) {
  tt::rnn::RNNOptions o(args.at("in_features").get<int64_t>(), args.at("out_features").get<int64_t>());
  if (args.contains("dim")) o.dim(args.at("dim").get<int64_t>());
  if (type == "rnn.SimpleRNN") return torch::nn::AnyModule(tt::rnn::SimpleRNN(o));
  if (type == "rnn.GRU") return torch::nn::AnyModule(tt::rnn::GRU(o));
  if (type == "rnn.LSTM") return torch::nn::AnyModule(tt::rnn::LSTM(o));
  throw std::runtime_error("unknown type " + type);
}

tt::Layer& as_layer(torch::nn::AnyModule& m) { return dynamic_cast<tt::Layer&>(*m.ptr()); }

using tt_test::run_steps;

std::vector<std::string> keys_of(const TensorDict& d) {
  std::vector<std::string> keys;
  for (const auto& item : d) keys.push_back(item.key());
  return keys;
}

std::vector<int64_t> shape_of(const torch::Tensor& t) { return t.sizes().vec(); }

// ---- construction, keys, shapes --------------------------------------------------------------

TEST(RnnLayers, StateDictKeysShapesAndOrder) {
  tt::rnn::SimpleRNN simple(3, 5);
  auto sd = tt::state_dict(*simple);
  EXPECT_EQ(keys_of(sd), (std::vector<std::string>{"lin.weight", "lin.bias"}));
  EXPECT_EQ(shape_of(sd["lin.weight"]), (std::vector<int64_t>{5, 8}));
  EXPECT_EQ(shape_of(sd["lin.bias"]), (std::vector<int64_t>{5}));
  EXPECT_EQ(simple->type_name(), "rnn.SimpleRNN");
  EXPECT_EQ(simple->state_names(), (std::vector<std::string>{"H"}));

  tt::rnn::GRU gru(3, 5);
  sd = tt::state_dict(*gru);
  EXPECT_EQ(keys_of(sd), (std::vector<std::string>{"gate_layers.weight", "gate_layers.bias", "candidate_layer.weight",
                                                   "candidate_layer.bias"}));
  EXPECT_EQ(shape_of(sd["gate_layers.weight"]), (std::vector<int64_t>{10, 8}));
  EXPECT_EQ(shape_of(sd["candidate_layer.weight"]), (std::vector<int64_t>{5, 8}));
  EXPECT_EQ(gru->type_name(), "rnn.GRU");

  tt::rnn::LSTM lstm(tt::rnn::LSTMOptions(3, 5).dim(1));
  sd = tt::state_dict(*lstm);
  EXPECT_EQ(keys_of(sd), (std::vector<std::string>{"gate_layers.weight", "gate_layers.bias"}));
  EXPECT_EQ(shape_of(sd["gate_layers.weight"]), (std::vector<int64_t>{20, 8}));
  EXPECT_EQ(lstm->type_name(), "rnn.LSTM");
  EXPECT_EQ(lstm->dim(), 1);
  auto names = lstm->state_names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"C", "H"}));

  std::ostringstream text;
  text << *lstm;
  EXPECT_EQ(text.str().rfind("tt::rnn::LSTM(in_features=3, out_features=5, dim=1)(", 0), 0u) << text.str();
}

TEST(RnnLayers, StatesAreLazyShapedAndTheOutputIsH) {
  for (int64_t dim : {-1, 2, 1, -2}) {
    tt::rnn::LSTM lstm(tt::rnn::LSTMOptions(3, 4).dim(dim));
    lstm->to(torch::kFloat64);
    EXPECT_FALSE(lstm->state("H").defined());
    // Features at `dim` of a [2, ., ., .] input.
    std::vector<int64_t> shape = {2, 6, 7};
    const int64_t axis = dim < 0 ? dim + 3 : dim;
    shape[axis] = 3;
    torch::Tensor x = torch::randn(shape, torch::kFloat64);
    torch::Tensor y = lstm(x);
    shape[axis] = 4;
    EXPECT_EQ(shape_of(y), shape) << "dim " << dim;
    EXPECT_EQ(shape_of(lstm->state("C")), shape);
    EXPECT_EQ(lstm->state("C").scalar_type(), torch::kFloat64);  // states take the input's dtype
    EXPECT_TRUE(y.is_same(lstm->state("H")));     // the output is the state itself (Quirk Q16)
  }
}

TEST(RnnLayers, DimMovesTheFeatureAxis) {
  // dim = 1 on [B, F, W] computes the same as dim = -1 on [B, W, F].
  torch::manual_seed(3);
  tt::rnn::GRU last(4, 3);
  tt::rnn::GRU mid(tt::rnn::GRUOptions(4, 3).dim(1));
  tt::load_state_dict(*mid, tt::state_dict(*last));
  for (int t = 0; t < 4; ++t) {
    torch::Tensor x = torch::randn({2, 5, 4});
    torch::Tensor a = last(x);
    torch::Tensor b = mid(x.transpose(1, 2));
    EXPECT_TRUE(torch::allclose(a, b.transpose(1, 2), 1e-6, 1e-6));
  }
}

TEST(RnnLayers, Errors) {
  EXPECT_THROW(tt::rnn::GRU(0, 3), tt::ValueError);
  EXPECT_THROW(tt::rnn::GRU(3, 0), tt::ValueError);
  tt::rnn::SimpleRNN far(tt::rnn::SimpleRNNOptions(3, 2).dim(4));
  EXPECT_THROW(far(torch::zeros({2, 3})), tt::ValueError);
  // A wrong feature count and a changed batch size name the layer, the state and both shapes, in
  // every path (reference and fast).
  for (bool grad : {true, false}) {
    torch::AutoGradMode mode(grad);
    for (const std::string type : {"rnn.SimpleRNN", "rnn.GRU", "rnn.LSTM"}) {
      SCOPED_TRACE(type + (grad ? " grad" : " no grad"));
      auto m = make_layer(type, {{"in_features", 3}, {"out_features", 2}});
      try {
        m.forward(torch::zeros({2, 4}));
        ADD_FAILURE() << "no error for a wrong feature size";
      } catch (const tt::ValueError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(type + "(2)"), std::string::npos) << msg;
        EXPECT_NE(msg.find("expected 3 features"), std::string::npos) << msg;
        EXPECT_NE(msg.find("[2, 4]"), std::string::npos) << msg;
      }
      m.forward(torch::zeros({2, 3}));
      try {
        m.forward(torch::zeros({1, 3}));  // Python would broadcast (Quirk Q14)
        ADD_FAILURE() << "no error for a changed batch size";
      } catch (const tt::ValueError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find("has shape [2, 2]"), std::string::npos) << msg;
        EXPECT_NE(msg.find("[1, 3]"), std::string::npos) << msg;
        EXPECT_NE(msg.find("zero_states"), std::string::npos) << msg;
      }
      tt::zero_states(*m.ptr());
      EXPECT_EQ(shape_of(m.forward(torch::zeros({1, 3}))), (std::vector<int64_t>{1, 2}));
    }
  }
}

TEST(RnnLayers, CompileAndDecompileAreNoOps) {
  torch::manual_seed(0);
  tt::Sequential model(tt::rnn::SimpleRNN(3, 4), tt::rnn::GRU(4, 4), tt::rnn::LSTM(4, 2));
  const TensorDict before = tt::state_dict(*model);
  torch::Tensor x = torch::randn({5, 2, 3});
  auto any = torch::nn::AnyModule(model);
  torch::Tensor eager = run_steps(any, x);
  tt::compile(*model);
  for (auto& [path, layer] : tt::named_layers(*model)) EXPECT_FALSE(layer->is_compiled()) << path;
  const TensorDict after = tt::state_dict(*model);
  EXPECT_EQ(keys_of(before), keys_of(after));
  tt::zero_states(*model);
  EXPECT_TRUE(torch::equal(eager, run_steps(any, x)));
  tt::decompile(*model);
  EXPECT_EQ(keys_of(before), keys_of(tt::state_dict(*model)));
  for (const auto& item : before) EXPECT_TRUE(torch::equal(item.value(), after[item.key()]));
  for (const auto& p : model->parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(RnnLayers, LoadStatesChecksShapesOfUndefinedStates) {
  tt::Sequential model(tt::rnn::LSTM(tt::rnn::LSTMOptions(3, 4).dim(1)));
  TensorDict good;
  good.insert("0.H", torch::ones({2, 4, 5}));
  good.insert("0.C", torch::ones({2, 4, 5}));
  tt::load_states(*model, good);
  EXPECT_TRUE(torch::equal(model[0]->as<tt::rnn::LSTMImpl>()->state("C"), torch::ones({2, 4, 5})));

  tt::zero_states(*model);
  TensorDict bad;
  bad.insert("0.H", torch::ones({2, 5, 4}));  // out_features on the wrong axis
  bad.insert("0.C", torch::ones({2, 4, 5}));
  try {
    tt::load_states(*model, bad);
    ADD_FAILURE() << "no error";
  } catch (const tt::LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("0.H"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(model[0]->as<tt::rnn::LSTMImpl>()->state("C").defined());  // nothing changed
}

// ---- training --------------------------------------------------------------------------------

TEST(RnnTraining, BackpropThroughTimeReachesEveryParameter) {
  for (const std::string type : {"rnn.SimpleRNN", "rnn.GRU", "rnn.LSTM"}) {
    torch::manual_seed(1);
    auto m = make_layer(type, {{"in_features", 3}, {"out_features", 4}});
    torch::Tensor x = torch::randn({6, 2, 3});
    torch::Tensor loss = run_steps(m, x).pow(2).sum();
    loss.backward();
    for (const auto& p : m.ptr()->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << type << " " << p.key();
      EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << type << " " << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << type << " " << p.key();
    }
    // detach_states cuts the graph: the next step's graph starts at the detached state.
    tt::detach_states(*m.ptr());
    EXPECT_FALSE(as_layer(m).state("H").requires_grad());
  }
}

using tt_test::gradient_check;

TEST(RnnTraining, Float64GradientCheck) {
  for (const std::string type : {"rnn.SimpleRNN", "rnn.GRU", "rnn.LSTM"}) {
    SCOPED_TRACE(type);
    torch::manual_seed(2);
    gradient_check(make_layer(type, {{"in_features", 2}, {"out_features", 3}}), {2, 2});
    gradient_check(make_layer(type, {{"in_features", 2}, {"out_features", 3}, {"dim", 1}}), {2, 2, 2});
  }
}

// ---- parity with the spec's equations, run by Python's torch ----------------------------------

// The equations of spec section 6, op by op, in Python; outputs and final states per case.
const char* kPythonReference = R"PY(
import json, os, sys, torch
import torch.nn.functional as F
torch.set_num_threads(1)
root = ROOT
for name in json.load(open(os.path.join(root, "cases.json"))):
    d = os.path.join(root, name)
    case = json.load(open(os.path.join(d, "case.json")))
    W = torch.load(os.path.join(d, "weights.pt"))
    xs = torch.load(os.path.join(d, "inputs.pt"))
    kind, a = case["type"], case["args"]
    dim = a.get("dim", -1)
    out_f = a["out_features"]
    st, outs = {}, []
    for x in xs:
        shape = list(x.shape); shape[dim] = out_f
        if not st:
            st["H"] = torch.zeros(shape)
            if kind == "rnn.LSTM": st["C"] = torch.zeros(shape)
        xw = x.movedim(dim, -1)
        H = st["H"].movedim(dim, -1)
        if kind == "rnn.SimpleRNN":
            H = torch.tanh(F.linear(torch.cat([H, xw], -1), W["lin.weight"], W["lin.bias"]))
        elif kind == "rnn.GRU":
            g = torch.sigmoid(F.linear(torch.cat([H, xw], -1), W["gate_layers.weight"], W["gate_layers.bias"]))
            r, z = g.chunk(2, -1)
            c = torch.tanh(F.linear(torch.cat([H * r, xw], -1), W["candidate_layer.weight"], W["candidate_layer.bias"]))
            H = H * (1 - z) + z * c
        else:
            C = st["C"].movedim(dim, -1)
            i, f, o, g = F.linear(torch.cat([H, xw], -1), W["gate_layers.weight"], W["gate_layers.bias"]).chunk(4, -1)
            C = torch.sigmoid(f) * C + torch.sigmoid(i) * torch.tanh(g)
            H = torch.sigmoid(o) * torch.tanh(C)
            st["C"] = C.movedim(-1, dim)
        st["H"] = H.movedim(-1, dim)
        outs.append(st["H"])
    torch.save(torch.stack(outs), os.path.join(d, "outputs.pt"))
    torch.save(st, os.path.join(d, "states.pt"))
print("ok")
)PY";

TEST(RnnParity, BitIdenticalToTheSpecEquationsInPython) {
  struct Case {
    std::string name, type;
    json args;
    std::vector<int64_t> step_shape;
  };
  const std::vector<Case> cases = {
      {"simple", "rnn.SimpleRNN", {{"in_features", 3}, {"out_features", 5}}, {4, 3}},
      {"simple_dim1", "rnn.SimpleRNN", {{"in_features", 3}, {"out_features", 5}, {"dim", 1}}, {2, 3, 6}},
      {"simple_rank1", "rnn.SimpleRNN", {{"in_features", 3}, {"out_features", 5}}, {3}},
      {"gru", "rnn.GRU", {{"in_features", 4}, {"out_features", 7}}, {3, 4}},
      {"gru_dim-2", "rnn.GRU", {{"in_features", 4}, {"out_features", 7}, {"dim", -2}}, {2, 4, 5}},
      {"gru_dim0", "rnn.GRU", {{"in_features", 4}, {"out_features", 7}, {"dim", 0}}, {4, 3}},
      {"lstm", "rnn.LSTM", {{"in_features", 4}, {"out_features", 6}}, {3, 4}},
      {"lstm_dim1", "rnn.LSTM", {{"in_features", 4}, {"out_features", 6}, {"dim", 1}}, {2, 4, 3, 2}},
  };
  tt_test::TempDir dir;
  json names = json::array();
  std::map<std::string, torch::Tensor> our_outputs;
  std::map<std::string, TensorDict> our_states;
  torch::manual_seed(11);
  for (const auto& c : cases) {
    const std::string d = dir.file(c.name);
    std::filesystem::create_directories(d);
    names.push_back(c.name);
    tt_test::write_text(d + "/case.json", json{{"type", c.type}, {"args", c.args}}.dump());
    auto m = make_layer(c.type, c.args);
    std::vector<int64_t> shape = {6};
    shape.insert(shape.end(), c.step_shape.begin(), c.step_shape.end());
    torch::Tensor inputs = torch::randn(shape);
    tt::io::save_tensor(inputs, d + "/inputs.pt");
    tt::save_state_dict(*m.ptr(), d + "/weights.pt");
    our_outputs[c.name] = run_steps(m, inputs);
    our_states[c.name] = tt::save_states(*m.ptr());
  }
  tt_test::write_text(dir.file("cases.json"), names.dump());
  std::string output;
  const std::string code = "ROOT = r'" + dir.path() + "'\n" + kPythonReference;
  ASSERT_EQ(tt_test::run_python(code, &output), 0) << output;
  for (const auto& c : cases) {
    const std::string d = dir.file(c.name);
    torch::Tensor expected = tt::io::load_tensor(d + "/outputs.pt");
    EXPECT_TRUE(torch::equal(our_outputs[c.name], expected)) << c.name;
    TensorDict states = tt::io::load_tensor_dict(d + "/states.pt");
    ASSERT_EQ(states.size(), our_states[c.name].size()) << c.name;
    for (const auto& item : states)
      EXPECT_TRUE(torch::equal(our_states[c.name][item.key()], item.value())) << c.name << " " << item.key();
  }
}

TEST(RnnParity, SeededInitialisationMatchesPython) {
  // Python: torch.manual_seed(s) then nn.Linear draws in the spec's order (section 8).
  const char* code = R"PY(
import torch, sys
from torch import nn
out = {}
torch.manual_seed(1234)
lin = nn.Linear(3 + 5, 5); out["simple.lin.weight"] = lin.weight; out["simple.lin.bias"] = lin.bias
g = nn.Linear(3 + 5, 10); c = nn.Linear(3 + 5, 5)
out["gru.gate_layers.weight"] = g.weight; out["gru.gate_layers.bias"] = g.bias
out["gru.candidate_layer.weight"] = c.weight; out["gru.candidate_layer.bias"] = c.bias
l = nn.Linear(3 + 5, 20); out["lstm.gate_layers.weight"] = l.weight; out["lstm.gate_layers.bias"] = l.bias
torch.save({k: v.detach() for k, v in out.items()}, PATH)
)PY";
  tt_test::TempDir dir;
  std::string output;
  ASSERT_EQ(tt_test::run_python("PATH = r'" + dir.file("init.pt") + "'\n" + code, &output), 0) << output;
  TensorDict expected = tt::io::load_tensor_dict(dir.file("init.pt"));
  torch::manual_seed(1234);
  tt::rnn::SimpleRNN simple(3, 5);
  tt::rnn::GRU gru(3, 5);
  tt::rnn::LSTM lstm(3, 5);
  std::map<std::string, torch::Tensor> ours;
  for (const auto& [prefix, module] : std::vector<std::pair<std::string, torch::nn::Module*>>{
           {"simple.", simple.get()}, {"gru.", gru.get()}, {"lstm.", lstm.get()}})
    for (const auto& item : tt::state_dict(*module)) ours[prefix + item.key()] = item.value();
  ASSERT_EQ(ours.size(), expected.size());
  for (const auto& item : expected) EXPECT_TRUE(torch::equal(ours.at(item.key()), item.value())) << item.key();

  // reset_parameters redraws in the same order.
  torch::manual_seed(1234);
  simple->reset_parameters();
  EXPECT_TRUE(torch::equal(simple->lin->weight, expected["simple.lin.weight"]));
}

// ---- golden data -----------------------------------------------------------------------------

json manifest_case(const std::string& name) {
  std::ifstream in(tt_test::shared_dir() + "/golden/manifest.json");
  const json manifest = json::parse(in);
  for (const auto& c : manifest.at("cases"))
    if (c.at("name") == name) return c;
  throw std::runtime_error("no golden case " + name);
}

// Compares canonical state keys of a Python states file with ours.
void expect_states(const TensorDict& ours, const std::string& path, const std::vector<std::string>& canonical) {
  TensorDict theirs = tt::io::load_tensor_dict(path);
  EXPECT_EQ(ours.size(), canonical.size()) << path;
  for (const auto& key : canonical) {
    ASSERT_TRUE(ours.contains(key)) << key;
    EXPECT_TRUE(torch::equal(ours[key], theirs[key])) << path << " " << key;
  }
}

void golden_case(const std::string& name) {
  SCOPED_TRACE(name);
  const std::string dir = tt_test::shared_dir() + "/golden/cases/" + name;
  const json info = manifest_case(name);
  const double atol = info.at("tolerance").at("atol"), rtol = info.at("tolerance").at("rtol");
  const int64_t split = info.at("split_step");
  std::vector<std::string> canonical = info.at("state_keys_canonical");

  tt::Sequential model = tt::arch::load(dir + "/arch.json");
  tt::load_state_dict(*model, dir + "/weights.pt");
  std::vector<std::pair<std::string, std::vector<int64_t>>> keys;
  for (const auto& item : tt::state_dict(*model)) keys.emplace_back(item.key(), item.value().sizes().vec());
  std::vector<std::pair<std::string, std::vector<int64_t>>> expected_keys = info.at("weights_keys");
  EXPECT_EQ(keys, expected_keys);

  const torch::Tensor inputs = tt::io::load_tensor(dir + "/inputs.pt");
  const torch::Tensor outputs = tt::io::load_tensor(dir + "/outputs.pt");
  auto any = torch::nn::AnyModule(model);
  torch::Tensor first = run_steps(any, inputs, 0, split);
  expect_states(tt::save_states(*model), dir + "/states_mid.pt", canonical);
  torch::Tensor second = run_steps(any, inputs, split);
  expect_states(tt::save_states(*model), dir + "/states_final.pt", canonical);
  torch::Tensor all = torch::cat({first, second});
  EXPECT_TRUE(torch::allclose(all, outputs, rtol, atol));
  EXPECT_TRUE(torch::equal(all, outputs)) << "max abs diff " << (all - outputs).abs().max().item<double>();

  // The fast path (autograd off) within the manifest's tolerances, also resumed from the
  // mid-sequence states, and the sequence forward over both halves.
  {
    torch::NoGradGuard no_grad;
    tt::zero_states(*model);
    torch::Tensor fast_first = run_steps(any, inputs, 0, split);
    tt::zero_states(*model);
    tt::load_states(*model, dir + "/states_mid.pt");
    torch::Tensor fast_second = run_steps(any, inputs, split);
    EXPECT_TRUE(torch::allclose(torch::cat({fast_first, fast_second}), outputs, rtol, atol));
    tt::zero_states(*model);
    torch::Tensor seq_first = tt::forward_sequence(*model, inputs.slice(0, 0, split));
    torch::Tensor seq_second = tt::forward_sequence(*model, inputs.slice(0, split));
    EXPECT_TRUE(torch::allclose(torch::cat({seq_first, seq_second}), outputs, rtol, atol));
  }

  // Resume from Python's mid-sequence states (alias keys included) in a fresh model.
  tt::Sequential fresh = tt::arch::load(dir + "/arch.json");
  tt::load_state_dict(*fresh, dir + "/weights.pt");
  tt::load_states(*fresh, dir + "/states_mid.pt");
  auto fresh_any = torch::nn::AnyModule(fresh);
  EXPECT_TRUE(torch::equal(run_steps(fresh_any, inputs, split), outputs.slice(0, split)));

  // Compiling changes nothing for these layers (weights_compiled.pt has the same keys).
  tt::compile(*fresh);
  TensorDict compiled = tt::io::load_tensor_dict(dir + "/weights_compiled.pt");
  EXPECT_EQ(keys_of(tt::state_dict(*fresh)), keys_of(compiled));
  tt::zero_states(*fresh);
  EXPECT_TRUE(torch::equal(run_steps(fresh_any, inputs), tt::io::load_tensor(dir + "/outputs_compiled.pt")));
}

TEST(RnnGolden, GRU) { golden_case("rnn_GRU"); }
TEST(RnnGolden, LSTMDim1) { golden_case("rnn_LSTM_dim1"); }
TEST(RnnGolden, SimpleRNNBatch1) { golden_case("rnn_SimpleRNN_b1"); }

// ---- architecture JSON -----------------------------------------------------------------------

TEST(RnnArch, RoundTripAndUnknownArguments) {
  const json doc = json::parse(R"({"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
      {"type": "rnn.SimpleRNN", "in_features": 3, "out_features": 4},
      {"type": "rnn.GRU", "in_features": 4, "out_features": 5, "dim": -1},
      {"type": "rnn.LSTM", "in_features": 5, "out_features": 2, "dim": 1}]}})");
  tt::Sequential model = tt::arch::build(doc);
  EXPECT_EQ(tt::arch::to_json(*model), doc);
  EXPECT_EQ(model[2]->as<tt::rnn::LSTMImpl>()->dim(), 1);
  EXPECT_EQ(model[1]->as<tt::rnn::GRUImpl>()->options().out_features(), 5);

  json unknown = doc;
  unknown["model"]["children"][1]["hidden"] = 3;
  try {
    tt::arch::build(unknown);
    ADD_FAILURE() << "unknown argument accepted";
  } catch (const tt::ArchError& e) {
    EXPECT_NE(std::string(e.what()).find("hidden"), std::string::npos) << e.what();
  }
  json missing = doc;
  missing["model"]["children"][0].erase("out_features");
  EXPECT_THROW(tt::arch::build(missing), tt::ArchError);
}

}  // namespace
