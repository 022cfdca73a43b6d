// The NIR layers (nir/neuron.h, nir/nodes.h): the fast path gives the reference path's bits for
// every neuron kind and discretisation, one step matches the equation worked by hand, states are
// independent of what the caller holds, and bad parameters or inputs are ValueErrors that say why.
// (Each primitive against numpy: tests/python/test_nir_primitives.py.)
#include <gtest/gtest.h>

#include "tracetorch/tracetorch.h"

namespace {

using tt::nir::Discretisation;
using tt::nir::NeuronKind;

tt::nir::NeuronOptions random_options(NeuronKind kind, std::vector<int64_t> shape, Discretisation d) {
  torch::manual_seed(static_cast<uint64_t>(kind) * 10 + static_cast<uint64_t>(d));
  tt::nir::NeuronOptions o(kind, shape);
  o.dt(1e-3).discretisation(d);
  for (const auto& field : tt::nir::neuron_fields(kind)) {
    torch::Tensor v;
    if (field.rfind("tau", 0) == 0) v = torch::rand(shape) * 0.015 + 0.005;
    else if (field == "r" || field == "w_in") v = torch::rand(shape) + 0.5;
    else if (field == "v_threshold") v = torch::rand(shape) * 0.3 + 0.05;
    else v = torch::rand(shape) * 0.2 - 0.1;  // v_leak, v_reset
    if (kind == NeuronKind::I || kind == NeuronKind::IF) {
      if (field == "r") v = v * 100;
    }
    o.set(field, v);
  }
  return o;
}

TEST(NirNeuron, FastPathGivesTheReferenceBitsForEveryKind) {
  for (NeuronKind kind : {NeuronKind::I, NeuronKind::IF, NeuronKind::LI, NeuronKind::LIF, NeuronKind::CubaLI,
                          NeuronKind::CubaLIF}) {
    for (Discretisation d : {Discretisation::Euler, Discretisation::Exact}) {
      for (auto dtype : {torch::kFloat32, torch::kFloat64}) {
        for (const std::vector<int64_t>& shape : {std::vector<int64_t>{7}, std::vector<int64_t>{2, 3, 2}}) {
          SCOPED_TRACE(tt::nir::kind_name(kind) + (d == Discretisation::Exact ? " exact " : " euler ") +
                       c10::toString(dtype) + " rank " + std::to_string(shape.size()));
          tt::nir::Neuron reference(random_options(kind, shape, d));
          tt::nir::Neuron fast(random_options(kind, shape, d));
          reference->to(dtype);
          fast->to(dtype);
          reference->set_exact(true);
          std::vector<int64_t> in = {4};
          in.insert(in.end(), shape.begin(), shape.end());
          double spikes = 0;
          for (int t = 0; t < 25; ++t) {
            const torch::Tensor x = torch::randn(in, dtype) * 3;
            torch::Tensor a = reference->forward(x);
            torch::Tensor b;
            {
              torch::NoGradGuard no_grad;
              b = fast->forward(x);
            }
            ASSERT_TRUE(torch::equal(a, b)) << "step " << t << ": max diff " << (a - b).abs().max().item<double>();
            for (const auto& name : reference->state_names())
              ASSERT_TRUE(torch::equal(reference->state(name), fast->state(name))) << name << " step " << t;
            spikes += a.mean().item<double>();
          }
          if (tt::nir::is_firing(kind)) {
            EXPECT_GT(spikes, 0.0);  // the inputs make them fire ...
            EXPECT_LT(spikes, 25.0);  // ... but not always
          }
        }
      }
    }
  }
}

TEST(NirNeuron, OneStepMatchesTheEquationByHand) {
  // LIF, Euler: v = 0 + dt/tau * ((v_leak - 0) + r x) = 0.1 * (0.1 + 2 * 1.5) = 0.31 > 0.3: spike, v = v_reset.
  tt::nir::Neuron lif(tt::nir::LIFOptions({1})
                          .dt(1e-3)
                          .dtype(torch::kFloat64)
                          .set("tau", 1e-2)
                          .set("r", 2.0)
                          .set("v_leak", 0.1)
                          .set("v_threshold", 0.3)
                          .set("v_reset", -0.5));
  torch::NoGradGuard no_grad;
  EXPECT_EQ(lif->forward(torch::full({1, 1}, 1.5, torch::kFloat64)).item<double>(), 1.0);
  EXPECT_EQ(lif->state("v").item<double>(), -0.5);
  // Next: v = -0.5 + 0.1 * ((0.1 + 0.5) + 0) = -0.44, no spike.
  EXPECT_EQ(lif->forward(torch::zeros({1, 1}, torch::kFloat64)).item<double>(), 0.0);
  EXPECT_NEAR(lif->state("v").item<double>(), -0.44, 1e-15);

  // CubaLI, exact: I = (1 - e^-0.5) * w_in x; v = (1 - e^-0.1) * r * I (v_leak 0).
  tt::nir::Neuron cuba(tt::nir::CubaLIOptions({1})
                           .dt(1e-3)
                           .discretisation(Discretisation::Exact)
                           .dtype(torch::kFloat64)
                           .set("tau_syn", 2e-3)
                           .set("tau_mem", 1e-2)
                           .set("r", 3.0)
                           .set("w_in", 0.5));
  const double v = cuba->forward(torch::full({1, 1}, 2.0, torch::kFloat64)).item<double>();
  const double i = (1 - std::exp(-0.5)) * 0.5 * 2.0;
  EXPECT_NEAR(cuba->state("i").item<double>(), i, 1e-15);
  EXPECT_NEAR(v, (1 - std::exp(-0.1)) * 3.0 * i, 1e-15);
}

TEST(NirNeuron, TheFastPathNeverWritesIntoTensorsTheCallerHolds) {
  tt::nir::Neuron li(tt::nir::LIOptions({3}).set("tau", 1e-2));
  torch::NoGradGuard no_grad;
  const torch::Tensor y1 = li->forward(torch::ones({2, 3}));
  const torch::Tensor kept = y1.clone();
  torch::Tensor given = torch::full({2, 3}, 5.0);
  const torch::Tensor given_copy = given.clone();
  li->forward(torch::ones({2, 3}));
  EXPECT_TRUE(torch::equal(y1, kept));  // the first output is not the state updated in place
  li->set_state("v", given);
  li->forward(torch::ones({2, 3}));
  EXPECT_TRUE(torch::equal(given, given_copy));
  EXPECT_FALSE(torch::equal(li->state("v"), given));
}

TEST(NirNeuron, BadParametersAndInputsSayWhy) {
  auto message = [](const std::function<void()>& f) {
    try {
      f();
    } catch (const tt::Error& e) {
      return std::string(e.what());
    }
    return std::string("no error");
  };
  EXPECT_NE(message([] { tt::nir::Neuron(tt::nir::LIFOptions({4}).set("tau", torch::ones({3}))); })
                .find("nir.LIF: parameter 'tau' of shape [3] does not broadcast to the shape [4]"),
            std::string::npos);
  EXPECT_NE(message([] { tt::nir::Neuron(tt::nir::LIOptions({4})); }).find("nir.LI: parameter 'tau' is required"),
            std::string::npos);
  EXPECT_NE(message([] { tt::nir::Neuron(tt::nir::LIOptions({4}).set("tau", 1e-2).set("w_in", 1.0)); })
                .find("nir.LI has no parameter 'w_in'"),
            std::string::npos);
  EXPECT_NE(message([] { tt::nir::Neuron(tt::nir::LIOptions({4}).set("tau", -1.0)); })
                .find("time constant 'tau' must be positive"),
            std::string::npos);
  EXPECT_NE(message([] { tt::nir::Neuron(tt::nir::LIOptions({4}).set("tau", 1.0).dt(0)); }).find("dt must be positive"),
            std::string::npos);
  tt::nir::Neuron ok(tt::nir::LIOptions({2, 3}).set("tau", 1e-2));
  EXPECT_NE(message([&] { ok->forward(torch::ones({5, 3, 2})); })
                .find("nir.LI: expected an input of shape [batch, 2, 3], got [5, 3, 2]"),
            std::string::npos);
  // A state of another batch size is refused, not broadcast.
  ok->forward(torch::ones({5, 2, 3}));
  EXPECT_NE(message([&] { ok->forward(torch::ones({4, 2, 3})); }).find("call zero_states()"), std::string::npos);
  EXPECT_NE(message([&] { tt::load_states(*ok, tt::io::TensorDict{{"v", torch::ones({5, 3})}}); })
                .find("Shape mismatch for v: expected [5, 2, 3], got [5, 3]"),
            std::string::npos);
}

TEST(NirNodes, DelayShiftsEachNeuronByItsRoundedSteps) {
  tt::nir::Delay delay(tt::nir::DelayOptions({3}, torch::tensor({0.0, 1e-3, 2.6e-3})).dt(1e-3));
  EXPECT_TRUE(torch::equal(delay->steps(), torch::tensor({0, 1, 3}, torch::kLong)));
  EXPECT_EQ(delay->state_names(), std::vector<std::string>{"buffer"});
  std::vector<torch::Tensor> xs, ys;
  for (int t = 0; t < 6; ++t) {
    xs.push_back(torch::randn({2, 3}));
    ys.push_back(delay->forward(xs.back()));
  }
  EXPECT_EQ(delay->state("buffer").sizes(), (std::vector<int64_t>{2, 3, 3}));
  for (int t = 0; t < 6; ++t) {
    EXPECT_TRUE(torch::equal(ys[t].select(1, 0), xs[t].select(1, 0)));
    EXPECT_TRUE(torch::equal(ys[t].select(1, 1), t >= 1 ? xs[t - 1].select(1, 1) : torch::zeros({2})));
    EXPECT_TRUE(torch::equal(ys[t].select(1, 2), t >= 3 ? xs[t - 3].select(1, 2) : torch::zeros({2})));
  }
  // Zero delays everywhere: a pass-through without states.
  tt::nir::Delay none(tt::nir::DelayOptions({2}, torch::zeros({2})));
  EXPECT_TRUE(none->state_names().empty());
  EXPECT_THROW(tt::nir::Delay(tt::nir::DelayOptions({2}, torch::tensor({-1e-3, 0.0}))), tt::ValueError);
}

TEST(NirNodes, ScaleAndThresholdBroadcastTheirParameters) {
  tt::nir::Scale scale(tt::nir::ScaleOptions({2, 3}, torch::tensor({1.0, 2.0, 3.0})));
  EXPECT_EQ(scale->scale.sizes(), (std::vector<int64_t>{2, 3}));
  EXPECT_TRUE(torch::equal(scale->forward(torch::ones({1, 2, 3})), torch::tensor({1.f, 2.f, 3.f}).expand({1, 2, 3})));
  tt::nir::Threshold threshold(tt::nir::ThresholdOptions({3}, torch::tensor(0.5)));
  // Strictly greater: a value at the threshold does not fire.
  EXPECT_TRUE(torch::equal(threshold->forward(torch::tensor({{0.4f, 0.5f, 0.6f}})), torch::tensor({{0.f, 0.f, 1.f}})));
  EXPECT_THROW(scale->forward(torch::ones({1, 3, 2})), tt::ValueError);
}

}  // namespace
