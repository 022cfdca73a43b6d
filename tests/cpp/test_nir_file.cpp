// NIR files (io/nir_file.h): values survive a save / load round trip bit for bit, the reference
// `nir` package reads what we write and we read what it writes, and broken files or graphs are
// FileErrors that name the node.
#include <gtest/gtest.h>

#include <filesystem>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

using tt::io::make_nir_node;
using tt::io::NirGraph;
using tt::io::NirNode;
using tt::io::NirValue;

std::string nir_reference() { return tt_test::shared_dir() + "/reference/nir-7232ada"; }
bool have_nir_package() {
  return !tt_test::python().empty() && std::filesystem::exists(nir_reference() + "/nir/__init__.py");
}

// Input [3] -> Affine -> LIF -> Output, every value kind somewhere.
NirGraph sample_graph() {
  NirGraph g;
  g.type = "NIRGraph";
  g.add_node(make_nir_node("input", "Input").set("shape", torch::tensor({3}, torch::kInt64)));
  g.add_node(make_nir_node("affine", "Affine")
                 .set("weight", torch::arange(6, torch::kFloat32).reshape({2, 3}))
                 .set("bias", torch::tensor({0.5, -0.25}, torch::kFloat64)));
  NirNode lif = make_nir_node("lif", "LIF")
                    .set("tau", torch::tensor({0.01, 0.02}, torch::kFloat64))
                    .set("r", torch::tensor(1.5, torch::kFloat32))  // 0-d
                    .set("v_leak", torch::zeros({2}))
                    .set("v_threshold", torch::ones({2}))
                    .set("flags", torch::tensor({true, false}));
  lif.metadata.emplace_back("note", NirValue("trained with snnTorch"));
  lif.metadata.emplace_back("train/epochs", NirValue(torch::tensor(7, torch::kInt64)));
  g.add_node(lif);
  g.add_node(make_nir_node("output", "Output").set("shape", torch::tensor({2}, torch::kInt64)));
  g.add_edge("input", "affine").add_edge("affine", "lif").add_edge("lif", "output");
  g.metadata.emplace_back("labels", NirValue(std::vector<std::string>{"left", "right"}));
  return g;
}

void expect_same_fields(const tt::io::NirFields& a, const tt::io::NirFields& b, const std::string& where) {
  ASSERT_EQ(a.size(), b.size()) << where;
  std::map<std::string, const NirValue*> by_name;
  for (const auto& [k, v] : b) by_name[k] = &v;
  for (const auto& [k, v] : a) {
    ASSERT_TRUE(by_name.count(k)) << where << ": " << k;
    const NirValue& w = *by_name[k];
    ASSERT_EQ(v.kind(), w.kind()) << where << ": " << k;
    if (v.is_array()) {
      EXPECT_EQ(v.array().scalar_type(), w.array().scalar_type()) << where << ": " << k;
      EXPECT_TRUE(v.array().sizes().equals(w.array().sizes())) << where << ": " << k;
      EXPECT_TRUE(torch::equal(v.array(), w.array())) << where << ": " << k;
    } else if (v.is_text()) {
      EXPECT_EQ(v.text(), w.text()) << where << ": " << k;
    } else {
      EXPECT_EQ(v.texts(), w.texts()) << where << ": " << k;
    }
  }
}

TEST(NirFile, RoundTripKeepsEveryValue) {
  tt_test::TempDir dir;
  const NirGraph g = sample_graph();
  tt::io::save_nir(g, dir.file("g.nir"));
  const NirGraph back = tt::io::load_nir(dir.file("g.nir"));
  EXPECT_EQ(back.version, tt::io::kNirVersion);
  EXPECT_EQ(back.type, "NIRGraph");
  ASSERT_EQ(back.nodes.size(), 4u);
  EXPECT_EQ(back.edges, g.edges);
  expect_same_fields(g.metadata, back.metadata, "graph metadata");
  for (const NirNode& node : g.nodes) {
    const NirNode* other = back.find(node.name);
    ASSERT_NE(other, nullptr) << node.name;
    EXPECT_EQ(other->type, node.type);
    expect_same_fields(node.params, other->params, node.name);
    expect_same_fields(node.metadata, other->metadata, node.name + " metadata");
  }
  // Nodes come back in libhdf5's name order, as h5py lists them.
  std::vector<std::string> names;
  for (const NirNode& n : back.nodes) names.push_back(n.name);
  EXPECT_EQ(names, (std::vector<std::string>{"affine", "input", "lif", "output"}));
}

