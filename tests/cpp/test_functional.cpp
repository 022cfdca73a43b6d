// tt::functional: spike functions, quantizers (forward values, straight-through gradients, seeded
// reproducibility and statistics), checked inverse transforms and the decay conversions
// (spec section 4 and 2.4).
#include <gtest/gtest.h>

#include <cmath>

#include "tracetorch/tracetorch.h"

namespace {

namespace F = tt::functional;

bool message_contains(const std::exception& e, const std::string& text) {
  return std::string(e.what()).find(text) != std::string::npos;
}

// ---------------------------------------------------------------------------------------------
// spike functions

TEST(SpikeFunctions, Sigmoid4xIsTheSigmoidOfTheProductComputedFirst) {
  torch::manual_seed(0);
  const auto x = torch::randn({257}) * 3;  // odd length: vectorised body and scalar tail
  EXPECT_TRUE(torch::equal(F::sigmoid4x(x), torch::sigmoid(torch::mul(x, 4.0))));
  EXPECT_EQ(F::sigmoid4x(torch::zeros({1})).item<float>(), 0.5f);
  const auto xd = torch::tensor({-1.0, 0.25, 2.0}, torch::kFloat64);
  const auto yd = F::sigmoid4x(xd);
  EXPECT_EQ(yd.dtype(), torch::kFloat64);
  for (int i = 0; i < 3; ++i)
    EXPECT_NEAR(yd[i].item<double>(), 1.0 / (1.0 + std::exp(-4.0 * xd[i].item<double>())), 1e-15);
  // as a named function (the default spike_fn of firing layers)
  const F::TensorFn f = F::sigmoid4x();
  EXPECT_EQ(f.name, "sigmoid4x");
  EXPECT_FALSE(f.is_identity());
  EXPECT_TRUE(torch::equal(f(x), F::sigmoid4x(x)));
  EXPECT_EQ(tt::snn::LIBOptions(3).spike_fn().name, "sigmoid4x");
  EXPECT_TRUE(tt::snn::LIBOptions(3).quant_fn().is_identity());
}

TEST(SpikeFunctions, Sigmoid4xGradientIsFourSigmaOneMinusSigma) {
  auto x = torch::tensor({-0.7, 0.0, 0.3, 1.9}, torch::kFloat64).requires_grad_(true);
  F::sigmoid4x(x).sum().backward();
  const auto s = torch::sigmoid(x.detach() * 4);
  EXPECT_TRUE(torch::allclose(x.grad(), 4 * s * (1 - s), 0, 1e-14));
}

TEST(SpikeFunctions, IdentityIsSkippedAndReturnsItsInput) {
  const F::TensorFn id = F::identity();
  EXPECT_TRUE(id.is_identity());
  EXPECT_EQ(id.name, "identity");
  const auto x = torch::randn({4});
  EXPECT_TRUE(id(x).is_same(x));
  EXPECT_TRUE(F::parse_tensor_fn("identity").is_identity());
}

// ---------------------------------------------------------------------------------------------
// round_ste

TEST(RoundSTE, RoundsHalfToEvenInUnitsOfTheStep) {
  const auto x = torch::tensor({-3.5, -2.5, -1.5, -0.5, 0.5, 1.5, 2.5, 3.5, 0.49999, -0.50001, 7.2});
  const auto want = torch::tensor({-4.0, -2.0, -2.0, -0.0, 0.0, 2.0, 2.0, 4.0, 0.0, -1.0, 7.0});
  EXPECT_TRUE(torch::equal(F::round_ste(x), want));  // default step 1
  // a tie in units of 0.25: x / 0.25 = 0.5, 1.5, 2.5, -0.5, -1.5
  const auto xq = torch::tensor({0.125, 0.375, 0.625, -0.125, -0.375});
  EXPECT_TRUE(torch::equal(F::round_ste(xq, 0.25), torch::tensor({0.0, 0.5, 0.5, -0.0, -0.5})));
  // step 2: 3 -> 1.5 -> 2 -> 4; 5 -> 2.5 -> 2 -> 4; 7 -> 3.5 -> 4 -> 8
  EXPECT_TRUE(torch::equal(F::round_ste(torch::tensor({3.0, 5.0, 7.0, 0.9}), 2.0), torch::tensor({4.0, 4.0, 8.0, 0.0})));
  // negative zero keeps its sign (round(-0.4) = -0)
  EXPECT_TRUE(std::signbit(F::round_ste(torch::tensor({-0.4}))[0].item<float>()));
}

TEST(RoundSTE, ForwardIsExactlyDivRoundMul) {
  torch::manual_seed(1);
  for (double step : {1.0, 0.5, 0.1, 3.0}) {
    for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
      const auto x = (torch::randn({1000}) * 5).to(dtype);
      const auto q = F::round_ste(x, step);
      EXPECT_EQ(q.dtype(), dtype);
      EXPECT_TRUE(torch::equal(q, torch::round(torch::div(x, step)).mul(step))) << step;
    }
  }
}

