// Tests for tracetorch/ssm/ssm.h (spec section 7): names, shapes, state_dict keys, the SSM state
// layout and dim handling, bit-exact parity with the spec's equations run by Python's torch and
// with the golden data, initialisation parity, compile no-op, state loading checks, BPTT and a
// float64 gradient check, architecture JSON, and a mixed SNN + GRU + S6 model resumed from saved
// states.
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
#include "tracetorch/snn/presets.h"
#include "tracetorch/ssm/ssm.h"

using json = tt::arch::json;  // ordered: key order is part of the format
using tt::io::TensorDict;

namespace {

// ---- helpers -------------------------------------------------------------------------------

// A layer from its Python type name and keyword arguments (through the arch registry).
torch::nn::AnyModule make_layer(const std::string& type, json args) {
  args["type"] = type;
  return tt::arch::default_registry().build_node(args, "test");
}

tt::Layer& as_layer(torch::nn::AnyModule& m) { return dynamic_cast<tt::Layer&>(*m.ptr()); }

using tt_test::run_steps;

std::vector<std::string> keys_of(const TensorDict& d) {
  std::vector<std::string> keys;
  for (const auto& item : d) keys.push_back(item.key());
  return keys;
}

using KeyShapes = std::vector<std::pair<std::string, std::vector<int64_t>>>;
KeyShapes key_shapes(const torch::nn::Module& m) {
  KeyShapes out;
  for (const auto& item : tt::state_dict(m)) out.emplace_back(item.key(), item.value().sizes().vec());
  return out;
}

// ---- construction, keys, shapes --------------------------------------------------------------

TEST(SsmLayers, StateDictKeysShapesAndOrder) {
  tt::ssm::S4 s4(5, 3);
  EXPECT_EQ(key_shapes(*s4), (KeyShapes{{"A_log", {5, 3}}, {"B", {5, 3}}, {"C", {5, 3}}, {"log_dt", {5}}, {"D", {5}}}));
  EXPECT_EQ(s4->type_name(), "ssm.S4");
  EXPECT_EQ(tt::ssm::S4(5)->d_state(), 64);

  tt::ssm::S5 s5(5, 3);
  EXPECT_EQ(key_shapes(*s5), (KeyShapes{{"A_log", {3}}, {"B", {5, 3}}, {"C", {3, 5}}, {"D", {5}}, {"log_dt", {1}}}));
  EXPECT_EQ(s5->state_names(), (std::vector<std::string>{"global_state"}));

  tt::ssm::S6 s6(40, 3);  // dt_rank = max(1, 40 / 16) = 2
  EXPECT_EQ(s6->dt_rank(), 2);
  EXPECT_EQ(key_shapes(*s6), (KeyShapes{{"A_log", {40, 3}},
                                        {"D", {40}},
                                        {"x_proj.weight", {8, 40}},
                                        {"dt_proj.weight", {40, 2}},
                                        {"dt_proj.bias", {40}}}));
  EXPECT_TRUE(torch::equal(s6->dt_proj->bias, torch::full({40}, -2.0)));
  EXPECT_TRUE(torch::equal(s6->D, torch::ones({40})));
  EXPECT_EQ(tt::ssm::S6(5)->dt_rank(), 1);
  EXPECT_EQ(tt::ssm::S6(tt::ssm::S6Options(5).dt_rank(3))->dt_rank(), 3);

  tt::ssm::Mamba mamba(5, 4);
  EXPECT_EQ(key_shapes(*mamba), (KeyShapes{{"conv_weights", {5, 4}},
                                           {"conv_bias", {5}},
                                           {"A_log", {5, 4}},
                                           {"D", {5}},
                                           {"in_proj.weight", {10, 5}},
                                           {"out_proj.weight", {5, 5}},
                                           {"ssm_proj.weight", {9, 5}},
                                           {"dt_proj.weight", {5, 1}},
                                           {"dt_proj.bias", {5}}}));
  EXPECT_TRUE(torch::allclose(mamba->conv_weights, torch::full({5, 4}, 0.25)));
  auto names = mamba->state_names();
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"conv_buffer", "ssm_state"}));

  tt::ssm::Mamba no_conv(tt::ssm::MambaOptions(5).d_state(4).conv_kernel(1));
  EXPECT_EQ(key_shapes(*no_conv).front().first, "A_log");
  EXPECT_EQ(no_conv->state_names(), (std::vector<std::string>{"ssm_state"}));
  EXPECT_EQ(no_conv->named_parameters().size(), 7u);

  // A_log = log(1 .. d) on every row.
  EXPECT_TRUE(torch::allclose(s4->A_log[2], torch::log(torch::tensor({1.0f, 2.0f, 3.0f}))));

  std::ostringstream text;
  text << *mamba;
  EXPECT_EQ(text.str().rfind("tt::ssm::Mamba(num_neurons=5, d_state=4, dt_rank=1, conv_kernel=4)(", 0), 0u) << text.str();
}

