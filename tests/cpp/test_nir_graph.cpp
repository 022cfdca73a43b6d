// tt::nir::Graph (nir/graph.h): execution order and one-step recurrent edges, nested graphs,
// states managed like every model's (zero, save / load, clone, named_layers), inputs with and
// without a batch axis, and graphs that cannot run refused with the node named.
#include <gtest/gtest.h>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

using tt::io::make_nir_node;
using tt::io::NirGraph;
using tt::io::NirNode;

NirNode io(const std::string& name, const std::string& type, std::vector<int64_t> shape) {
  return make_nir_node(name, type).set("shape", torch::tensor(shape, torch::kInt64));
}
NirNode scale(const std::string& name, torch::Tensor s) { return make_nir_node(name, "Scale").set("scale", s); }

// y_t = a_t, a_t = x_t + b_{t-1}, b_t = 0.5 a_t: a cycle a -> b -> a closed by a recurrent edge.
NirGraph feedback_graph() {
  NirGraph g;
  g.type = "NIRGraph";
  g.add_node(io("in", "Input", {2}));
  g.add_node(scale("a", torch::ones({2})));
  g.add_node(scale("b", torch::full({2}, 0.5)));
  g.add_node(io("out", "Output", {2}));
  g.add_edge("in", "a").add_edge("a", "b").add_edge("b", "a").add_edge("a", "out");
  return g;
}

TEST(NirGraph, RecurrentEdgesCarryThePreviousStep) {
  tt::nir::Graph net = tt::nir::import_graph(feedback_graph(), tt::nir::ImportOptions(1e-3));
  EXPECT_EQ(net->execution_order(), (std::vector<std::string>{"in", "a", "out", "b"}));
  EXPECT_EQ(net->recurrent_edges(), (std::vector<std::pair<std::string, std::string>>{{"b", "a"}}));
  EXPECT_EQ(net->state_names(), std::vector<std::string>{"b.output"});
  const torch::Tensor x = torch::randn({6, 3, 2});
  torch::Tensor y_prev = torch::zeros({3, 2});
  for (int t = 0; t < 6; ++t) {
    const torch::Tensor y = net->forward(x[t]);
    const torch::Tensor want = x[t] + 0.5 * y_prev;
    EXPECT_TRUE(torch::allclose(y, want)) << t;
    y_prev = y;
  }
  tt::zero_states(*net);
  EXPECT_FALSE(net->state("b.output").defined());
  EXPECT_TRUE(torch::allclose(net->forward(x[0]), x[0]));  // zeros after zero_states
}

// in [4] -> affine -> sub(nested: in -> lif -> w -> lif; lif -> out) -> li -> out
NirGraph nested_graph() {
  torch::manual_seed(5);
  NirNode sub = make_nir_node("sub.rec", "NIRGraph");
  sub.add_node(io("input", "Input", {3}));
  sub.add_node(make_nir_node("lif", "LIF")
                   .set("tau", torch::full({3}, 5e-3))
                   .set("r", torch::ones({3}))
                   .set("v_leak", torch::zeros({3}))
                   .set("v_threshold", torch::full({3}, 0.3)));
  sub.add_node(make_nir_node("w", "Linear").set("weight", torch::randn({3, 3})));
  sub.add_node(io("output", "Output", {3}));
  sub.add_edge("input", "lif").add_edge("lif", "w").add_edge("w", "lif").add_edge("lif", "output");
  NirGraph g;
  g.type = "NIRGraph";
  g.add_node(io("input", "Input", {4}));
  g.add_node(make_nir_node("affine", "Affine").set("weight", torch::randn({3, 4}) * 3).set("bias", torch::zeros({3})));
  g.add_node(sub);
  g.add_node(make_nir_node("li", "LI").set("tau", torch::tensor(2e-3)).set("r", torch::tensor(1.0)).set("v_leak", torch::tensor(0.0)));
  g.add_node(io("output", "Output", {3}));
  g.add_edge("input", "affine").add_edge("affine", "sub.rec.input").add_edge("sub.rec", "li").add_edge("li", "output");
  return g;
}