TEST(RoundSTE, GradientPassesStraightThrough) {
  torch::manual_seed(2);
  auto x = (torch::randn({50}, torch::kFloat64) * 3).requires_grad_(true);
  const auto w = torch::randn({50}, torch::kFloat64);
  (F::round_ste(x, 0.5) * w).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), w));  // not zero (round's true derivative), not ones
  // through the named function too
  auto x2 = x.detach().clone().requires_grad_(true);
  (F::round_ste_fn(0.5)(x2) * w).sum().backward();
  EXPECT_TRUE(torch::equal(x2.grad(), w));
}

// ---------------------------------------------------------------------------------------------
// stochastic_round_ste

TEST(StochasticRoundSTE, FollowsTheSpecFormulaWithOneRandLikePerCall) {
  // Same seed, same draw: (floor(s) + (u < frac)) * step with u = rand_like(s), s = x / step.
  torch::manual_seed(3);
  const auto x = torch::randn({4, 33}) * 2;
  for (double step : {1.0, 0.5, 0.3}) {
    torch::manual_seed(11);
    const auto s = torch::div(x, step);
    const auto f = torch::floor(s);
    const auto u = torch::rand_like(s);
    const auto want = torch::add(f, (u < (s - f)).to(torch::kFloat32)).mul(step);
    torch::manual_seed(11);
    EXPECT_TRUE(torch::equal(F::stochastic_round_ste(x, step), want)) << step;
    // exactly one rand_like of x's shape was consumed: the next draw is the same in both streams
    const auto next = torch::rand({3});
    torch::manual_seed(11);
    torch::rand_like(s);
    EXPECT_TRUE(torch::equal(torch::rand({3}), next));
  }
}

TEST(StochasticRoundSTE, IsReproducibleUnderManualSeedAndRandomOtherwise) {
  const auto x = torch::linspace(-3, 3, 1001);
  torch::manual_seed(42);
  const auto a = F::stochastic_round_ste(x, 0.5);
  const auto c = F::stochastic_round_ste(x, 0.5);  // the stream has moved on
  torch::manual_seed(42);
  const auto b = F::stochastic_round_ste(x, 0.5);
  EXPECT_TRUE(torch::equal(a, b));
  EXPECT_FALSE(torch::equal(a, c));
  // only the two neighbouring multiples of the step are possible
  const auto lower = torch::floor(x / 0.5) * 0.5;
  EXPECT_TRUE((a.eq(lower).logical_or(a.eq(lower + 0.5))).all().item<bool>());
  // multiples of the step never move (frac = 0, u < 0 is impossible)
  const auto exact = torch::tensor({-2.0, -0.5, 0.0, 1.5, 3.0});
  for (int i = 0; i < 20; ++i) EXPECT_TRUE(torch::equal(F::stochastic_round_ste(exact, 0.5), exact));
}

