// Tests for tracetorch/io/model_file.h: one file, no code, the same outputs; Python finds the
// weights; `tracetorch run --model` runs it.
#include <gtest/gtest.h>
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include "test_support.h"
#include "tracetorch/core/arch.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/model.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/io/checkpoint.h"
#include "tracetorch/io/model_file.h"
#include "tracetorch/io/pt_file.h"

namespace {

using json = nlohmann::ordered_json;

const json kArch = json::parse(R"({"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
    {"type": "Linear", "in_features": 3, "out_features": 5, "bias": true},
    {"type": "snn.LIB", "num_neurons": 5, "beta": 0.7},
    {"type": "Linear", "in_features": 5, "out_features": 2, "bias": false},
    {"type": "snn.LI", "num_neurons": 2}]}})");

torch::Tensor run(tt::Sequential& net, const torch::Tensor& x) {
  std::vector<torch::Tensor> out;
  torch::NoGradGuard no_grad;
  for (int64_t t = 0; t < x.size(0); ++t) out.push_back(net->forward(x[t]));
  return torch::stack(out);
}

torch::Tensor inputs() { return torch::cos(torch::arange(4 * 2 * 3, torch::kFloat).reshape({4, 2, 3})); }

TEST(ModelFile, LoadsWithNoCodeAndRunsTheSame) {
  tt_test::TempDir dir;
  torch::manual_seed(5);
  tt::Sequential net = tt::arch::build(kArch);
  run(net, inputs());  // some hidden states
  tt::save_model(*net, dir.file("net.pt"), tt::SaveModelOptions().include_states(true).metadata({{"task", "demo"}}));

  // Without states: both start from zero.
  tt::Sequential fresh = tt::load_model(dir.file("net.pt"));
  EXPECT_EQ(tt::arch::to_json(*fresh), tt::arch::to_json(*net));
  EXPECT_EQ(tt::save_states(*fresh).size(), 0u);
  // With states: both continue from the saved ones.
  tt::Sequential resumed = tt::load_model(dir.file("net.pt"), tt::LoadOptions().load_states(true));
  EXPECT_TRUE(torch::equal(run(resumed, inputs()), run(net, inputs())));
  tt::zero_states(*net);
  EXPECT_TRUE(torch::equal(run(fresh, inputs()), run(net, inputs())));

  // It is a checkpoint too.
  tt::Checkpoint ck = tt::load_checkpoint(*fresh, dir.file("net.pt"));
  EXPECT_EQ(ck.metadata, json({{"task", "demo"}}));
  EXPECT_TRUE(ck.include_states);
}

TEST(ModelFile, Errors) {
  tt_test::TempDir dir;
  torch::nn::Sequential plain(torch::nn::Linear(2, 2), torch::nn::Tanh());
  try {
    tt::save_model(*plain, dir.file("plain.pt"));
    ADD_FAILURE() << "no error";
  } catch (const tt::ArchError& e) {
    EXPECT_NE(std::string(e.what()).find("no architecture type describes"), std::string::npos) << e.what();
  }
  EXPECT_FALSE(std::filesystem::exists(dir.file("plain.pt")));

  tt::save_checkpoint(*plain, tt::Checkpoint(), dir.file("ck.pt"));  // no architecture in it
  try {
    tt::load_model(dir.file("ck.pt"));
    ADD_FAILURE() << "no error";
  } catch (const tt::FileError& e) {
    EXPECT_NE(std::string(e.what()).find("no 'architecture'"), std::string::npos) << e.what();
  }

  // An architecture whose weights do not fit: a LoadError naming the key.
  tt::Sequential net = tt::arch::build(kArch);
  tt::save_model(*net, dir.file("net.pt"));
  c10::IValue file = tt::io::load_pt(dir.file("net.pt"));
  file.toGenericDict().at("model_state_dict").toGenericDict().insert_or_assign("0.weight", torch::zeros({1, 1}));
  tt::io::save_pt(file, dir.file("bad.pt"));
  try {
    tt::load_model(dir.file("bad.pt"));
    ADD_FAILURE() << "no error";
  } catch (const tt::LoadError& e) {
    EXPECT_NE(std::string(e.what()).find("size mismatch for 0.weight"), std::string::npos) << e.what();
  }
}

TEST(ModelFile, PythonFindsTheWeightsAndTheCliRunsIt) {
  if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  tt_test::TempDir dir;
  torch::manual_seed(6);
  tt::Sequential net = tt::arch::build(kArch);
  run(net, inputs());
  tt::save_model(*net, dir.file("net.pt"), tt::SaveModelOptions().include_states(true));
  tt::io::save_tensor(inputs(), dir.file("x.pt"));
  std::string out;
  int rc = tt_test::run_python("import torch\n"
                               "ck = torch.load('" + dir.file("net.pt") + "')\n"
                               "assert list(ck['model_state_dict'])[0] == '0.weight', list(ck['model_state_dict'])\n"
                               "assert ck['architecture']['model']['children'][1]['type'] == 'snn.LIB'\n"
                               "assert '1.mem' in ck['model_states'], ck['model_states'].keys()\n",
                               &out);
  ASSERT_EQ(rc, 0) << out;

  const std::string cli = tt_test::binary_dir() + "/tools/tracetorch";
  rc = tt_test::run_command(cli + " run --model " + dir.file("net.pt") + " --model-states --inputs " + dir.file("x.pt") +
                                " --outputs " + dir.file("y.pt"),
                            &out);
  ASSERT_EQ(rc, 0) << out;
  EXPECT_TRUE(torch::allclose(tt::io::load_tensor(dir.file("y.pt")), run(net, inputs()), 1e-6, 1e-7));

  rc = tt_test::run_command(cli + " run --model " + dir.file("x.pt") + " --inputs " + dir.file("x.pt"), &out);
  EXPECT_EQ(rc, 1);
  EXPECT_NE(out.find("not a model file"), std::string::npos) << out;
}

}  // namespace
