// tt::Layer and tt::snn::Neuron: lazy states, constrained parameters, compile / decompile,
// hand-computed steps, argument validation.
#include <gtest/gtest.h>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

std::vector<std::string> keys(const tt::io::TensorDict& dict) { return dict.keys(); }

TEST(Layer, StatesAreUndefinedUntilTheFirstForwardThenShapedLikeTheInput) {
  tt::snn::LI li(4);
  EXPECT_EQ(li->state_names(), std::vector<std::string>{"mem"});
  EXPECT_FALSE(li->state("mem").defined());
  li(torch::ones({3, 4}, torch::kFloat64));
  const auto& mem = li->state("mem");
  ASSERT_TRUE(mem.defined());
  EXPECT_EQ(mem.sizes(), (std::vector<int64_t>{3, 4}));
  EXPECT_EQ(mem.dtype(), torch::kFloat64);  // the input's dtype, not the parameters'
  li->zero_states();
  EXPECT_FALSE(li->state("mem").defined());
}

TEST(Layer, DimMovesTheFeatureAxis) {
  tt::snn::LIB lib(tt::snn::LIBOptions(4).dim(1));
  const auto x = torch::randn({2, 4, 3});
  const auto y = lib(x);
  EXPECT_EQ(y.sizes(), x.sizes());
  EXPECT_EQ(lib->state("mem").sizes(), (std::vector<int64_t>{2, 4, 3}));
  // Same numbers as running with the feature axis last.
  tt::snn::LIB last(4);
  const auto y_last = last(x.movedim(1, -1)).movedim(-1, 1);
  // allclose, not equal: the layouts differ, and ATen's vectorised and scalar sigmoid may differ
  // in the last bit (spec 11.3).
  EXPECT_TRUE(torch::allclose(y, y_last, 1e-6, 1e-7));
  // Negative dims count from the end.
  tt::snn::LI li(tt::snn::LIOptions(4).dim(-2));
  li(x);
  EXPECT_EQ(li->state("mem").sizes(), (std::vector<int64_t>{2, 4, 3}));
}

TEST(Layer, LIBMatchesAHandComputedTwoStepRun) {
  tt::snn::LIB lib(tt::snn::LIBOptions(2).beta(0.8).threshold(1.5).bias(0.25));
  const std::vector<std::vector<double>> xs = {{0.7, -0.4}, {1.9, 0.3}};
  const double beta = 0.8, theta = 1.5, bias = 0.25;
  std::vector<double> mem = {0.0, 0.0};
  for (const auto& x : xs) {
    const auto y = lib(torch::tensor(x, torch::kFloat64).unsqueeze(0));
    for (int i = 0; i < 2; ++i) {
      mem[i] = mem[i] * beta + x[i];
      const double s = 1.0 / (1.0 + std::exp(-4.0 * (mem[i] - theta + bias)));
      mem[i] -= s * theta;
      EXPECT_NEAR(y[0][i].item<double>(), s, 2e-6);
      EXPECT_NEAR(lib->state("mem")[0][i].item<double>(), mem[i], 2e-6);
    }
  }
}

TEST(Layer, DualSynapticLIEMASplitsPositiveAndNegativeDrive) {
  tt::snn::DSLIEMA layer(tt::snn::DSLIEMAOptions(2).pos_alpha(0.5).neg_alpha(0.25).pos_beta(0.9).neg_beta(0.6));
  const auto y = layer(torch::tensor({{2.0, -2.0}}, torch::kFloat64));
  // pos_syn = P(x)(1-0.5), neg_syn = N(x)(1-0.25); d = pos_syn + neg_syn;
  // pos_mem = P(d)(1-0.9), neg_mem = N(d)(1-0.6); y = pos_mem + neg_mem.
  EXPECT_NEAR(y[0][0].item<double>(), 1.0 * 0.1, 2e-6);
  EXPECT_NEAR(y[0][1].item<double>(), -1.5 * 0.4, 2e-6);
  EXPECT_NEAR(layer->state("neg_syn")[0][1].item<double>(), -1.5, 2e-6);
  EXPECT_EQ(layer->state_names(), (std::vector<std::string>{"pos_syn", "neg_syn", "pos_mem", "neg_mem"}));
}