std::vector<torch::Tensor> run(tt::nir::Graph& net, const torch::Tensor& x) {
  std::vector<torch::Tensor> out;
  for (int64_t t = 0; t < x.size(0); ++t) out.push_back(net->forward(x[t]));
  return out;
}

TEST(NirGraph, NestedGraphsAreChildGraphsWithTheirOwnStates) {
  tt::nir::Graph net = tt::nir::import_graph(nested_graph(), tt::nir::ImportOptions(1e-3));
  const torch::Tensor x = torch::randn({12, 2, 4});
  run(net, x);
  std::vector<std::string> keys;
  for (const auto& item : tt::save_states(*net)) keys.push_back(item.key());
  // '.' in node names becomes '_' in module paths; the nested graph's recurrent source keeps its output.
  EXPECT_EQ(keys, (std::vector<std::string>{"sub_rec.w.output", "sub_rec.lif.v", "li.v"}));
  std::vector<std::string> layers;
  for (const auto& [path, layer] : tt::named_layers(*net)) layers.push_back(path + ":" + layer->type_name());
  EXPECT_EQ(layers, (std::vector<std::string>{":nir.Graph", "sub_rec:nir.Graph", "sub_rec.lif:nir.LIF", "li:nir.LI"}));
  EXPECT_NE(net->node_module("li"), nullptr);
  EXPECT_EQ(net->node_module("input"), nullptr);
}

TEST(NirGraph, StatesSaveLoadAndCloneLikeEveryModel) {
  tt_test::TempDir dir;
  tt::nir::Graph net = tt::nir::import_graph(nested_graph(), tt::nir::ImportOptions(1e-3));
  const torch::Tensor x = torch::randn({20, 2, 4});
  for (int t = 0; t < 10; ++t) net->forward(x[t]);
  tt::save_states(*net, dir.file("states.pt"));
  auto copy = std::dynamic_pointer_cast<tt::nir::GraphImpl>(net->clone());
  ASSERT_NE(copy, nullptr);
  tt::nir::Graph fresh = tt::nir::import_graph(nested_graph(), tt::nir::ImportOptions(1e-3));
  const tt::LoadReport report = tt::load_states(*fresh, dir.file("states.pt"));
  EXPECT_TRUE(report.complete());
  double spikes = 0;
  for (int t = 10; t < 20; ++t) {
    const torch::Tensor a = net->forward(x[t]);
    EXPECT_TRUE(torch::equal(a, copy->forward(x[t]))) << t;
    EXPECT_TRUE(torch::equal(a, fresh->forward(x[t]))) << t;
    spikes += tt::save_states(*net)["sub_rec.w.output"].abs().sum().item<double>();
  }
  EXPECT_GT(spikes, 0.0);  // the recurrent path was exercised
  // The state_dict holds every node's parameters under the node paths.
  const auto sd = tt::state_dict(*net);
  EXPECT_TRUE(sd.contains("affine.weight"));
  EXPECT_TRUE(sd.contains("sub_rec.lif.tau"));
  EXPECT_TRUE(sd.contains("li.v_leak"));
}

TEST(NirGraph, UnbatchedInputsGiveUnbatchedOutputs) {
  tt::nir::Graph net = tt::nir::import_graph(nested_graph(), tt::nir::ImportOptions(1e-3));
  tt::nir::Graph batched = tt::nir::import_graph(nested_graph(), tt::nir::ImportOptions(1e-3));
  const torch::Tensor x = torch::randn({5, 4});
  for (int t = 0; t < 5; ++t) {
    const torch::Tensor y = net->forward(x[t]);
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3}));
    EXPECT_TRUE(torch::equal(y, batched->forward(x[t].unsqueeze(0)).squeeze(0)));
  }
  try {
    net->forward(torch::ones({2, 5}));
    FAIL();
  } catch (const tt::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("Input 'input' takes [batch, 4] or [4], got [2, 5]"), std::string::npos)
        << e.what();
  }
}

