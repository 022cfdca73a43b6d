// Errors a user can trigger: each is a tt::Error subclass whose message names the layer, the
// state or key, and the expected and actual shape or value (issue 8), never a raw c10::Error or
// a LibTorch dispatcher dump, and never a silently wrong result.
#include <gtest/gtest.h>

#include <functional>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

// Runs f, expects an exception of type E, returns its message.
template <typename E>
std::string message_of(const std::function<void()>& f) {
  try {
    f();
  } catch (const E& e) {
    return e.what();
  } catch (const std::exception& e) {
    ADD_FAILURE() << "wrong exception type: " << e.what();
    return "";
  }
  ADD_FAILURE() << "no exception";
  return "";
}

bool contains(const std::string& text, const std::string& part) { return text.find(part) != std::string::npos; }

TEST(Errors, ANeuronRejectsAnInputWithTheWrongNumberOfFeatures) {
  // Python broadcasts a size-1 feature axis (spec 5.1): a [2, 1] input to LIB(4) would return a
  // [2, 4] output. We refuse, naming the layer, the expected count and the input's shape.
  tt::snn::LIB lib(4);
  std::string msg = message_of<tt::ValueError>([&] { lib(torch::ones({2, 1})); });
  EXPECT_TRUE(contains(msg, "snn.LIB(4)")) << msg;
  EXPECT_TRUE(contains(msg, "expected 4 features")) << msg;
  EXPECT_TRUE(contains(msg, "[2, 1]")) << msg;
  EXPECT_FALSE(lib->state("mem").defined());  // nothing was created
  msg = message_of<tt::ValueError>([&] { lib(torch::ones({2, 3})); });
  EXPECT_TRUE(contains(msg, "[2, 3]")) << msg;
  // The feature axis follows dim.
  tt::snn::LI li(tt::snn::LIOptions(4).dim(1));
  msg = message_of<tt::ValueError>([&] { li(torch::ones({2, 3, 4})); });
  EXPECT_TRUE(contains(msg, "axis 1")) << msg;
}

TEST(Errors, ChangingTheBatchSizeWithoutZeroStatesNamesTheLayerAndState) {
  // Python broadcasts a batch-1 state against a larger batch (Quirk Q14); we refuse.
  torch::nn::Sequential net(torch::nn::Linear(3, 4), tt::snn::LIB(4));
  net->forward(torch::ones({1, 3}));
  std::string msg = message_of<tt::ValueError>([&] { net->forward(torch::ones({5, 3})); });
  EXPECT_TRUE(contains(msg, "snn.LIB(4)")) << msg;
  EXPECT_TRUE(contains(msg, "state 'mem' has shape [1, 4]")) << msg;
  EXPECT_TRUE(contains(msg, "[5, 4]")) << msg;
  EXPECT_TRUE(contains(msg, "zero_states")) << msg;
  tt::zero_states(*net);
  EXPECT_EQ(net->forward(torch::ones({5, 3})).sizes(), (std::vector<int64_t>{5, 4}));

  tt::rnn::GRU gru(3, 6);
  gru(torch::ones({2, 3}));
  msg = message_of<tt::ValueError>([&] { gru(torch::ones({4, 3})); });
  EXPECT_TRUE(contains(msg, "rnn.GRU")) << msg;
  EXPECT_TRUE(contains(msg, "state 'H' has shape [2, 6]")) << msg;
}

TEST(Errors, LoadingOntoADeviceThisMachineLacksIsALoadErrorNamingTheKey) {
  if (torch::cuda::is_available()) GTEST_SKIP() << "this machine has CUDA";
  torch::nn::Sequential net(torch::nn::Linear(3, 4), tt::snn::LIB(4));
  net->forward(torch::ones({2, 3}));
  const auto states = tt::save_states(*net);
  const torch::Tensor before = tt::named_layers(*net)[0].second->state("mem").clone();
  std::string msg = message_of<tt::LoadError>(
      [&] { tt::load_states(*net, states, tt::LoadOptions().map_location(torch::Device(torch::kCUDA, 0))); });
  EXPECT_TRUE(contains(msg, "1.mem")) << msg;
  EXPECT_TRUE(contains(msg, "cuda:0")) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;  // one line, no dispatcher dump
  EXPECT_TRUE(torch::equal(tt::named_layers(*net)[0].second->state("mem"), before));  // unchanged

  // Reading a file onto that device fails the same way, naming the file.
  tt_test::TempDir dir;
  tt::save_state_dict(*net, dir.file("w.pt"));
  msg = message_of<tt::Error>(
      [&] { tt::load_state_dict(*net, dir.file("w.pt"), tt::LoadOptions().map_location(torch::Device(torch::kCUDA, 0))); });
  EXPECT_TRUE(contains(msg, dir.file("w.pt"))) << msg;
  EXPECT_TRUE(contains(msg, "cuda")) << msg;
  EXPECT_FALSE(contains(msg, "\n")) << msg;
}

TEST(Errors, OutOfRangeParameterValuesAreNamedWithTheValue) {
  std::string msg = message_of<tt::ValueError>([] { tt::snn::LIB(tt::snn::LIBOptions(4).beta(1.5)); });
  EXPECT_TRUE(contains(msg, "snn.LIB")) << msg;
  EXPECT_TRUE(contains(msg, "beta")) << msg;
  EXPECT_TRUE(contains(msg, "got 1.5")) << msg;
  msg = message_of<tt::ValueError>(
      [] { tt::snn::LIB(tt::snn::LIBOptions(3).threshold(torch::tensor({1.0, -2.0, 3.0}))); });
  EXPECT_TRUE(contains(msg, "threshold")) << msg;
  EXPECT_TRUE(contains(msg, "got -2 at flat index 1")) << msg;
}

TEST(Errors, QuantizerStepSizesMustBePositive) {
  const torch::Tensor x = torch::randn({4});
  std::string msg = message_of<tt::ValueError>([&] { tt::functional::round_ste(x, 0.0); });
  EXPECT_TRUE(contains(msg, "step_size")) << msg;
  msg = message_of<tt::ValueError>([&] { tt::functional::stochastic_round_ste(x, -1.0); });
  EXPECT_TRUE(contains(msg, "step_size")) << msg;
}

}  // namespace