TEST(StochasticRoundSTE, IsUnbiasedAndRoundsUpWithProbabilityFrac) {
  torch::manual_seed(5);
  const int64_t draws = 100000;
  const std::vector<double> values = {0.1, 0.25, 0.5, 0.9, 2.3, -0.3, -1.75};
  const auto x = torch::tensor(values).unsqueeze(1).expand({-1, draws}).contiguous();
  const auto q = F::stochastic_round_ste(x, 1.0);
  const auto mean = q.to(torch::kFloat64).mean(1);
  for (size_t i = 0; i < values.size(); ++i) {
    const double frac = values[i] - std::floor(values[i]);
    const double sigma = std::sqrt(frac * (1 - frac) / draws);
    // E[q] = x, i.e. the fraction of draws rounded up is frac (within 5 standard errors)
    EXPECT_NEAR(mean[i].item<double>(), static_cast<float>(values[i]), 5 * sigma + 1e-6) << values[i];
  }
  // with a step: E[q] = x still holds (0.6 / 0.5 = 1.2 -> 0.5 or 1.0, mean 0.6)
  const auto q2 = F::stochastic_round_ste(torch::full({draws}, 0.6), 0.5);
  EXPECT_NEAR(q2.to(torch::kFloat64).mean().item<double>(), 0.6, 5 * 0.5 * std::sqrt(0.2 * 0.8 / draws));
}

TEST(StochasticRoundSTE, GradientPassesStraightThrough) {
  torch::manual_seed(6);
  auto x = (torch::randn({40}) * 2).requires_grad_(true);
  const auto w = torch::randn({40});
  (F::stochastic_round_ste(x, 0.25) * w).sum().backward();
  EXPECT_TRUE(torch::equal(x.grad(), w));
}

TEST(StochasticRoundSTE, FloatMaskPromotesToFloat32AtLeast) {
  torch::manual_seed(7);
  const auto xd = torch::randn({10}, torch::kFloat64);
  EXPECT_EQ(F::stochastic_round_ste(xd).dtype(), torch::kFloat64);
  EXPECT_EQ(F::stochastic_round_ste(torch::randn({10})).dtype(), torch::kFloat32);
}

// ---------------------------------------------------------------------------------------------
// probabilistic_ste

TEST(ProbabilisticSTE, IsXTimesOneBernoulliDrawWithProbabilityX) {
  torch::manual_seed(8);
  const auto x = torch::rand({5, 17});
  torch::manual_seed(9);
  const auto want = x * torch::bernoulli(x);
  torch::manual_seed(9);
  const auto got = F::probabilistic_ste(x);
  EXPECT_TRUE(torch::equal(got, want));
  // each value is 0 or x
  EXPECT_TRUE((got.eq(0).logical_or(got.eq(x))).all().item<bool>());
  // certain and impossible events
  EXPECT_TRUE(torch::equal(F::probabilistic_ste(torch::ones({100})), torch::ones({100})));
  EXPECT_TRUE(torch::equal(F::probabilistic_ste(torch::zeros({100})), torch::zeros({100})));
}

TEST(ProbabilisticSTE, FiresWithProbabilityX) {
  torch::manual_seed(10);
  const int64_t draws = 100000;
  const std::vector<double> ps = {0.05, 0.2, 0.5, 0.8, 0.97};
  const auto x = torch::tensor(ps).to(torch::kFloat32).unsqueeze(1).expand({-1, draws}).contiguous();
  const auto q = F::probabilistic_ste(x);
  const auto fired = q.ne(0).to(torch::kFloat64).mean(1);
  const auto mean = q.to(torch::kFloat64).mean(1);
  for (size_t i = 0; i < ps.size(); ++i) {
    const double p = static_cast<float>(ps[i]);
    const double sigma = std::sqrt(p * (1 - p) / draws);
    EXPECT_NEAR(fired[i].item<double>(), p, 5 * sigma) << p;
    EXPECT_NEAR(mean[i].item<double>(), p * p, 5 * p * sigma) << p;  // E[x * bernoulli(x)] = x^2
  }
}