TEST(SsmLayers, StateShapesFollowTheSsmLayout) {
  for (int64_t dim : {-1, 1, -2, 2}) {
    SCOPED_TRACE(dim);
    std::vector<int64_t> shape = {2, 6, 7};
    const int64_t axis = dim < 0 ? dim + 3 : dim;
    shape[axis] = 5;
    const torch::Tensor x = torch::randn(shape);
    std::vector<int64_t> with_d = shape;
    with_d.push_back(3);

    tt::ssm::S6 s6(tt::ssm::S6Options(5).d_state(3).dim(dim));
    EXPECT_EQ(s6(x).sizes().vec(), shape);
    EXPECT_EQ(s6->state("state").sizes().vec(), with_d);

    tt::ssm::S4 s4(tt::ssm::S4Options(5).d_state(3).dim(dim));
    EXPECT_EQ(s4(x).sizes().vec(), shape);
    EXPECT_EQ(s4->state("state").sizes().vec(), with_d);

    tt::ssm::S5 s5(tt::ssm::S5Options(5).d_state(3).dim(dim));
    EXPECT_EQ(s5(x).sizes().vec(), shape);
    std::vector<int64_t> global = shape;
    global[axis] = 3;
    EXPECT_EQ(s5->state("global_state").sizes().vec(), global);

    tt::ssm::Mamba mamba(tt::ssm::MambaOptions(5).d_state(3).conv_kernel(2).dim(dim));
    EXPECT_EQ(mamba(x).sizes().vec(), shape);
    EXPECT_EQ(mamba->state("ssm_state").sizes().vec(), with_d);
    std::vector<int64_t> with_k = shape;
    with_k.push_back(2);
    EXPECT_EQ(mamba->state("conv_buffer").sizes().vec(), with_k);
  }
  // Rank-1 input (no batch axis).
  tt::ssm::S6 s6(5, 3);
  EXPECT_EQ(s6(torch::randn({5})).sizes().vec(), (std::vector<int64_t>{5}));
  EXPECT_EQ(s6->state("state").sizes().vec(), (std::vector<int64_t>{5, 3}));
}