TEST(Layer, RecurrentLayerFeedsItsPreviousOutputBack) {
  tt::snn::RLIB layer(tt::snn::RLIBOptions(1).beta(0.5).gamma(0.5).rec_weight(2.0).threshold(1.0));
  const auto y1 = layer(torch::tensor({{1.0}}, torch::kFloat64));
  EXPECT_TRUE(torch::equal(layer->state("prev_output"), y1));
  const double s1 = y1.item<double>();
  double mem = 1.0 - s1 * 1.0;  // after the first reset
  // second step with zero input: rec = 0.5*0 + s1*0.5; mem = mem*0.5 + (rec*2 + 0)
  const auto y2 = layer(torch::tensor({{0.0}}, torch::kFloat64));
  const double rec = s1 * 0.5;
  mem = mem * 0.5 + rec * 2.0;
  const double s2 = 1.0 / (1.0 + std::exp(-4.0 * (mem - 1.0)));
  EXPECT_NEAR(y2.item<double>(), s2, 2e-6);
  EXPECT_NEAR(layer->state("rec").item<double>(), rec, 2e-6);
}

TEST(Layer, TernaryScaledOutputUsesBothThresholdsAndScales) {
  tt::snn::LITS layer(tt::snn::LITSOptions(1).beta(0.5).pos_threshold(1.0).neg_threshold(0.5).pos_scale(2.0).neg_scale(3.0));
  const auto y = layer(torch::tensor({{-1.0}}, torch::kFloat64));
  const double m = -1.0;
  const double sp = 1.0 / (1.0 + std::exp(-4.0 * (m - 1.0)));
  const double sn = -1.0 / (1.0 + std::exp(-4.0 * (-0.5 - m)));
  EXPECT_NEAR(y.item<double>(), sp * 2.0 + sn * 3.0, 2e-6);
  EXPECT_NEAR(layer->state("mem").item<double>(), m - sp * 1.0 - sn * 0.5, 2e-6);
}

TEST(Layer, ConstrainedParametersAreStoredRawWithPythonKeysAndOrder) {
  // Spec 2.3 example: RLIB(3, learn_gamma=False, bias_rank=0, threshold=tensor(0.7)).
  tt::snn::RLIB layer(tt::snn::RLIBOptions(3).learn_gamma(false).bias_rank(0).threshold(torch::tensor(0.7)));
  const auto sd = tt::state_dict(*layer);
  EXPECT_EQ(keys(sd), (std::vector<std::string>{"raw_beta", "raw_threshold", "raw_bias", "raw_rec_weight", "raw_gamma"}));
  EXPECT_EQ(sd["raw_threshold"].dim(), 0);
  EXPECT_EQ(sd["raw_bias"].dim(), 0);
  EXPECT_EQ(sd["raw_beta"].sizes(), (std::vector<int64_t>{3}));
  EXPECT_TRUE(layer->named_parameters().contains("raw_beta"));
  EXPECT_FALSE(layer->named_parameters().contains("raw_gamma"));
  EXPECT_TRUE(layer->named_buffers().contains("raw_gamma"));
  // Defaults: logit(0.9), log(expm1(0.7)), sinh(0).
  EXPECT_FLOAT_EQ(sd["raw_beta"][0].item<float>(), 2.1972243785858154f);
  EXPECT_NEAR(sd["raw_threshold"].item<float>(), std::log(std::expm1(0.7)), 2e-6);
  EXPECT_NEAR(layer->get("threshold").item<float>(), 0.7f, 2e-6);
  EXPECT_NEAR(layer->get("beta")[1].item<float>(), 0.9f, 2e-6);
}