TEST(ProbabilisticSTE, GradientIsGradTimesTwoX) {
  torch::manual_seed(12);
  auto x = torch::rand({30}, torch::kFloat64).requires_grad_(true);
  const auto w = torch::randn({30}, torch::kFloat64);
  (F::probabilistic_ste(x) * w).sum().backward();
  // independent of the draw: d/dx of E[x * bernoulli(x)] = 2x
  EXPECT_TRUE(torch::allclose(x.grad(), 2 * x.detach() * w, 0, 1e-15));
  EXPECT_TRUE(torch::equal(x.grad(), w * 2 * x.detach()));
}

TEST(Quantizers, NamedFunctionsParseAndPrintLikeTheArchitectureJson) {
  EXPECT_EQ(F::round_ste_fn().name, "round_ste(1.0)");
  EXPECT_EQ(F::round_ste_fn(0.5).name, "round_ste(0.5)");
  EXPECT_EQ(F::round_ste_fn(0.1).name, "round_ste(0.1)");
  EXPECT_EQ(F::round_ste_fn(2).name, "round_ste(2.0)");
  EXPECT_EQ(F::stochastic_round_ste_fn(0.25).name, "stochastic_round_ste(0.25)");
  EXPECT_EQ(F::probabilistic_ste_fn().name, "probabilistic_ste()");
  for (const std::string text : {"round_ste(0.5)", "stochastic_round_ste(1.0)", "probabilistic_ste()", "sigmoid4x",
                                 "identity", "round_ste(0.125)"})
    EXPECT_EQ(F::parse_tensor_fn(text).name, text);
  EXPECT_EQ(F::parse_tensor_fn("round_ste(1)").name, "round_ste(1.0)");
  // the parsed function computes what its name says
  const auto x = torch::tensor({0.3, 0.74, -0.6});
  EXPECT_TRUE(torch::equal(F::parse_tensor_fn("round_ste(0.5)")(x), F::round_ste(x, 0.5)));
  torch::manual_seed(13);
  const auto a = F::parse_tensor_fn("stochastic_round_ste(0.5)")(x);
  torch::manual_seed(13);
  EXPECT_TRUE(torch::equal(a, F::stochastic_round_ste(x, 0.5)));
  for (const std::string bad : {"round_ste(0)", "round_ste(-1.0)", "round_ste(abc)", "tanh", "round_ste", "probabilistic_ste(0.5)"})
    EXPECT_THROW(F::parse_tensor_fn(bad), tt::ValueError) << bad;
  // A literal longer than the small-string buffer (heap-allocated): parsed from storage that outlives strtod.
  EXPECT_EQ(F::parse_tensor_fn("round_ste(0.250000000000000000000000000000)").name, "round_ste(0.25)");
  EXPECT_THROW(F::parse_tensor_fn("round_ste(0.2500000000000000000000000000001x)"), tt::ValueError);
}

TEST(RoundSTE, RejectsAStepThatIsNotAPositiveFiniteNumber) {
  const auto x = torch::tensor({0.3, 0.7});
  for (const double bad : {0.0, -0.5, std::numeric_limits<double>::infinity(), std::nan("")}) {
    EXPECT_THROW(F::round_ste(x, bad), tt::ValueError) << bad;
    EXPECT_THROW(F::stochastic_round_ste(x, bad), tt::ValueError) << bad;
  }
  try {
    F::round_ste(x, 0.0);
  } catch (const tt::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("step_size must be a finite number > 0, got 0"), std::string::npos) << e.what();
  }
}

// ---------------------------------------------------------------------------------------------
// inverse transforms (spec 2.4, 4)