TEST(SsmLayers, Errors) {
  EXPECT_THROW(tt::ssm::S4(0), tt::ValueError);
  EXPECT_THROW(tt::ssm::S4(3, 0), tt::ValueError);
  EXPECT_THROW(tt::ssm::S6(tt::ssm::S6Options(3).d_state(4).dt_rank(0)), tt::ValueError);
  EXPECT_THROW(tt::ssm::Mamba(tt::ssm::MambaOptions(3).dt_rank(-2)), tt::ValueError);
  // A wrong feature count and a changed batch size name the layer, the state and both shapes, in
  // every path (reference and fast).
  for (bool grad : {true, false}) {
    torch::AutoGradMode mode(grad);
    for (const auto& [type, args] : std::vector<std::pair<std::string, json>>{
             {"ssm.S4", {{"num_neurons", 5}, {"d_state", 3}}},
             {"ssm.S5", {{"num_neurons", 5}, {"d_state", 3}}},
             {"ssm.S6", {{"num_neurons", 5}, {"d_state", 3}}},
             {"ssm.Mamba", {{"num_neurons", 5}, {"d_state", 3}}}}) {
      SCOPED_TRACE(type + (grad ? " grad" : " no grad"));
      auto m = make_layer(type, args);
      try {
        m.forward(torch::zeros({2, 4}));
        ADD_FAILURE() << "no error for a wrong feature size";
      } catch (const tt::ValueError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(type + "(5)"), std::string::npos) << msg;
        EXPECT_NE(msg.find("expected 5 features"), std::string::npos) << msg;
        EXPECT_NE(msg.find("[2, 4]"), std::string::npos) << msg;
      }
      m.forward(torch::zeros({2, 5}));
      try {
        m.forward(torch::zeros({3, 5}));
        ADD_FAILURE() << "no error for a changed batch size";
      } catch (const tt::ValueError& e) {
        const std::string msg = e.what();
        EXPECT_NE(msg.find(type + "(5)"), std::string::npos) << msg;
        EXPECT_NE(msg.find("state '" + as_layer(m).state_names()[0] + "' has shape [2, "), std::string::npos) << msg;
        EXPECT_NE(msg.find("[3, 5]"), std::string::npos) << msg;
      }
      tt::zero_states(*m.ptr());
      EXPECT_EQ(m.forward(torch::zeros({3, 5})).sizes().vec(), (std::vector<int64_t>{3, 5}));
    }
  }
}

TEST(SsmLayers, CompileAndDecompileAreNoOps) {
  torch::manual_seed(0);
  tt::Sequential model(tt::ssm::S4(4, 3), tt::ssm::S5(4, 3), tt::ssm::S6(4, 3), tt::ssm::Mamba(4, 3));
  const TensorDict before = tt::state_dict(*model);
  torch::Tensor x = torch::randn({5, 2, 4});
  auto any = torch::nn::AnyModule(model);
  torch::Tensor eager = run_steps(any, x);
  tt::compile(*model);
  for (auto& [path, layer] : tt::named_layers(*model)) EXPECT_FALSE(layer->is_compiled()) << path;
  EXPECT_EQ(keys_of(before), keys_of(tt::state_dict(*model)));
  tt::zero_states(*model);
  EXPECT_TRUE(torch::equal(eager, run_steps(any, x)));
  tt::decompile(*model);
  const TensorDict after = tt::state_dict(*model);
  EXPECT_EQ(keys_of(before), keys_of(after));
  for (const auto& item : before) EXPECT_TRUE(torch::equal(item.value(), after[item.key()])) << item.key();
}

TEST(SsmLayers, LoadStatesChecksShapesOfUndefinedStates) {
  auto expect_rejected = [](torch::nn::Module& model, const std::string& key, torch::Tensor value) {
    TensorDict states;
    states.insert(key, std::move(value));
    EXPECT_THROW(tt::load_states(model, states, tt::LoadOptions().strict(false)), tt::LoadError) << key;
  };
  // S6 with dim = 1: state [B, N, W, d].
  tt::Sequential s6(tt::ssm::S6(tt::ssm::S6Options(5).d_state(3).dim(1)));
  TensorDict good;
  good.insert("0.state", torch::ones({2, 5, 7, 3}));
  tt::load_states(*s6, good);
  EXPECT_EQ(s6[0]->as<tt::ssm::S6Impl>()->state("state").sizes().vec(), (std::vector<int64_t>{2, 5, 7, 3}));
  tt::zero_states(*s6);
  expect_rejected(*s6, "0.state", torch::ones({2, 7, 5, 3}));  // features on the wrong axis
  expect_rejected(*s6, "0.state", torch::ones({2, 5, 7, 4}));  // wrong d_state
  expect_rejected(*s6, "0.state", torch::ones({5}));
  // dim = -1: the feature axis is -2 of the state.
  tt::Sequential last(tt::ssm::S4(5, 3));
  good = TensorDict();
  good.insert("0.state", torch::ones({5, 3}));
  tt::load_states(*last, good);
  tt::zero_states(*last);
  expect_rejected(*last, "0.state", torch::ones({2, 3, 5}));
  // S5: the feature axis holds d_state, no trailing axis.
  tt::Sequential s5(tt::ssm::S5(5, 3));
  good = TensorDict();
  good.insert("0.global_state", torch::ones({2, 3}));
  tt::load_states(*s5, good);
  tt::zero_states(*s5);
  expect_rejected(*s5, "0.global_state", torch::ones({2, 5}));
  // Mamba's conv buffer has the kernel size last.
  tt::Sequential mamba(tt::ssm::Mamba(tt::ssm::MambaOptions(5).d_state(3).conv_kernel(2)));
  good = TensorDict();
  good.insert("0.ssm_state", torch::ones({4, 5, 3}));
  good.insert("0.conv_buffer", torch::ones({4, 5, 2}));
  tt::load_states(*mamba, good);
  tt::zero_states(*mamba);
  expect_rejected(*mamba, "0.conv_buffer", torch::ones({4, 5, 3}));
}

