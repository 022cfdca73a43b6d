// tt::nir::export_graph (nir/export.h): traceTorch models written as NIR and imported back give
// the same outputs step by step, for every non-dual preset under both discretisations; imported
// graphs export to themselves; what has no NIR equivalent is refused with the reason.
#include <gtest/gtest.h>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

using tt::nir::Discretisation;

tt::snn::NeuronOptions random_neuron(const std::string& preset, int64_t n) {
  tt::snn::NeuronOptions o = tt::snn::preset_options(preset, n);
  for (const auto& spec : tt::snn::neuron_parameters(o)) {
    torch::Tensor v;
    switch (spec.transform) {
      case tt::Transform::Decay: v = torch::rand({n}) * 0.35 + 0.6; break;
      case tt::Transform::Threshold: v = torch::rand({n}) * 0.5 + 0.5; break;
      case tt::Transform::Bias: v = torch::randn({n}) * 0.1; break;
      default: v = torch::randn({n}) * 0.5 + (spec.name.find("scale") != std::string::npos ? 1.0 : 0.0); break;
    }
    o.set_value(spec.name, v);
  }
  if (o.output() != tt::snn::Output::LI) o.quant_fn(tt::functional::round_ste_fn(1.0));
  return o;
}

tt::Sequential model_with(const std::string& preset) {
  torch::manual_seed(42);
  return tt::Sequential(torch::nn::Linear(5, 6), tt::snn::Neuron(random_neuron(preset, 6)), torch::nn::Linear(6, 3),
                        tt::snn::Neuron(random_neuron("LI", 3)));
}

TEST(NirExport, TraceTorchModelsRoundTripStepByStep) {
  const std::vector<std::string> presets = {"LI",   "LIEMA", "SLI",  "SLIEMA", "LIB",   "SLIB",  "RLIB",
                                            "SRLIB", "LIT",  "SLIT", "RLIT",   "SRLIT", "LITS", "SLITS", "RLITS", "SRLITS"};
  tt_test::TempDir dir;
  for (Discretisation d : {Discretisation::Euler, Discretisation::Exact}) {
    for (const auto& preset : presets) {
      SCOPED_TRACE(preset + (d == Discretisation::Exact ? " exact" : " euler"));
      tt::Sequential model = model_with(preset);
      const double dt = 1e-3;
      tt::nir::save(*model, dir.file("m.nir"), tt::nir::ExportOptions(dt).discretisation(d));
      tt::nir::Graph graph = tt::nir::load(dir.file("m.nir"), tt::nir::ImportOptions(dt).discretisation(d));
      torch::manual_seed(1);
      const torch::Tensor x = torch::randn({60, 4, 5}) * 2;
      torch::NoGradGuard no_grad;
      // A copy of the model's first two layers shows what the hidden neurons do.
      auto probe = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(model->clone());
      ASSERT_NE(probe, nullptr);
      double activity = 0, rate = 0;
      for (int64_t t = 0; t < x.size(0); ++t) {
        const torch::Tensor want = model->forward(x[t]);
        const torch::Tensor got = graph->forward(x[t]);
        ASSERT_TRUE(torch::allclose(got, want, 1e-4, 1e-4))
            << "step " << t << ": max diff " << (got - want).abs().max().item<double>();
        activity += want.abs().mean().item<double>();
        rate += probe->ptr<tt::snn::NeuronImpl>(1)->forward(probe->ptr<torch::nn::LinearImpl>(0)->forward(x[t])).abs().mean().item<double>();
      }
      EXPECT_GT(activity, 0.0);
      if (preset.find("LIB") != std::string::npos || preset.find("LIT") != std::string::npos) {
        EXPECT_GT(rate / x.size(0), 0.02);  // the hidden neurons fire, and not always
        EXPECT_LT(rate / x.size(0), 0.98);
      }
    }
  }
}

TEST(NirExport, TheMappingIsForTheDiscretisationGiven) {
  tt::Sequential model = model_with("SLI");
  const auto g = tt::nir::export_graph(*model, tt::nir::ExportOptions(1e-3));  // Euler
  tt::nir::Graph euler = tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3));
  tt::nir::Graph exact = tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3).discretisation(Discretisation::Exact));
  const torch::Tensor x = torch::randn({2, 5});
  const torch::Tensor want = model->forward(x);
  EXPECT_TRUE(torch::allclose(euler->forward(x), want, 1e-5, 1e-5));
  EXPECT_FALSE(torch::allclose(exact->forward(x), want, 1e-3, 1e-3));
}