TEST(Transforms, SigmoidInverseIsLogitInsideTheOpenUnitInterval) {
  EXPECT_EQ(F::sigmoid_inverse(torch::tensor(0.9f)).item<float>(), 2.1972243785858154f);  // spec 2.4
  EXPECT_EQ(F::sigmoid_inverse(torch::tensor(0.5f)).item<float>(), 0.0f);
  const auto v = torch::tensor({0.01, 0.3, 0.5, 0.77, 0.999}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(F::sigmoid_inverse(v), torch::logit(v)));
  EXPECT_TRUE(torch::allclose(torch::sigmoid(F::sigmoid_inverse(v)), v, 0, 1e-15));
  for (double bad : {0.0, 1.0, -0.2, 1.5, std::nan("")}) {
    try {
      F::sigmoid_inverse(torch::tensor({0.5, bad}));
      ADD_FAILURE() << bad;
    } catch (const tt::ValueError& e) {
      EXPECT_TRUE(message_contains(e, "Tensor for inverse sigmoid has values outside the (0,1) range")) << e.what();
    }
  }
}

TEST(Transforms, SoftplusInverseIsLogExpm1ForPositiveValues) {
  EXPECT_EQ(F::softplus_inverse(torch::tensor(1.0f)).item<float>(), 0.5413248538970947f);  // spec 2.4
  const auto v = torch::tensor({1e-3, 0.4, 1.0, 5.0, 19.0}, torch::kFloat64);
  EXPECT_TRUE(torch::equal(F::softplus_inverse(v), torch::log(torch::expm1(v))));
  EXPECT_TRUE(torch::allclose(torch::softplus(F::softplus_inverse(v)), v, 1e-14, 1e-15));
  for (double bad : {0.0, -1.0, std::nan("")}) {
    try {
      F::softplus_inverse(torch::tensor({1.0, bad}));
      ADD_FAILURE() << bad;
    } catch (const tt::ValueError& e) {
      EXPECT_TRUE(message_contains(e, "Tensor for softplus inverse has values outside the (0,inf) range")) << e.what();
    }
  }
}

TEST(Transforms, MambaScaleIsLogOfMinusLog2) {
  const auto v = torch::tensor({0.5, 0.25, 0.125, 0.9}, torch::kFloat64);
  const auto r = F::mamba_scale(v);
  EXPECT_EQ(r[0].item<double>(), 0.0);
  EXPECT_NEAR(r[1].item<double>(), std::log(2.0), 1e-15);
  EXPECT_NEAR(r[2].item<double>(), std::log(3.0), 1e-15);
  EXPECT_NEAR(r[3].item<double>(), std::log(-std::log(0.9) / std::log(2.0)), 1e-15);
  EXPECT_THROW(F::mamba_scale(torch::tensor({0.5, 1.0})), tt::ValueError);
  EXPECT_THROW(F::mamba_scale(torch::tensor({0.0})), tt::ValueError);
}

TEST(Transforms, ActivationsAndTheirInversesPerKind) {
  const auto v = torch::tensor({0.2, 0.6, 0.95}, torch::kFloat64);
  struct Case {
    tt::Transform kind;
    torch::Tensor raw;  // what to_raw must give for v
  };
  const std::vector<Case> cases = {{tt::Transform::Decay, torch::logit(v)},
                                   {tt::Transform::Threshold, torch::log(torch::expm1(v))},
                                   {tt::Transform::Bias, torch::sinh(v)},
                                   {tt::Transform::Identity, v}};
  for (const auto& c : cases) {
    const auto raw = F::to_raw(c.kind, v);
    EXPECT_TRUE(torch::equal(raw, c.raw)) << tt::transform_name(c.kind);
    EXPECT_TRUE(torch::allclose(F::activate(c.kind, raw), v, 0, 1e-15)) << tt::transform_name(c.kind);
  }
  EXPECT_STREQ(tt::transform_name(tt::Transform::Decay), "decay");
  EXPECT_STREQ(tt::transform_name(tt::Transform::Threshold), "threshold");
  EXPECT_STREQ(tt::transform_name(tt::Transform::Bias), "bias");
  EXPECT_STREQ(tt::transform_name(tt::Transform::Identity), "identity");
  // bias and identity accept any value (negative, large)
  const auto any = torch::tensor({-30.0, -1.0, 0.0, 4.0}, torch::kFloat64);
  EXPECT_TRUE(torch::allclose(F::activate(tt::Transform::Bias, F::to_raw(tt::Transform::Bias, any)), any, 1e-14, 1e-14));
  EXPECT_TRUE(torch::equal(F::to_raw(tt::Transform::Identity, any), any));
  EXPECT_THROW(F::to_raw(tt::Transform::Decay, any), tt::ValueError);
  EXPECT_THROW(F::to_raw(tt::Transform::Threshold, any), tt::ValueError);
}