// ---- training --------------------------------------------------------------------------------

const std::vector<std::pair<std::string, json>>& small_layers() {
  static const std::vector<std::pair<std::string, json>> layers = {
      {"ssm.S4", {{"num_neurons", 3}, {"d_state", 2}}},
      {"ssm.S5", {{"num_neurons", 3}, {"d_state", 2}}},
      {"ssm.S6", {{"num_neurons", 3}, {"d_state", 2}}},
      {"ssm.Mamba", {{"num_neurons", 3}, {"d_state", 2}, {"conv_kernel", 3}}},
      {"ssm.Mamba", {{"num_neurons", 3}, {"d_state", 2}, {"conv_kernel", 1}}},
  };
  return layers;
}

TEST(SsmTraining, BackpropThroughTimeReachesEveryParameter) {
  for (const auto& [type, args] : small_layers()) {
    SCOPED_TRACE(type + args.dump());
    torch::manual_seed(1);
    auto m = make_layer(type, args);
    torch::Tensor x = torch::randn({6, 2, 3});
    run_steps(m, x).pow(2).sum().backward();
    for (const auto& p : m.ptr()->named_parameters()) {
      ASSERT_TRUE(p.value().grad().defined()) << p.key();
      EXPECT_TRUE(torch::isfinite(p.value().grad()).all().item<bool>()) << p.key();
      EXPECT_GT(p.value().grad().abs().sum().item<double>(), 0.0) << p.key();
    }
    tt::detach_states(*m.ptr());
    for (const auto& name : as_layer(m).state_names()) EXPECT_FALSE(as_layer(m).state(name).requires_grad());
  }
}

using tt_test::gradient_check;

TEST(SsmTraining, Float64GradientCheck) {
  for (const auto& [type, args] : small_layers()) {
    SCOPED_TRACE(type + args.dump());
    torch::manual_seed(2);
    gradient_check(make_layer(type, args), {2, 3});
    json with_dim = args;
    with_dim["dim"] = 1;
    gradient_check(make_layer(type, with_dim), {2, 3, 2});
  }
}

// ---- parity with the spec's equations, run by Python's torch ----------------------------------

// The equations of spec section 7, op by op, in Python; outputs and final states per case.
const char* kPythonReference = R"PY(
import json, os, sys, torch
import torch.nn.functional as F
torch.set_num_threads(1)
root = ROOT
def selective(S, u, p, r, ds, W):
    dt_raw, B, C = torch.split(p, [r, ds, ds], -1)
    dt = F.softplus(F.linear(dt_raw, W["dt_proj.weight"], W["dt_proj.bias"])).unsqueeze(-1)
    A = -torch.exp(W["A_log"])
    A_bar = torch.exp(dt * A)
    B_bar = ((A_bar - 1) / (A + 1e-12)) * B.unsqueeze(-2)
    S = S * A_bar + B_bar * u.unsqueeze(-1)
    y = torch.sum(S * C.unsqueeze(-2), -1) + u * W["D"]
    return S, y