TEST(NirFile, NestedGraphsAndEmptyEdgeListsRoundTrip) {
  NirGraph g = sample_graph();
  NirNode sub = make_nir_node("sub", "NIRGraph");
  sub.add_node(make_nir_node("in", "Input").set("shape", torch::tensor({2}, torch::kInt64)));
  sub.add_node(make_nir_node("w", "Linear").set("weight", torch::eye(2)));
  sub.add_node(make_nir_node("out", "Output").set("shape", torch::tensor({2}, torch::kInt64)));
  sub.add_edge("in", "w").add_edge("w", "out").add_edge("w", "w");
  NirNode empty = make_nir_node("empty", "NIRGraph");
  sub.add_node(empty);
  g.add_node(sub);
  const NirGraph back = tt::io::load_nir_bytes(tt::io::save_nir_bytes(g), "memory");
  const NirNode* s = back.find("sub");
  ASSERT_NE(s, nullptr);
  EXPECT_EQ(s->edges, sub.edges);
  ASSERT_NE(s->find("empty"), nullptr);
  EXPECT_TRUE(s->find("empty")->nodes.empty());
  EXPECT_TRUE(s->find("empty")->edges.empty());
}

TEST(NirFile, BrokenBytesAreFileErrors) {
  const std::string good = tt::io::save_nir_bytes(sample_graph());
  try {
    tt::io::load_nir_bytes("definitely not hdf5", "bytes.nir");
    FAIL();
  } catch (const tt::FileError& e) {
    EXPECT_NE(std::string(e.what()).find("bytes.nir: not a NIR file (no HDF5 signature)"), std::string::npos) << e.what();
  }
  // Every truncation of a valid file fails cleanly (no crash, no half-built graph).
  for (size_t cut : {size_t{8}, size_t{100}, good.size() / 3, good.size() / 2, good.size() - 16}) {
    EXPECT_THROW(tt::io::load_nir_bytes(good.substr(0, cut), "cut.nir"), tt::FileError) << cut;
  }
  EXPECT_THROW(tt::io::load_nir("/nonexistent/x.nir"), tt::FileError);
}