TEST(Transforms, SoftplusKeepsPyTorchsLinearBranchAboveTwenty) {
  const auto raw = torch::tensor({19.5, 20.0, 20.5, 25.0, -3.0}, torch::kFloat64);
  const auto value = F::activate(tt::Transform::Threshold, raw);
  EXPECT_EQ(value[2].item<double>(), 20.5);  // raw > 20: the value is raw itself
  EXPECT_EQ(value[3].item<double>(), 25.0);
  EXPECT_NEAR(value[0].item<double>(), std::log1p(std::exp(19.5)), 1e-13);  // the log1p(exp) branch
  EXPECT_NEAR(value[4].item<double>(), std::log1p(std::exp(-3.0)), 1e-16);
}

// ---------------------------------------------------------------------------------------------
// decay <-> half-life <-> timesteps (spec 4: Python floats, math module)

TEST(DecayConversions, MatchTheSpecsNumbersExactly) {
  EXPECT_EQ(F::halflife_to_decay(10), 0.9330329915368074);
  EXPECT_EQ(F::decay_to_halflife(0.9), 6.578813478960585);
  EXPECT_EQ(F::decay_to_timesteps(0.9), 10.000000000000002);
  EXPECT_EQ(F::timesteps_to_decay(10), 0.9);
  EXPECT_EQ(F::timesteps_to_decay(4), 0.75);
  EXPECT_EQ(F::halflife_to_decay(1), 0.5);
  EXPECT_EQ(F::decay_to_halflife(0.5), 1.0);
  EXPECT_EQ(F::decay_to_timesteps(0.5), 2.0);
  // the formulas as written: exp(-ln2/n), -ln2/ln(d), 1 - 1/t, 1/(1 - d)
  for (double n : {0.5, 3.0, 7.25, 100.0}) {
    EXPECT_EQ(F::halflife_to_decay(n), std::exp(-std::log(2.0) / n));
    EXPECT_EQ(F::timesteps_to_decay(n), 1 - 1 / n);
  }
  for (double d : {0.1, 0.5, 0.93, 0.999}) {
    EXPECT_EQ(F::decay_to_halflife(d), -std::log(2.0) / std::log(d));
    EXPECT_EQ(F::decay_to_timesteps(d), 1 / (1 - d));
  }
}

TEST(DecayConversions, RoundTripAndMeanWhatTheirNamesSay) {
  for (double h : {1.0, 2.5, 10.0, 64.0}) {
    EXPECT_NEAR(F::decay_to_halflife(F::halflife_to_decay(h)), h, 1e-12 * h);
    EXPECT_NEAR(std::pow(F::halflife_to_decay(h), h), 0.5, 1e-15);  // halves after h steps
  }
  for (double t : {1.5, 4.0, 20.0, 1000.0}) EXPECT_NEAR(F::decay_to_timesteps(F::timesteps_to_decay(t)), t, 1e-12 * t);
  // In a layer: an LI membrane with beta = halflife_to_decay(8) halves every 8 steps of silence.
  const double beta = F::halflife_to_decay(8);
  tt::snn::LI li(tt::snn::LIOptions(1).beta(torch::tensor(beta, torch::kFloat64)));
  li(torch::ones({1, 1}, torch::kFloat64));
  torch::Tensor y;
  for (int t = 0; t < 8; ++t) y = li(torch::zeros({1, 1}, torch::kFloat64));
  EXPECT_NEAR(y.item<double>(), 0.5, 1e-12);
  for (int t = 0; t < 8; ++t) y = li(torch::zeros({1, 1}, torch::kFloat64));
  EXPECT_NEAR(y.item<double>(), 0.25, 1e-12);
}

}  // namespace