for name in json.load(open(os.path.join(root, "cases.json"))):
    d = os.path.join(root, name)
    case = json.load(open(os.path.join(d, "case.json")))
    W = torch.load(os.path.join(d, "weights.pt"))
    xs = torch.load(os.path.join(d, "inputs.pt"))
    kind, a = case["type"], case["args"]
    N = a["num_neurons"]
    ds = a.get("d_state", 64 if kind in ("ssm.S4", "ssm.S5") else 16)
    dim = a.get("dim", -1)
    sdim = dim if dim >= 0 else dim - 1
    r = a.get("dt_rank", -1)
    r = max(1, N // 16) if r == -1 else r
    K = a.get("conv_kernel", 4)
    st, outs = {}, []
    for x in xs:
        shape = list(x.shape); shape[dim] = N
        xw = x.movedim(dim, -1)
        if kind == "ssm.S5":
            if not st:
                g_shape = list(x.shape); g_shape[dim] = ds
                st["global_state"] = torch.zeros(g_shape)
            g = st["global_state"].movedim(dim, -1)
            dt = torch.exp(W["log_dt"])
            A = -torch.exp(W["A_log"])
            A_bar = torch.exp(dt * A)
            B_bar = (A_bar - 1) / A
            g = g * A_bar + B_bar * torch.matmul(xw, W["B"])
            y = torch.matmul(g, W["C"]) + xw * W["D"]
            st["global_state"] = g.movedim(-1, dim)
            outs.append(y.movedim(-1, dim))
            continue
        key = "ssm_state" if kind == "ssm.Mamba" else "state"
        if not st:
            st[key] = torch.zeros(shape + [ds])
            if kind == "ssm.Mamba" and K > 1: st["conv_buffer"] = torch.zeros(shape + [K])
        S = st[key].movedim(sdim, -2)
        if kind == "ssm.S4":
            dt = torch.exp(W["log_dt"]).unsqueeze(-1)
            A = -torch.exp(W["A_log"])
            A_bar = torch.exp(dt * A)
            B_bar = ((A_bar - 1) / A) * W["B"]
            S = S * A_bar + B_bar * xw.unsqueeze(-1)
            y = torch.sum(S * W["C"], -1) + xw * W["D"]
        elif kind == "ssm.S6":
            S, y = selective(S, xw, F.linear(xw, W["x_proj.weight"]), r, ds, W)
        else:
            main, gate = torch.chunk(F.linear(xw, W["in_proj.weight"]), 2, -1)
            if K > 1:
                buf = st["conv_buffer"].movedim(sdim, -2)
                buf = torch.cat([buf[..., 1:], main.unsqueeze(-1)], -1)
                u = torch.sum(buf * W["conv_weights"], -1) + W["conv_bias"]
                st["conv_buffer"] = buf.movedim(-2, sdim)
            else:
                u = main
            u = F.silu(u)
            S, y = selective(S, u, F.linear(u, W["ssm_proj.weight"]), r, ds, W)
            y = F.linear(y * F.silu(gate), W["out_proj.weight"])
            y = y + xw
        st[key] = S.movedim(-2, sdim)
        outs.append(y.movedim(-1, dim))
    torch.save(torch.stack(outs), os.path.join(d, "outputs.pt"))
    torch.save(st, os.path.join(d, "states.pt"))
print("ok")
)PY";