TEST(Layer, TensorArgumentsKeepTheirRankAndDtype) {
  tt::snn::LI a(tt::snn::LIOptions(3).beta(torch::tensor(0.5)).beta_rank(1));
  EXPECT_EQ(tt::state_dict(*a)["raw_beta"].dim(), 0);
  tt::snn::LI b(tt::snn::LIOptions(3).beta(torch::full({3}, 0.5, torch::kFloat64)));
  EXPECT_EQ(tt::state_dict(*b)["raw_beta"].dtype(), torch::kFloat64);
}

TEST(Layer, InvalidArgumentsRaiseErrorsNamingTheParameter) {
  try {
    tt::snn::LI(tt::snn::LIOptions(3).beta(1.0));
    FAIL();
  } catch (const tt::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("beta"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("(0,1)"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tt::snn::LIB(tt::snn::LIBOptions(3).threshold(-1.0)), tt::ValueError);
  try {
    tt::snn::LI(tt::snn::LIOptions(3).beta(torch::full({2}, 0.5)));
    FAIL();
  } catch (const tt::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("beta does not have 3 elements"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tt::snn::LI(tt::snn::LIOptions(3).beta_rank(2)), tt::ValueError);
  try {
    tt::snn::LI(tt::snn::LIOptions(3).threshold(1.0));
    FAIL();
  } catch (const tt::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("snn.LI has no parameter 'threshold'"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tt::snn::Neuron(tt::snn::NeuronOptions(3).recurrent(true)), tt::ValueError);
}

TEST(Layer, CompileSwapsRawParametersForActivatedBuffersAndDecompileRestoresThem) {
  tt::snn::RLIB layer(tt::snn::RLIBOptions(3).learn_gamma(false).beta(0.7).rec_weight(0.3));
  const auto x = torch::randn({5, 2, 3});
  std::vector<torch::Tensor> eager;
  for (int t = 0; t < 5; ++t) eager.push_back(layer(x[t]));
  const auto before = tt::state_dict(*layer);

  layer->compile();
  EXPECT_TRUE(layer->is_compiled());
  const auto compiled = tt::state_dict(*layer);
  EXPECT_EQ(keys(compiled), (std::vector<std::string>{"beta", "gamma", "threshold", "bias", "rec_weight"}));
  EXPECT_TRUE(layer->parameters().empty());
  EXPECT_NEAR(compiled["beta"][0].item<float>(), 0.7f, 2e-6);
  layer->compile();  // idempotent
  layer->zero_states();
  for (int t = 0; t < 5; ++t) EXPECT_TRUE(torch::equal(layer(x[t]), eager[t])) << t;

  layer->decompile();
  EXPECT_FALSE(layer->is_compiled());
  const auto after = tt::state_dict(*layer);
  EXPECT_EQ(keys(after), keys(before));
  for (const auto& item : before) EXPECT_TRUE(torch::allclose(after[item.key()], item.value(), 0, 2e-6)) << item.key();
  EXPECT_TRUE(layer->named_parameters()["raw_beta"].requires_grad());
  EXPECT_TRUE(layer->named_buffers().contains("raw_gamma"));
  layer->zero_states();
  for (int t = 0; t < 5; ++t) EXPECT_TRUE(torch::allclose(layer(x[t]), eager[t], 1e-5, 1e-6)) << t;
}

TEST(Layer, QuantizedOutputsAreSpikes) {
  tt::snn::LIB layer(tt::snn::LIBOptions(4).quant_fn(tt::functional::round_ste_fn(1.0)));
  const auto y = layer(torch::randn({8, 4}) * 3);
  EXPECT_TRUE(torch::equal(y, torch::round(y)));
  EXPECT_TRUE((y >= 0).all().item<bool>());
}

TEST(Layer, AllThirtyTwoPresetsBuildWithTheirPythonNames) {
  EXPECT_EQ(tt::snn::preset_names().size(), 32u);
  for (const auto& name : tt::snn::preset_names()) {
    tt::snn::Neuron neuron(tt::snn::preset_options(name, 3));
    EXPECT_EQ(neuron->type_name(), "snn." + name);
    const auto y = neuron(torch::randn({2, 3}));
    EXPECT_EQ(y.sizes(), (std::vector<int64_t>{2, 3})) << name;
  }
  EXPECT_THROW(tt::snn::preset_options("LIQ", 3), tt::ValueError);
}

TEST(Layer, DropsIntoTorchSequentialAndPrettyPrints) {
  torch::nn::Sequential net(torch::nn::Linear(5, 4), tt::snn::DSRLITS(4), torch::nn::Linear(4, 2), tt::snn::LI(2));
  const auto y = net->forward(torch::randn({3, 5}));
  EXPECT_EQ(y.sizes(), (std::vector<int64_t>{3, 2}));
  std::ostringstream text;
  text << *net;
  EXPECT_NE(text.str().find("tt::snn::DSRLITS(num_neurons=4)"), std::string::npos) << text.str();
}

TEST(Functional, QuantizersAndConversions) {
  const auto x = torch::tensor({0.5, 1.5, 2.5, -0.5, 0.26});
  EXPECT_TRUE(torch::equal(tt::functional::round_ste(x, 1.0), torch::tensor({0.0, 2.0, 2.0, -0.0, 0.0})));
  EXPECT_TRUE(torch::allclose(tt::functional::round_ste(x, 0.5), torch::tensor({0.5, 1.5, 2.5, -0.5, 0.5})));
  // straight-through gradient
  auto xg = x.clone().requires_grad_(true);
  tt::functional::round_ste(xg, 1.0).sum().backward();
  EXPECT_TRUE(torch::equal(xg.grad(), torch::ones_like(x)));
  // stochastic rounding is unbiased: the mean of many draws approaches x
  torch::manual_seed(0);
  const auto big = torch::full({200000}, 0.3);
  EXPECT_NEAR(tt::functional::stochastic_round_ste(big, 1.0).mean().item<double>(), 0.3, 0.005);
  const auto p = torch::full({200000}, 0.7);
  EXPECT_NEAR(tt::functional::probabilistic_ste(p).mean().item<double>(), 0.7 * 0.7, 0.005);
  EXPECT_NEAR(tt::functional::halflife_to_decay(10), 0.9330329915368074, 1e-15);
  EXPECT_NEAR(tt::functional::decay_to_halflife(0.9), 6.578813478960585, 1e-12);
  EXPECT_NEAR(tt::functional::decay_to_timesteps(0.9), 10.000000000000002, 1e-12);
  EXPECT_DOUBLE_EQ(tt::functional::timesteps_to_decay(4), 0.75);
  EXPECT_EQ(tt::functional::parse_tensor_fn("round_ste(0.25)").name, "round_ste(0.25)");
  EXPECT_EQ(tt::functional::parse_tensor_fn("stochastic_round_ste(1.0)").name, "stochastic_round_ste(1.0)");
  EXPECT_THROW(tt::functional::parse_tensor_fn("relu"), tt::ValueError);
}

TEST(Training, GradientsFlowThroughTimeAndStopAtDetach) {
  torch::manual_seed(1);
  tt::snn::SLIB layer(4);
  const auto x = torch::randn({6, 2, 4});
  // BPTT: a loss on the last output reaches the first input.
  auto x0 = x[0].clone().requires_grad_(true);
  torch::Tensor y = layer(x0);
  for (int t = 1; t < 6; ++t) y = layer(x[t]);
  y.sum().backward();
  ASSERT_TRUE(x0.grad().defined());
  EXPECT_GT(x0.grad().abs().sum().item<double>(), 0.0);
  for (const auto& p : layer->parameters()) EXPECT_TRUE(p.grad().defined());
  // Truncated: after detach_states the earlier input gets no gradient.
  layer->zero_states();
  auto x1 = x[0].clone().requires_grad_(true);
  layer(x1);
  layer->detach_states();
  layer(x[1]).sum().backward();
  EXPECT_FALSE(x1.grad().defined());
}

}  // namespace