TEST(NirGraph, SeveralInputsAndOutputsGoByName) {
  NirGraph g;
  g.type = "NIRGraph";
  g.add_node(io("x", "Input", {2}));
  g.add_node(io("y", "Input", {2}));
  g.add_node(scale("s", torch::full({2}, 2.0)));
  g.add_node(io("sum", "Output", {2}));
  g.add_node(io("twice", "Output", {2}));
  g.add_edge("x", "sum").add_edge("y", "sum").add_edge("x", "s").add_edge("s", "twice");
  tt::nir::Graph net = tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3));
  const torch::Tensor a = torch::randn({3, 2}), b = torch::randn({3, 2});
  auto out = net->forward_named({{"x", a}, {"y", b}});
  EXPECT_TRUE(torch::allclose(out.at("sum"), a + b));
  EXPECT_TRUE(torch::allclose(out.at("twice"), a * 2));
  EXPECT_THROW(net->forward(a), tt::ValueError);
  EXPECT_THROW(net->forward_named({{"x", a}}), tt::ValueError);
}

TEST(NirGraph, GraphsThatCannotRunAreRefusedNamingTheNode) {
  auto message = [](const NirGraph& g) {
    try {
      tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3));
    } catch (const tt::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  NirGraph unreachable = feedback_graph();
  unreachable.add_node(scale("lonely", torch::ones({2})));
  EXPECT_NE(message(unreachable).find("NIR node 'lonely' (Scale) is not reachable from any Input node"),
            std::string::npos)
      << message(unreachable);

  NirGraph misfit = feedback_graph();
  misfit.add_node(make_nir_node("w", "Affine").set("weight", torch::ones({2, 5})).set("bias", torch::zeros({2})));
  misfit.add_edge("a", "w").add_edge("w", "out");
  EXPECT_NE(message(misfit).find("NIR node 'w' (Affine): weight [2, 5] does not fit an input of shape [2]"),
            std::string::npos)
      << message(misfit);

  NirGraph output = feedback_graph();
  output.find("out")->set("shape", torch::tensor({3}, torch::kInt64));
  EXPECT_NE(message(output).find("NIR node 'out' (Output) declares shape [3], the incoming edges carry [2]"),
            std::string::npos)
      << message(output);

  NirGraph into_input = feedback_graph();
  into_input.add_edge("a", "in");
  EXPECT_NE(message(into_input).find("NIR node 'in' (Input) has an incoming edge"), std::string::npos);

  NirGraph bad_param = feedback_graph();
  bad_param.find("b")->set("scale", torch::ones({3}));
  EXPECT_NE(message(bad_param).find("NIR node 'b' (Scale): nir.Scale: parameter 'scale' of shape [3] does not broadcast"),
            std::string::npos)
      << message(bad_param);

  NirGraph unknown = feedback_graph();
  unknown.add_node(make_nir_node("x", "Magic"));
  EXPECT_NE(message(unknown).find("node 'x' (Magic): unknown node type"), std::string::npos) << message(unknown);

  EXPECT_THROW(tt::nir::import_graph(feedback_graph(), tt::nir::ImportOptions(0)), tt::ValueError);
}

TEST(NirGraph, LoadNamesTheFile) {
  tt_test::TempDir dir;
  NirGraph misfit = feedback_graph();
  misfit.find("out")->set("shape", torch::tensor({3}, torch::kInt64));
  tt::io::save_nir(misfit, dir.file("bad.nir"));
  try {
    tt::nir::load(dir.file("bad.nir"), tt::nir::ImportOptions(1e-3));
    FAIL();
  } catch (const tt::ValueError& e) {
    EXPECT_EQ(std::string(e.what()).rfind(dir.file("bad.nir") + ": NIR node 'out'", 0), 0u) << e.what();
  }
}

}  // namespace
