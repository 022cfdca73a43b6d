// Training resumes across languages: Python trains 10 steps and saves a checkpoint by hand, C++
// loads it and trains 10 more, matching Python's own next 10 steps; and the other way round
// (C++ saves, Python's load_state_dict + optimizer.load_state_dict continue). The Python half is
// tests/python/checkpoint_peer.py; the optimizer configurations here mirror its CONFIGS.
#include <gtest/gtest.h>
#include <torch/torch.h>

#include <cmath>
#include <memory>

#include "test_support.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/io/checkpoint.h"
#include "tracetorch/io/pt_file.h"

namespace {

using OptimizerPtr = std::unique_ptr<torch::optim::Optimizer>;

torch::nn::Sequential make_model() {
  return torch::nn::Sequential(torch::nn::Linear(4, 8), torch::nn::Tanh(), torch::nn::Linear(8, 2));
}

OptimizerPtr configured(const std::string& name, torch::nn::Sequential& net) {
  namespace o = torch::optim;
  if (name == "adam")
    return std::make_unique<o::Adam>(
        net->parameters(), o::AdamOptions(0.02).betas({0.8, 0.99}).eps(1e-7).weight_decay(1e-3).amsgrad(true));
  if (name == "adamw")
    return std::make_unique<o::AdamW>(net->parameters(), o::AdamWOptions(0.02).betas({0.9, 0.95}).weight_decay(0.1));
  if (name == "sgd")
    return std::make_unique<o::SGD>(net->parameters(), o::SGDOptions(0.05).momentum(0.9).nesterov(true).weight_decay(1e-4));
  return std::make_unique<o::RMSprop>(net->parameters(), o::RMSpropOptions(0.01).alpha(0.9).momentum(0.5).centered(true));
}

// Other hyperparameters than the file's: loading must restore the saved ones.
OptimizerPtr defaults(const std::string& name, torch::nn::Sequential& net) {
  namespace o = torch::optim;
  if (name == "adam") return std::make_unique<o::Adam>(net->parameters(), o::AdamOptions());
  if (name == "adamw") return std::make_unique<o::AdamW>(net->parameters(), o::AdamWOptions());
  if (name == "sgd") return std::make_unique<o::SGD>(net->parameters(), o::SGDOptions(1.0));
  return std::make_unique<o::RMSprop>(net->parameters(), o::RMSpropOptions());
}

void train(torch::nn::Sequential& net, torch::optim::Optimizer& opt, const torch::Tensor& x, const torch::Tensor& y,
           int steps) {
  for (int i = 0; i < steps; ++i) {
    opt.zero_grad();
    torch::Tensor loss = torch::mse_loss(net->forward(x), y);
    loss.backward();
    opt.step();
  }
}

void expect_close(const tt::io::TensorDict& expected, const tt::io::TensorDict& actual, const std::string& what) {
  ASSERT_EQ(expected.size(), actual.size()) << what;
  for (const auto& item : expected) {
    ASSERT_TRUE(actual.contains(item.key())) << what << ": " << item.key();
    const torch::Tensor& got = actual[item.key()];
    EXPECT_TRUE(torch::allclose(got, item.value(), /*rtol=*/1e-6, /*atol=*/1e-7))
        << what << ": " << item.key() << " differs by " << (got - item.value()).abs().max().item<double>();
  }
}

tt::io::TensorDict detached(const torch::nn::Module& net) {
  tt::io::TensorDict out;
  for (const auto& item : tt::state_dict(net)) out.insert(item.key(), item.value().detach().clone());
  return out;
}

class CheckpointInterop : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  }
  int peer(const std::string& mode, std::string* output) {
    return tt_test::run_command("OMP_NUM_THREADS=1 " + tt_test::python() + " " + tt_test::source_dir() +
                                    "/tests/python/checkpoint_peer.py " + mode + " " + dir_.path() + " " + GetParam(),
                                output);
  }
  tt_test::TempDir dir_;
};

TEST_P(CheckpointInterop, PythonSavesCppResumesBothWays) {
  std::string output;
  ASSERT_EQ(peer("first", &output), 0) << output;
  const tt::io::TensorDict data = tt::io::load_tensor_dict(dir_.file("data.pt"));
  const torch::Tensor x = data["x"], y = data["y"];

  // Python -> C++: the C++ steps 11..20 equal Python's own.
  {
    auto net = make_model();
    auto opt = defaults(GetParam(), net);
    tt::Checkpoint ck = tt::load_checkpoint(*net, *opt, dir_.file("py10.pt"));
    EXPECT_EQ(ck.epoch, 10);
    EXPECT_TRUE(std::isfinite(ck.loss));
    EXPECT_EQ(ck.metadata.at("note"), "from python");
    EXPECT_EQ(ck.metadata.at("lr_history"), nlohmann::ordered_json({0.1, 0.2}));
    train(net, *opt, x, y, 10);
    expect_close(tt::io::load_tensor_dict(dir_.file("py20.pt")), detached(*net), "Python -> C++ (" + GetParam() + ")");
  }

  // C++ -> Python: Python's steps 11..20 equal the C++ ones.
  {
    torch::manual_seed(3);
    auto net = make_model();
    auto opt = configured(GetParam(), net);
    train(net, *opt, x, y, 10);
    tt::Checkpoint ck;
    ck.epoch = 10;
    ck.loss = torch::mse_loss(net->forward(x), y).item<double>();
    ck.metadata["run"] = "interop";
    tt::save_checkpoint(*net, *opt, ck, dir_.file("cpp10.pt"));
    train(net, *opt, x, y, 10);
    ASSERT_EQ(peer("resume", &output), 0) << output;
    expect_close(detached(*net), tt::io::load_tensor_dict(dir_.file("py_resumed20.pt")), "C++ -> Python (" + GetParam() + ")");
  }
}

INSTANTIATE_TEST_SUITE_P(Optimizers, CheckpointInterop, ::testing::Values("adam", "adamw", "sgd", "rmsprop"));

}  // namespace