TEST(SsmParity, BitIdenticalToTheSpecEquationsInPython) {
  struct Case {
    std::string name, type;
    json args;
    std::vector<int64_t> step_shape;
  };
  const std::vector<Case> cases = {
      {"s4", "ssm.S4", {{"num_neurons", 5}, {"d_state", 4}}, {3, 5}},
      {"s4_dim1", "ssm.S4", {{"num_neurons", 5}, {"d_state", 4}, {"dim", 1}}, {2, 5, 3}},
      {"s4_default_d", "ssm.S4", {{"num_neurons", 3}}, {2, 3}},
      {"s5", "ssm.S5", {{"num_neurons", 5}, {"d_state", 4}}, {3, 5}},
      {"s5_dim-2", "ssm.S5", {{"num_neurons", 5}, {"d_state", 4}, {"dim", -2}}, {2, 5, 3}},
      {"s6", "ssm.S6", {{"num_neurons", 5}, {"d_state", 4}}, {3, 5}},
      {"s6_dim1", "ssm.S6", {{"num_neurons", 6}, {"d_state", 4}, {"dim", 1}}, {2, 6, 3}},
      {"s6_rank", "ssm.S6", {{"num_neurons", 33}, {"d_state", 8}, {"dt_rank", 3}}, {2, 33}},
      {"s6_rank1", "ssm.S6", {{"num_neurons", 5}}, {5}},
      {"mamba", "ssm.Mamba", {{"num_neurons", 5}, {"d_state", 4}}, {3, 5}},
      {"mamba_dim-2", "ssm.Mamba", {{"num_neurons", 5}, {"d_state", 4}, {"dim", -2}, {"conv_kernel", 3}}, {2, 5, 3}},
      {"mamba_dim0", "ssm.Mamba", {{"num_neurons", 5}, {"dim", 0}}, {5, 2}},
      {"mamba_noconv", "ssm.Mamba", {{"num_neurons", 20}, {"d_state", 4}, {"conv_kernel", 1}}, {3, 20}},
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
    // Move the parameters away from their structured initial values.
    {
      torch::NoGradGuard no_grad;
      for (auto& p : m.ptr()->parameters()) p.add_(torch::randn(p.sizes()).mul(0.2));
    }
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
  ASSERT_EQ(tt_test::run_python("ROOT = r'" + dir.path() + "'\n" + kPythonReference, &output), 0) << output;
  for (const auto& c : cases) {
    const std::string d = dir.file(c.name);
    torch::Tensor expected = tt::io::load_tensor(d + "/outputs.pt");
    EXPECT_TRUE(torch::equal(our_outputs[c.name], expected))
        << c.name << ": max abs diff " << (our_outputs[c.name] - expected).abs().max().item<double>();
    TensorDict states = tt::io::load_tensor_dict(d + "/states.pt");
    ASSERT_EQ(states.size(), our_states[c.name].size()) << c.name;
    for (const auto& item : states)
      EXPECT_TRUE(torch::equal(our_states[c.name][item.key()], item.value())) << c.name << " " << item.key();
  }
}

TEST(SsmParity, SeededInitialisationMatchesPython) {
  // Python: torch.manual_seed(s), then the draws of spec section 8 in its order.
  const char* code = R"PY(
import torch
from torch import nn
def log_arange(d): return torch.log(torch.arange(1, d + 1, dtype=torch.float32))
out = {}
torch.manual_seed(99)
N, d = 5, 3
out["s4.A_log"] = log_arange(d).repeat(N, 1)
out["s4.B"] = torch.randn(N, d); out["s4.C"] = torch.randn(N, d)
out["s4.log_dt"] = torch.randn(N); out["s4.D"] = torch.randn(N)
out["s5.A_log"] = log_arange(d)
out["s5.B"] = torch.randn(N, d); out["s5.C"] = torch.randn(d, N)
out["s5.D"] = torch.randn(N); out["s5.log_dt"] = torch.randn(1)
x_proj = nn.Linear(N, 1 + 2 * d, bias=False); dt_proj = nn.Linear(1, N)
out["s6.x_proj.weight"] = x_proj.weight; out["s6.dt_proj.weight"] = dt_proj.weight
out["s6.dt_proj.bias"] = torch.full((N,), -2.0)
out["s6.A_log"] = log_arange(d).repeat(N, 1); out["s6.D"] = torch.ones(N)
in_proj = nn.Linear(N, 2 * N, bias=False); out_proj = nn.Linear(N, N, bias=False)
ssm_proj = nn.Linear(N, 1 + 2 * d, bias=False); dt_proj = nn.Linear(1, N)
out["mamba.in_proj.weight"] = in_proj.weight; out["mamba.out_proj.weight"] = out_proj.weight
out["mamba.conv_weights"] = torch.full((N, 3), 1 / 3); out["mamba.conv_bias"] = torch.zeros(N)
out["mamba.ssm_proj.weight"] = ssm_proj.weight; out["mamba.dt_proj.weight"] = dt_proj.weight
out["mamba.dt_proj.bias"] = torch.full((N,), -2.0)
out["mamba.A_log"] = log_arange(d).repeat(N, 1); out["mamba.D"] = torch.ones(N)
out["after"] = torch.randn(4)
torch.save({k: v.detach() for k, v in out.items()}, PATH)
)PY";
  tt_test::TempDir dir;
  std::string output;
  ASSERT_EQ(tt_test::run_python("PATH = r'" + dir.file("init.pt") + "'\n" + code, &output), 0) << output;
  TensorDict expected = tt::io::load_tensor_dict(dir.file("init.pt"));

  torch::manual_seed(99);
  tt::ssm::S4 s4(5, 3);
  tt::ssm::S5 s5(5, 3);
  tt::ssm::S6 s6(5, 3);
  tt::ssm::Mamba mamba(tt::ssm::MambaOptions(5).d_state(3).conv_kernel(3));
  const torch::Tensor after = torch::randn({4});  // the generator advanced exactly as in Python
  std::map<std::string, torch::Tensor> ours = {{"after", after}};
  for (const auto& [prefix, module] : std::vector<std::pair<std::string, torch::nn::Module*>>{
           {"s4.", s4.get()}, {"s5.", s5.get()}, {"s6.", s6.get()}, {"mamba.", mamba.get()}})
    for (const auto& item : tt::state_dict(*module)) ours[prefix + item.key()] = item.value();
  ASSERT_EQ(ours.size(), expected.size());
  for (const auto& item : expected) EXPECT_TRUE(torch::equal(ours.at(item.key()), item.value())) << item.key();

  // reset_parameters redraws in the same order.
  torch::manual_seed(99);
  s4->reset_parameters();
  EXPECT_TRUE(torch::equal(s4->B, expected["s4.B"]));
  EXPECT_TRUE(torch::equal(s4->D, expected["s4.D"]));
}