TEST(NirExport, FiringNeuronsBecomeSmallGraphsWithARecurrentReset) {
  tt::Sequential model = model_with("SRLITS");
  const tt::io::NirGraph g = tt::nir::export_graph(*model, tt::nir::ExportOptions(1e-3));
  std::vector<std::string> names;
  for (const auto& n : g.nodes) names.push_back(n.name + ":" + n.type);
  EXPECT_EQ(names, (std::vector<std::string>{"input:Input", "0:Affine", "1:NIRGraph", "2:Affine", "3:LI", "output:Output"}));
  tt::nir::Graph net = tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3));
  auto sub = std::dynamic_pointer_cast<tt::nir::GraphImpl>(net->node_module("1"));
  ASSERT_NE(sub, nullptr);
  const auto recurrent = sub->recurrent_edges();
  auto has = [&](const std::string& a, const std::string& b) {
    return std::find(recurrent.begin(), recurrent.end(), std::make_pair(a, b)) != recurrent.end();
  };
  EXPECT_TRUE(has("reset_pos", "mem"));
  EXPECT_TRUE(has("reset_neg", "mem"));
  EXPECT_TRUE(has("rec_weight", "mem"));
  // The LI readout maps beta to tau = dt / (1 - beta), r = 1 / (1 - beta).
  const tt::io::NirNode* li = g.find("3");
  const torch::Tensor beta = dynamic_cast<tt::Layer&>(*model[3]).get("beta").to(torch::kFloat64);
  EXPECT_TRUE(torch::allclose(li->get("tau").array(), 1e-3 / (1 - beta)));
  EXPECT_TRUE(torch::allclose(li->get("r").array(), 1 / (1 - beta)));
}

TEST(NirExport, ImportedGraphsExportToThemselves) {
  tt::Sequential model = model_with("SLIB");
  tt::nir::Graph first = tt::nir::import_graph(tt::nir::export_graph(*model, tt::nir::ExportOptions(1e-3)),
                                               tt::nir::ImportOptions(1e-3));
  // A changed parameter travels: export reads the modules, not the graph as imported.
  tt::nir::Graph second = tt::nir::import_graph(tt::nir::export_graph(*first, tt::nir::ExportOptions(1e-3)),
                                                tt::nir::ImportOptions(1e-3));
  EXPECT_EQ(first->execution_order(), second->execution_order());
  const torch::Tensor x = torch::randn({30, 2, 5});
  for (int64_t t = 0; t < x.size(0); ++t) EXPECT_TRUE(torch::equal(first->forward(x[t]), second->forward(x[t]))) << t;
  {
    torch::NoGradGuard no_grad;
    dynamic_cast<torch::nn::LinearImpl&>(*first->node_module("2")).weight.mul_(2);
  }
  const tt::io::NirGraph again = tt::nir::export_graph(*first, tt::nir::ExportOptions(1e-3));
  EXPECT_TRUE(torch::allclose(again.find("2")->get("weight").array(),
                              dynamic_cast<torch::nn::LinearImpl&>(*first->node_module("2")).weight));
}

TEST(NirExport, TorchLayersExportWithTheirShapes) {
  auto model = tt::Sequential(torch::nn::Conv2d(torch::nn::Conv2dOptions(2, 4, 3).padding(1)),
                              torch::nn::AvgPool2d(torch::nn::AvgPool2dOptions(2)), torch::nn::Flatten(),
                              torch::nn::Linear(4 * 3 * 3, 5));
  const tt::io::NirGraph g = tt::nir::export_graph(*model, tt::nir::ExportOptions(1e-3).input_shape({2, 6, 6}));
  EXPECT_TRUE(torch::equal(g.find("0")->get("input_shape").array(), torch::tensor({6, 6}, torch::kInt64)));
  EXPECT_EQ(g.find("1")->type, "AvgPool2d");
  EXPECT_EQ(g.find("2")->get("start_dim").array().item<int64_t>(), 0);  // torch's 1 counts the batch axis
  tt::nir::Graph net = tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3));
  const torch::Tensor x = torch::randn({3, 2, 6, 6});
  EXPECT_TRUE(torch::allclose(net->forward(x), model->forward(x), 1e-5, 1e-5));
  EXPECT_THROW(tt::nir::export_graph(*model, tt::nir::ExportOptions(1e-3)), tt::ValueError);  // no input shape
}

TEST(NirExport, WhatHasNoNirEquivalentIsRefusedWithTheReason) {
  auto message = [](const torch::nn::Module& m) {
    try {
      tt::nir::export_graph(m, tt::nir::ExportOptions(1e-3));
    } catch (const tt::ValueError& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  auto dual = tt::Sequential(torch::nn::Linear(3, 4), tt::snn::DLIB(4));
  EXPECT_NE(message(*dual).find("module '1': DLIB is dual"), std::string::npos) << message(*dual);
  auto continuous = tt::Sequential(torch::nn::Linear(3, 4), tt::snn::LIB(4));
  EXPECT_NE(message(*continuous).find("only Heaviside spikes"), std::string::npos) << message(*continuous);
  auto rnn = tt::Sequential(torch::nn::Linear(3, 4), torch::nn::ReLU());
  EXPECT_NE(message(*rnn).find("module '1': no NIR equivalent"), std::string::npos) << message(*rnn);
}

}  // namespace
