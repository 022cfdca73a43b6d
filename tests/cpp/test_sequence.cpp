// tt::forward_sequence over module trees: the same outputs and states as T single steps, with
// stateless modules applied once to the flattened rows, and clear errors where it cannot run.
#include <gtest/gtest.h>

#include "tracetorch/tracetorch.h"

namespace {

torch::nn::Sequential make_net() {
  torch::manual_seed(3);
  return torch::nn::Sequential(torch::nn::Linear(5, 6), tt::snn::LIB(6), torch::nn::Linear(6, 4),
                               tt::Sequential(tt::snn::RLIB(4), torch::nn::Tanh()), tt::snn::LI(4));
}

// Runs x[t] through forward() one step at a time.
torch::Tensor step_loop(torch::nn::Sequential& net, const torch::Tensor& x) {
  std::vector<torch::Tensor> out;
  for (int64_t t = 0; t < x.size(0); ++t) out.push_back(net->forward(x[t]));
  return torch::stack(out);
}

TEST(ForwardSequence, EqualsStepLoopAndLeavesTheSameStates) {
  auto a = make_net();
  auto b = make_net();
  const auto x = torch::randn({7, 3, 5});
  const auto ya = step_loop(a, x);
  const auto yb = tt::forward_sequence(b, x);
  ASSERT_EQ(yb.sizes(), (std::vector<int64_t>{7, 3, 4}));
  EXPECT_TRUE(torch::allclose(ya, yb, 1e-5, 1e-6));
  const auto sa = tt::save_states(*a), sb = tt::save_states(*b);
  ASSERT_EQ(sa.keys(), sb.keys());
  for (const auto& key : sa.keys()) EXPECT_TRUE(torch::allclose(sa[key], sb[key], 1e-5, 1e-6)) << key;
  // ... and step and sequence calls mix: a further step continues from the sequence's states.
  const auto x2 = torch::randn({3, 5});
  EXPECT_TRUE(torch::allclose(a->forward(x2), b->forward(x2), 1e-5, 1e-6));
}

TEST(ForwardSequence, SplitSequencesAndDetachGiveTheSameForwardAsOneCall) {
  auto a = make_net();
  auto b = make_net();
  const auto x = torch::randn({6, 2, 5});
  const auto whole = tt::forward_sequence(a, x);
  const auto first = tt::forward_sequence(b, x.slice(0, 0, 2));
  tt::detach_states(*b);
  const auto second = tt::forward_sequence(b, x.slice(0, 2));
  EXPECT_TRUE(torch::allclose(whole, torch::cat({first, second}), 1e-5, 1e-6));
}

TEST(ForwardSequence, LayerMemberAndHolderFormAgree) {
  tt::snn::LIB a(4), b(4);
  const auto x = torch::randn({5, 2, 4});
  const auto y1 = a->forward_sequence(x);
  const auto y2 = tt::forward_sequence(b, x);
  EXPECT_TRUE(torch::equal(y1, y2));
}

TEST(ForwardSequence, RejectsInputsThatAreNotTimeMajorSequences) {
  auto net = make_net();
  try {
    tt::forward_sequence(net, torch::randn({5}));
    FAIL() << "no error";
  } catch (const tt::ValueError& e) {
    EXPECT_NE(std::string(e.what()).find("time-major input [T, batch, ...]"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("[5]"), std::string::npos) << e.what();
  }
  EXPECT_THROW(tt::forward_sequence(net, torch::randn({0, 2, 5})), tt::ValueError);
}

struct CustomImpl : torch::nn::Module {
  CustomImpl() { neuron = register_module("neuron", tt::snn::LIB(3)); }
  tt::snn::LIB neuron{nullptr};
};
TORCH_MODULE(Custom);

TEST(ForwardSequence, NamesTheCustomModuleItCannotRun) {
  Custom custom;
  try {
    tt::forward_sequence(custom, torch::randn({2, 1, 3}));
    FAIL() << "no error";
  } catch (const tt::Error& e) {
    EXPECT_NE(std::string(e.what()).find("cannot run a custom module that holds tt layers"), std::string::npos)
        << e.what();
  }
}

}  // namespace
