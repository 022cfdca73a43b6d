// The three paths through the RNN and SSM layers (rnn.h, ssm.h "Paths"): the fast inference step
// against the reference over long streams (batch 1 / 7 / 64, float32 / float64), its allocation
// count, its buffer ownership rules and cache refresh; the sequence forward against T steps
// (outputs, final states, every gradient), mixed with steps, truncated BPTT, through a model.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <functional>
#include <optional>
#include <iostream>

#include "test_support.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/model.h"
#include "tracetorch/core/sequence.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/rnn/rnn.h"
#include "tracetorch/ssm/ssm.h"

namespace {

struct LayerCase {
  std::string name;
  std::function<torch::nn::AnyModule()> make;
  int64_t in_features;
  int64_t dim = -1;  // the step's feature axis for the test inputs: -1 (last) or 1
};

std::vector<LayerCase> layer_cases() {
  using namespace tt;
  return {
      {"SimpleRNN", [] { return torch::nn::AnyModule(rnn::SimpleRNN(5, 7)); }, 5},
      {"GRU", [] { return torch::nn::AnyModule(rnn::GRU(6, 8)); }, 6},
      {"LSTM", [] { return torch::nn::AnyModule(rnn::LSTM(5, 6)); }, 5},
      {"S4", [] { return torch::nn::AnyModule(ssm::S4(6, 4)); }, 6},
      {"S5", [] { return torch::nn::AnyModule(ssm::S5(6, 4)); }, 6},
      {"S6", [] { return torch::nn::AnyModule(ssm::S6(ssm::S6Options(8).d_state(4).dt_rank(2))); }, 8},
      {"Mamba", [] { return torch::nn::AnyModule(ssm::Mamba(ssm::MambaOptions(6).d_state(3).conv_kernel(3))); }, 6},
      {"Mamba_noconv", [] { return torch::nn::AnyModule(ssm::Mamba(ssm::MambaOptions(6).d_state(3).conv_kernel(1))); }, 6},
  };
}

std::vector<LayerCase> dim1_cases() {
  using namespace tt;
  return {
      {"GRU_dim1", [] { return torch::nn::AnyModule(rnn::GRU(rnn::GRUOptions(4, 5).dim(1))); }, 4, 1},
      {"LSTM_dim1", [] { return torch::nn::AnyModule(rnn::LSTM(rnn::LSTMOptions(4, 3).dim(1))); }, 4, 1},
      {"SimpleRNN_dim1", [] { return torch::nn::AnyModule(rnn::SimpleRNN(rnn::SimpleRNNOptions(4, 3).dim(1))); }, 4, 1},
      {"S4_dim1", [] { return torch::nn::AnyModule(ssm::S4(ssm::S4Options(4).d_state(2).dim(1))); }, 4, 1},
      {"S5_dim1", [] { return torch::nn::AnyModule(ssm::S5(ssm::S5Options(4).d_state(3).dim(1))); }, 4, 1},
      {"S6_dim1", [] { return torch::nn::AnyModule(ssm::S6(ssm::S6Options(4).d_state(2).dim(1))); }, 4, 1},
      {"Mamba_dim1", [] { return torch::nn::AnyModule(ssm::Mamba(ssm::MambaOptions(4).d_state(2).conv_kernel(2).dim(1))); }, 4, 1},
  };
}

tt::Layer& layer_of(torch::nn::AnyModule& m) { return dynamic_cast<tt::Layer&>(*m.ptr()); }

// One step's input shape: batch rows (0: no batch axis) and the feature count on the case's dim.
std::vector<int64_t> step_shape(const LayerCase& c, int64_t batch) {
  if (c.dim == 1) return {batch, c.in_features, 3};
  if (batch == 0) return {c.in_features};
  return {batch, c.in_features};
}

// Largest |a - b| / (|b| + floor) over all elements (floor 1: relative for large values, absolute
// near zero, as allclose's rtol and atol together).
double relative_error(const torch::Tensor& a, const torch::Tensor& b, double floor) {
  return ((a - b).abs() / (b.abs() + floor)).max().item<double>();
}

// ---- the fast step -------------------------------------------------------------------------

TEST(FastStep, MatchesTheReferenceOverAThousandStepsForEveryLayerBatchAndDtype) {
  for (const auto& c : layer_cases()) {
    for (torch::Dtype dtype : {torch::kFloat32, torch::kFloat64}) {
      for (int64_t batch : {1, 7, 64}) {
        SCOPED_TRACE(c.name + " batch " + std::to_string(batch) + (dtype == torch::kFloat32 ? " f32" : " f64"));
        torch::manual_seed(7);
        auto fast = c.make();
        fast.ptr()->to(dtype);
        auto reference = fast.clone();
        layer_of(reference).set_exact(true);
        const int64_t steps = 1000;
        const torch::Tensor xs = torch::randn({steps, batch, c.in_features}, dtype);
        torch::NoGradGuard no_grad;
        double worst = 0;
        std::vector<torch::Tensor> kept;  // outputs kept by the caller must stay valid
        for (int64_t t = 0; t < steps; ++t) {
          const torch::Tensor a = fast.forward(xs[t]);
          const torch::Tensor b = reference.forward(xs[t]);
          worst = std::max(worst, relative_error(a, b, 1.0));
          if (dtype == torch::kFloat32)
            ASSERT_TRUE(torch::allclose(a, b, 1e-5, 1e-6)) << "step " << t;
          else
            ASSERT_TRUE(torch::allclose(a, b, 1e-10, 1e-12)) << "step " << t;
          if (t % 100 == 0) kept.push_back(a);
        }
        const double tolerance = dtype == torch::kFloat32 ? 1e-5 : 1e-10;
        for (const auto& name : layer_of(fast).state_names())
          EXPECT_LT(relative_error(layer_of(fast).state(name), layer_of(reference).state(name), 1.0), tolerance) << name;
        // Replaying the kept steps on a fresh reference gives the same values.
        auto replay = c.make();
        replay.ptr()->to(dtype);
        tt::load_state_dict(*replay.ptr(), tt::state_dict(*fast.ptr()));
        layer_of(replay).set_exact(true);
        for (int64_t t = 0; t < steps && t <= 900; ++t) {
          const torch::Tensor b = replay.forward(xs[t]);
          if (t % 100 == 0) EXPECT_LT(relative_error(kept[static_cast<size_t>(t / 100)], b, 1.0), tolerance) << t;
        }
        if (batch == 7) std::cout << "[fast step] " << c.name << (dtype == torch::kFloat32 ? " f32" : " f64")
                                  << ": largest |fast - reference| / (1 + |reference|) over 1000 steps " << worst << "\n";
      }
    }
  }
}

TEST(FastStep, AllocatesNothingPerStepInSteadyState) {
  for (const auto& c : layer_cases()) {
    for (int64_t batch : {0, 1, 7}) {
      for (bool inference_mode : {false, true}) {
        SCOPED_TRACE(c.name + " batch " + std::to_string(batch) + (inference_mode ? " InferenceMode" : " NoGrad"));
        torch::manual_seed(1);
        auto m = c.make();
        const torch::Tensor xs = torch::randn([&] {
          std::vector<int64_t> s = step_shape(c, batch);
          s.insert(s.begin(), 60);
          return s;
        }());
        std::vector<torch::Tensor> steps;
        for (int64_t t = 0; t < 60; ++t) steps.push_back(xs[t].clone());
        std::optional<torch::NoGradGuard> no_grad;
        std::optional<c10::InferenceMode> inference;
        if (inference_mode)
          inference.emplace();
        else
          no_grad.emplace();
        torch::Tensor y;
        for (int t = 0; t < 5; ++t) y = m.forward(steps[static_cast<size_t>(t)]);  // warm-up: buffers, constants
        int64_t allocations = 0;
        {
          tt_test::CpuAllocationCounter counter;
          for (size_t t = 5; t < steps.size(); ++t) y = m.forward(steps[t]);
          allocations = counter.count();
        }
        EXPECT_EQ(allocations, 0);
        EXPECT_EQ(y.dim(), static_cast<int64_t>(step_shape(c, batch).size()));
      }
    }
  }
}

TEST(FastStep, NeverWritesIntoATensorTheCallerHolds) {
  torch::manual_seed(2);
  tt::rnn::GRU gru(3, 4);
  tt::ssm::S6 s6(tt::ssm::S6Options(4).d_state(2));
  torch::NoGradGuard no_grad;
  gru(torch::randn({2, 3}));
  s6(torch::randn({2, 4}));
  const torch::Tensor h = gru->state("H");
  const torch::Tensor h_copy = h.clone();
  const torch::Tensor s = s6->state("state");
  const torch::Tensor s_view = s.view({-1});
  const torch::Tensor s_copy = s.clone();
  for (int t = 0; t < 4; ++t) {
    gru(torch::randn({2, 3}));
    s6(torch::randn({2, 4}));
  }
  EXPECT_TRUE(torch::equal(h, h_copy));  // rebound, as in the reference path
  EXPECT_TRUE(torch::equal(s, s_copy));
  EXPECT_FALSE(torch::equal(gru->state("H"), h_copy));
}

TEST(FastStep, CachedConstantsFollowParameterChanges) {
  for (const auto& c : layer_cases()) {
    SCOPED_TRACE(c.name);
    torch::manual_seed(4);
    auto fast = c.make();
    auto reference = fast.clone();
    layer_of(reference).set_exact(true);
    torch::NoGradGuard no_grad;
    const torch::Tensor xs = torch::randn({6, 3, c.in_features});
    for (int t = 0; t < 3; ++t) {
      fast.forward(xs[t]);
      reference.forward(xs[t]);
    }
    // An optimizer-style in-place update of every parameter, then a load of new values.
    for (auto* m : {fast.ptr().get(), reference.ptr().get()})
      for (auto& p : m->parameters()) p.mul_(0.9).add_(0.01);
    EXPECT_LT(relative_error(fast.forward(xs[3]), reference.forward(xs[3]), 1e-3), 1e-5);
    auto other = c.make();
    tt::load_state_dict(*fast.ptr(), tt::state_dict(*other.ptr()));
    tt::load_state_dict(*reference.ptr(), tt::state_dict(*other.ptr()));
    EXPECT_LT(relative_error(fast.forward(xs[4]), reference.forward(xs[4]), 1e-3), 1e-5);
    // A mid-stream clone continues identically.
    auto copy = fast.clone();
    EXPECT_TRUE(torch::equal(copy.forward(xs[5]), fast.forward(xs[5])));
  }
}

TEST(FastStep, ExactAndOtherLayoutsTakeTheReferencePath) {
  for (const auto& c : dim1_cases()) {
    SCOPED_TRACE(c.name);
    torch::manual_seed(5);
    auto a = c.make();
    auto b = a.clone();
    const torch::Tensor xs = torch::randn({4, 2, c.in_features, 3});
    torch::Tensor with_grad = tt_test::run_steps(b, xs);
    torch::NoGradGuard no_grad;
    EXPECT_TRUE(torch::equal(tt_test::run_steps(a, xs), with_grad));  // dim != -1: reference
  }
  torch::manual_seed(5);
  tt::ssm::S6 s6(4, 2);
  auto exact = std::dynamic_pointer_cast<tt::ssm::S6Impl>(s6->clone());
  exact->set_exact(true);
  const torch::Tensor x = torch::randn({3, 4});
  const torch::Tensor with_grad = s6(x);
  tt::zero_states(*s6);
  torch::NoGradGuard no_grad;
  EXPECT_TRUE(torch::equal(exact->forward(x), with_grad));
}

// ---- the sequence forward ------------------------------------------------------------------

struct Run {
  torch::Tensor outputs;
  std::vector<torch::Tensor> states, grads;
};

// Runs xs through m (sequence or steps) from `initial` states, backward on a fixed weighting of
// the outputs; returns outputs, final states, and the gradients of every parameter and of xs.
Run run(torch::nn::AnyModule& m, const torch::Tensor& xs_in, bool sequence, const torch::Tensor& weights,
        const tt::io::TensorDict& initial) {
  tt::zero_states(*m.ptr());
  if (!initial.is_empty()) tt::load_states(*m.ptr(), initial);
  for (auto& p : m.ptr()->parameters()) p.mutable_grad() = torch::Tensor();
  torch::Tensor xs = xs_in.detach().requires_grad_(true);
  Run r;
  r.outputs = sequence ? layer_of(m).forward_sequence(xs) : tt_test::run_steps(m, xs);
  r.outputs.mul(weights).sum().backward();
  for (const auto& name : layer_of(m).state_names()) r.states.push_back(layer_of(m).state(name).detach());
  for (auto& p : m.ptr()->parameters()) r.grads.push_back(p.grad());
  r.grads.push_back(xs.grad());
  return r;
}

void expect_close(const torch::Tensor& a, const torch::Tensor& b, double rtol, const std::string& what) {
  ASSERT_TRUE(a.defined() && b.defined()) << what;
  ASSERT_EQ(a.sizes(), b.sizes()) << what;
  const double atol = rtol * std::max(1.0, b.abs().max().item<double>());
  EXPECT_TRUE(torch::allclose(a, b, rtol, atol)) << what << ": max abs diff " << (a - b).abs().max().item<double>();
}

void check_sequence_equals_steps(const LayerCase& c, torch::Dtype dtype, int64_t T, int64_t batch, bool from_states) {
  SCOPED_TRACE(c.name + " T " + std::to_string(T) + " batch " + std::to_string(batch) +
               (dtype == torch::kFloat32 ? " f32" : " f64") + (from_states ? " from states" : ""));
  torch::manual_seed(8);
  auto m = c.make();
  m.ptr()->to(dtype);
  std::vector<int64_t> shape = step_shape(c, batch);
  shape.insert(shape.begin(), T);
  const torch::Tensor xs = torch::randn(shape, dtype);
  tt::io::TensorDict initial;
  if (from_states) {  // start mid-stream
    torch::NoGradGuard no_grad;
    tt::zero_states(*m.ptr());
    tt_test::run_steps(m, torch::randn(shape, dtype));
    initial = tt::save_states(*m.ptr());
  }
  torch::Tensor weights;
  {
    torch::NoGradGuard no_grad;
    tt::zero_states(*m.ptr());
    if (!initial.is_empty()) tt::load_states(*m.ptr(), initial);
    weights = torch::randn(layer_of(m).forward_sequence(xs).sizes(), dtype);
  }
  const Run seq = run(m, xs, true, weights, initial);
  const Run steps = run(m, xs, false, weights, initial);
  const double rtol = dtype == torch::kFloat32 ? 1e-5 : 1e-10;
  expect_close(seq.outputs, steps.outputs, rtol, "outputs");
  for (size_t i = 0; i < seq.states.size(); ++i) expect_close(seq.states[i], steps.states[i], rtol, "state " + std::to_string(i));
  ASSERT_EQ(seq.grads.size(), steps.grads.size());
  for (size_t i = 0; i < seq.grads.size(); ++i) expect_close(seq.grads[i], steps.grads[i], rtol, "gradient " + std::to_string(i));
}

TEST(Sequence, OutputsStatesAndGradientsEqualStepByStep) {
  for (const auto& c : layer_cases())
    for (torch::Dtype dtype : {torch::kFloat32, torch::kFloat64}) {
      check_sequence_equals_steps(c, dtype, 12, 3, false);
      check_sequence_equals_steps(c, dtype, 9, 0, true);
      check_sequence_equals_steps(c, dtype, 1, 2, true);
    }
  for (const auto& c : dim1_cases()) check_sequence_equals_steps(c, torch::kFloat64, 7, 2, true);
}

TEST(Sequence, LargeStatesTakeTheLoopAndStillMatch) {
  // batch x N x d_state >= the scan threshold: the sequential loop (see ssm_sequence.cpp).
  LayerCase big{"S6_big", [] { return torch::nn::AnyModule(tt::ssm::S6(tt::ssm::S6Options(16).d_state(16))); }, 16};
  check_sequence_equals_steps(big, torch::kFloat64, 6, 20, false);
  LayerCase s4{"S4_big", [] { return torch::nn::AnyModule(tt::ssm::S4(16, 16)); }, 16};
  check_sequence_equals_steps(s4, torch::kFloat32, 6, 20, true);
}

TEST(Sequence, MixesWithStepsAndDetachGivesTruncatedBptt) {
  for (const auto& c : layer_cases()) {
    SCOPED_TRACE(c.name);
    torch::manual_seed(9);
    auto a = c.make();
    auto b = a.clone();
    const torch::Tensor xs = torch::randn({15, 2, c.in_features});
    // steps 0-4, sequence 5-9, steps 10-14 == 15 steps; detach after 5 and 10 in both.
    std::vector<torch::Tensor> outs;
    for (int t = 0; t < 5; ++t) outs.push_back(a.forward(xs[t]));
    tt::detach_states(*a.ptr());
    outs.push_back(layer_of(a).forward_sequence(xs.slice(0, 5, 10)));
    tt::detach_states(*a.ptr());
    for (int t = 10; t < 15; ++t) outs.push_back(a.forward(xs[t]));
    torch::Tensor mixed = torch::cat({torch::stack({outs[0], outs[1], outs[2], outs[3], outs[4]}), outs[5],
                                      torch::stack({outs[6], outs[7], outs[8], outs[9], outs[10]})});
    std::vector<torch::Tensor> ref;
    for (int t = 0; t < 15; ++t) {
      if (t == 5 || t == 10) tt::detach_states(*b.ptr());
      ref.push_back(b.forward(xs[t]));
    }
    torch::Tensor stepped = torch::stack(ref);
    expect_close(mixed, stepped, 1e-5, "outputs");
    mixed.pow(2).sum().backward();
    stepped.pow(2).sum().backward();
    auto pa = a.ptr()->parameters();
    auto pb = b.ptr()->parameters();
    for (size_t i = 0; i < pa.size(); ++i) expect_close(pa[i].grad(), pb[i].grad(), 1e-5, "gradient " + std::to_string(i));
  }
}

TEST(Sequence, RunsThroughAModelAndRejectsBadInputs) {
  torch::manual_seed(10);
  torch::nn::Sequential net(torch::nn::Linear(3, 6), tt::rnn::GRU(6, 5), tt::ssm::S6(5, 2),
                            tt::ssm::Mamba(tt::ssm::MambaOptions(5).d_state(2)));
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(net->clone());
  const torch::Tensor xs = torch::randn({8, 2, 3});
  const torch::Tensor seq = tt::forward_sequence(net, xs);
  std::vector<torch::Tensor> outs;
  for (int t = 0; t < 8; ++t) outs.push_back(copy->forward(xs[t]));
  expect_close(seq, torch::stack(outs), 1e-5, "model outputs");
  tt::rnn::GRU gru(3, 4);
  EXPECT_THROW(gru->forward_sequence(torch::randn({0, 2, 3})), tt::ValueError);
  EXPECT_THROW(gru->forward_sequence(torch::randn({5, 2, 4})), tt::ValueError);
  gru->forward_sequence(torch::randn({5, 2, 3}));
  EXPECT_THROW(gru->forward_sequence(torch::randn({5, 3, 3})), tt::ValueError);  // batch changed
}

}  // namespace