// ---- golden data -----------------------------------------------------------------------------

json manifest_case(const std::string& name) {
  std::ifstream in(tt_test::shared_dir() + "/golden/manifest.json");
  const json manifest = json::parse(in);
  for (const auto& c : manifest.at("cases"))
    if (c.at("name") == name) return c;
  throw std::runtime_error("no golden case " + name);
}

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
  KeyShapes expected_keys = info.at("weights_keys");
  EXPECT_EQ(key_shapes(*model), expected_keys);
  std::ifstream arch_in(dir + "/arch.json");
  EXPECT_EQ(tt::arch::to_json(*model), json::parse(arch_in));

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

  // Compiling changes nothing for these layers.
  tt::compile(*fresh);
  EXPECT_EQ(keys_of(tt::state_dict(*fresh)), keys_of(tt::io::load_tensor_dict(dir + "/weights_compiled.pt")));
  tt::zero_states(*fresh);
  EXPECT_TRUE(torch::equal(run_steps(fresh_any, inputs), tt::io::load_tensor(dir + "/outputs_compiled.pt")));
}

TEST(SsmGolden, S4) { golden_case("ssm_S4"); }
TEST(SsmGolden, S5) { golden_case("ssm_S5"); }
TEST(SsmGolden, S6) { golden_case("ssm_S6"); }
TEST(SsmGolden, Mamba) { golden_case("ssm_Mamba"); }

// ---- architecture JSON -----------------------------------------------------------------------