TEST(NirFile, InvalidGraphsAreRefusedNamingTheNode) {
  auto message = [](const NirGraph& g) {
    try {
      tt::io::save_nir_bytes(g);
    } catch (const tt::FileError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  NirGraph unknown = sample_graph();
  unknown.add_node(make_nir_node("odd", "Spiky"));
  EXPECT_NE(message(unknown).find("node 'odd' (Spiky): unknown node type 'Spiky'"), std::string::npos) << message(unknown);

  NirGraph missing = sample_graph();
  missing.find("lif")->params.erase(missing.find("lif")->params.begin());  // tau
  EXPECT_NE(message(missing).find("node 'lif' (LIF): missing field 'tau'"), std::string::npos) << message(missing);

  NirGraph text = sample_graph();
  text.find("lif")->set("v_leak", NirValue("zero"));
  EXPECT_NE(message(text).find("node 'lif' (LIF): field 'v_leak' must be numbers"), std::string::npos) << message(text);

  NirGraph edge = sample_graph();
  edge.add_edge("lif", "nowhere");
  EXPECT_NE(message(edge).find("edge ('lif', 'nowhere'): no node 'nowhere'"), std::string::npos) << message(edge);

  NirGraph twice = sample_graph();
  twice.add_node(make_nir_node("lif", "Threshold").set("threshold", torch::ones({2})));
  EXPECT_NE(message(twice).find("two nodes are called 'lif'"), std::string::npos) << message(twice);

  NirGraph slash = sample_graph();
  slash.add_node(make_nir_node("a/b", "Scale").set("scale", torch::ones({2})));
  EXPECT_NE(message(slash).find("invalid node name 'a/b'"), std::string::npos) << message(slash);
}

TEST(NirFile, TheReferencePackageReadsWhatWeWrite) {
  if (!have_nir_package()) GTEST_SKIP() << "no python3 or no reference nir package in " << nir_reference();
  tt_test::TempDir dir;
  NirGraph g = sample_graph();
  g.find("lif")->params.pop_back();  // the reference LIF takes no extra fields
  g.find("lif")->set("r", torch::full({2}, 1.5));
  tt::io::save_nir(g, dir.file("ours.nir"));
  std::string output;
  const int rc = tt_test::run_python(
      "import sys; sys.path.insert(0, '" + nir_reference() + "')\n"
      "import nir, numpy as np\n"
      "g = nir.read('" + dir.file("ours.nir") + "')\n"
      "assert sorted(g.nodes) == ['affine', 'input', 'lif', 'output'], g.nodes\n"
      "assert isinstance(g.nodes['lif'], nir.LIF)\n"
      "assert np.allclose(g.nodes['lif'].tau, [0.01, 0.02]) and np.allclose(g.nodes['lif'].v_reset, 0)\n"
      "assert g.nodes['affine'].weight.dtype == np.float32 and g.nodes['affine'].weight.shape == (2, 3)\n"
      "assert g.nodes['affine'].weight[1, 2] == 5 and g.nodes['affine'].bias[1] == -0.25\n"
      "assert list(g.nodes['input'].input_type['input']) == [3]\n"
      "assert g.edges == [('input', 'affine'), ('affine', 'lif'), ('lif', 'output')], g.edges\n"
      "assert nir.serialization.read_version('" + dir.file("ours.nir") + "') == '1.0.7'\n"
      "print('ok')\n",
      &output);
  EXPECT_EQ(rc, 0) << output;
}

TEST(NirFile, WeReadWhatTheReferencePackageWrites) {
  if (!have_nir_package()) GTEST_SKIP() << "no python3 or no reference nir package in " << nir_reference();
  tt_test::TempDir dir;
  std::string output;
  const int rc = tt_test::run_python(
      "import sys; sys.path.insert(0, '" + nir_reference() + "')\n"
      "import nir, numpy as np\n"
      "g = nir.NIRGraph(nodes={\n"
      "  'in': nir.Input(input_type=np.array([2, 4, 4])),\n"
      "  'conv': nir.Conv2d(input_shape=(4, 4), weight=np.ones((3, 2, 3, 3), np.float32), stride=1, padding=1,\n"
      "                     dilation=1, groups=1, bias=np.zeros(3, np.float32)),\n"
      "  'pool': nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),\n"
      "  'flat': nir.Flatten(input_type={'input': np.array([3, 2, 2])}, start_dim=0, end_dim=-1),\n"
      "  'cuba': nir.CubaLIF(tau_syn=np.full(12, 5e-3), tau_mem=np.full(12, 1e-2), r=np.ones(12),\n"
      "                      v_leak=np.zeros(12), v_threshold=np.ones(12)),\n"
      "  'out': nir.Output(output_type=np.array([12]))},\n"
      "  edges=[('in', 'conv'), ('conv', 'pool'), ('pool', 'flat'), ('flat', 'cuba'), ('cuba', 'out')],\n"
      "  metadata={'source': 'test'})\n"
      "nir.write('" + dir.file("theirs.nir") + "', g)\n",
      &output);
  ASSERT_EQ(rc, 0) << output;
  const NirGraph g = tt::io::load_nir(dir.file("theirs.nir"));
  ASSERT_NE(g.find("conv"), nullptr);
  EXPECT_EQ(g.find("conv")->get("weight").array().sizes(), (std::vector<int64_t>{3, 2, 3, 3}));
  EXPECT_EQ(g.find("cuba")->get("w_in").array().numel(), 12);  // the package fills w_in with ones
  EXPECT_EQ(g.find("flat")->get("start_dim").array().item<int64_t>(), 0);
  ASSERT_EQ(g.metadata.size(), 1u);
  EXPECT_EQ(g.metadata[0].second.text(), "test");
  // ... and the graph runs: [batch, 2, 4, 4] -> [batch, 12] spikes.
  tt::nir::Graph net = tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3));
  const torch::Tensor y = net->forward(torch::ones({5, 2, 4, 4}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{5, 12}));
}

}  // namespace