TEST(SsmArch, RoundTripAndUnknownArguments) {
  const json doc = json::parse(R"({"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
      {"type": "ssm.S4", "num_neurons": 4},
      {"type": "ssm.S5", "num_neurons": 4, "d_state": 8, "dim": -1},
      {"type": "ssm.S6", "num_neurons": 4, "d_state": 3, "dt_rank": 2},
      {"type": "ssm.Mamba", "num_neurons": 4, "d_state": 2, "dim": 1, "dt_rank": -1, "conv_kernel": 2}]}})");
  tt::Sequential model = tt::arch::build(doc);
  EXPECT_EQ(tt::arch::to_json(*model), doc);
  EXPECT_EQ(model[0]->as<tt::ssm::S4Impl>()->d_state(), 64);
  EXPECT_EQ(model[2]->as<tt::ssm::S6Impl>()->dt_rank(), 2);
  EXPECT_EQ(model[3]->as<tt::ssm::MambaImpl>()->dim(), 1);
  EXPECT_EQ(model[3]->as<tt::ssm::MambaImpl>()->options().conv_kernel(), 2);

  // Built in C++: only the arguments that were set are written; the short constructor's d_state
  // counts when it is not the default.
  tt::Sequential built(tt::ssm::S6(tt::ssm::S6Options(4).dt_rank(2)), tt::ssm::Mamba(tt::ssm::MambaOptions(4).conv_kernel(3)),
                       tt::ssm::S4(4, 64), tt::ssm::S5(4, 8));
  EXPECT_EQ(tt::arch::to_json(*built)["model"]["children"],
            json::parse(R"([{"type": "ssm.S6", "num_neurons": 4, "dt_rank": 2},
                            {"type": "ssm.Mamba", "num_neurons": 4, "conv_kernel": 3},
                            {"type": "ssm.S4", "num_neurons": 4},
                            {"type": "ssm.S5", "num_neurons": 4, "d_state": 8}])"));

  json unknown = doc;
  unknown["model"]["children"][2]["kernel"] = 3;
  try {
    tt::arch::build(unknown);
    ADD_FAILURE() << "unknown argument accepted";
  } catch (const tt::ArchError& e) {
    EXPECT_NE(std::string(e.what()).find("kernel"), std::string::npos) << e.what();
  }
  json bad = doc;
  bad["model"]["children"][1]["d_state"] = 0;
  EXPECT_THROW(tt::arch::build(bad), tt::ArchError);
  bad = doc;
  bad["model"]["children"][0]["d_state"] = "8";
  EXPECT_THROW(tt::arch::build(bad), tt::ArchError);
}

// ---- a mixed model ---------------------------------------------------------------------------

tt::Sequential mixed_model() {
  return tt::Sequential(torch::nn::Linear(3, 6), tt::snn::LIB(6), tt::rnn::GRU(6, 5), tt::ssm::S6(5, 4),
                        tt::ssm::Mamba(tt::ssm::MambaOptions(5).d_state(2).conv_kernel(3)));
}

TEST(MixedModel, SaveStatesMidSequenceAndResumeInAFreshModel) {
  torch::manual_seed(5);
  tt::Sequential model = mixed_model();
  const torch::Tensor inputs = torch::randn({10, 2, 3});
  auto any = torch::nn::AnyModule(model);
  run_steps(any, inputs, 0, 5);
  const TensorDict states = tt::save_states(*model);
  EXPECT_EQ(keys_of(states), (std::vector<std::string>{"1.mem", "2.H", "3.state", "4.ssm_state", "4.conv_buffer"}));
  tt_test::TempDir dir;
  tt::save_states(*model, dir.file("states.pt"));
  const torch::Tensor expected = run_steps(any, inputs, 5);

  torch::manual_seed(6);  // different initial weights, replaced below
  tt::Sequential fresh = mixed_model();
  tt::load_state_dict(*fresh, tt::state_dict(*model));
  tt::load_states(*fresh, dir.file("states.pt"));
  auto fresh_any = torch::nn::AnyModule(fresh);
  EXPECT_TRUE(torch::equal(run_steps(fresh_any, inputs, 5), expected));

  // The in-memory dict works the same.
  tt::Sequential again = mixed_model();
  tt::load_state_dict(*again, tt::state_dict(*model));
  tt::load_states(*again, states);
  auto again_any = torch::nn::AnyModule(again);
  EXPECT_TRUE(torch::equal(run_steps(again_any, inputs, 5), expected));

  // The architecture round trip rebuilds the same structure.
  tt::Sequential rebuilt = tt::arch::build(tt::arch::to_json(*model));
  EXPECT_EQ(key_shapes(*rebuilt), key_shapes(*model));
}

}  // namespace
