// Tests for tracetorch/io/optimizer_state.h and tracetorch/io/checkpoint.h: PyTorch's optimizer
// layout, round trips that resume exactly, transactional loads, metadata, RNG state, errors.
#include <gtest/gtest.h>

#include "error_of.h"
#include <nlohmann/json.hpp>
#include <torch/torch.h>

#include <memory>
#include <filesystem>
#include <regex>
#include <sstream>

#include "test_support.h"
#include "tracetorch/core/arch.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/model.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/io/checkpoint.h"
#include "tracetorch/io/optimizer_state.h"
#include "tracetorch/io/pt_file.h"

namespace {

using json = nlohmann::ordered_json;
using OptimizerPtr = std::unique_ptr<torch::optim::Optimizer>;

const json kArch = json::parse(R"({"format": "tt-arch/1", "model": {"type": "Sequential", "children": [
    {"type": "Linear", "in_features": 3, "out_features": 4, "bias": true},
    {"type": "snn.LIB", "num_neurons": 4},
    {"type": "Linear", "in_features": 4, "out_features": 2, "bias": true}]}})");

tt::Sequential make_net(uint64_t seed) {
  torch::manual_seed(seed);
  return tt::arch::build(kArch);
}

OptimizerPtr make_optimizer(const std::string& name, torch::nn::Module& net) {
  namespace o = torch::optim;
  if (name == "adam") return std::make_unique<o::Adam>(net.parameters(), o::AdamOptions(0.01).amsgrad(true));
  if (name == "adamw") return std::make_unique<o::AdamW>(net.parameters(), o::AdamWOptions(0.01));
  if (name == "sgd") return std::make_unique<o::SGD>(net.parameters(), o::SGDOptions(0.1).momentum(0.9));
  if (name == "sgd-plain") return std::make_unique<o::SGD>(net.parameters(), o::SGDOptions(0.1));
  return std::make_unique<o::RMSprop>(net.parameters(), o::RMSpropOptions(0.01).momentum(0.3).centered(true));
}

torch::Tensor inputs() { return torch::sin(torch::arange(5 * 6 * 3, torch::kFloat).reshape({5, 6, 3}) * 0.3); }

void train(tt::Sequential& net, torch::optim::Optimizer& opt, int steps) {
  const torch::Tensor x = inputs();
  for (int i = 0; i < steps; ++i) {
    tt::zero_states(*net);
    opt.zero_grad();
    torch::Tensor out;
    for (int64_t t = 0; t < x.size(0); ++t) out = net->forward(x[t]);
    out.pow(2).mean().backward();
    opt.step();
  }
}

std::vector<torch::Tensor> params(const torch::nn::Module& net) {
  std::vector<torch::Tensor> out;
  for (const auto& p : net.parameters()) out.push_back(p.detach().clone());
  return out;
}

void expect_equal(const std::vector<torch::Tensor>& a, const std::vector<torch::Tensor>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) EXPECT_TRUE(torch::equal(a[i], b[i])) << "parameter " << i;
}

// ---- optimizer state ---------------------------------------------------------------------------

class OptimizerState : public ::testing::TestWithParam<std::string> {};

TEST_P(OptimizerState, FileRoundTripResumesExactly) {
  tt_test::TempDir dir;
  auto net = make_net(1);
  auto opt = make_optimizer(GetParam(), *net);
  train(net, *opt, 3);
  tt::save_state_dict(*net, dir.file("w.pt"));
  tt::save_optimizer_state_dict(*opt, dir.file("opt.pt"));

  auto copy = make_net(2);
  auto copy_opt = make_optimizer(GetParam(), *copy);
  tt::load_state_dict(*copy, dir.file("w.pt"));
  tt::LoadReport report = tt::load_optimizer_state_dict(*copy_opt, dir.file("opt.pt"));
  EXPECT_EQ(report.loaded.size(), GetParam() == "sgd-plain" ? 0u : net->parameters().size());

  train(net, *opt, 3);
  train(copy, *copy_opt, 3);
  expect_equal(params(*net), params(*copy));
}

TEST_P(OptimizerState, PythonLayout) {
  auto net = make_net(1);
  auto opt = make_optimizer(GetParam(), *net);
  train(net, *opt, 2);
  const auto sd = tt::optimizer_state_dict(*opt).toGenericDict();
  const auto state = sd.at("state").toGenericDict();
  const auto groups = sd.at("param_groups").toList();
  ASSERT_EQ(groups.size(), 1u);
  const auto group = groups.get(0).toGenericDict();
  EXPECT_DOUBLE_EQ(group.at("lr").toDouble(), GetParam() == "sgd" || GetParam() == "sgd-plain" ? 0.1 : 0.01);
  const auto ids = group.at("params").toList();
  ASSERT_EQ(ids.size(), net->parameters().size());
  for (size_t i = 0; i < ids.size(); ++i) EXPECT_EQ(ids.get(i).toInt(), static_cast<int64_t>(i));
  if (GetParam() == "sgd-plain") {
    EXPECT_EQ(state.size(), 0u);  // LibTorch keeps no state without momentum; Python's None is the same
    return;
  }
  ASSERT_EQ(state.size(), ids.size());
  EXPECT_TRUE(state.keyType()->kind() == c10::TypeKind::IntType);
  const auto first = state.at(0).toGenericDict();
  const torch::Tensor weight = net->parameters()[0];
  if (GetParam() == "adam" || GetParam() == "adamw") {
    EXPECT_TRUE(group.at("betas").isTuple());
    EXPECT_TRUE(first.at("step").isTensor());
    EXPECT_EQ(first.at("step").toTensor().item<float>(), 2.0f);
    EXPECT_EQ(first.at("exp_avg").toTensor().sizes(), weight.sizes());
    EXPECT_EQ(first.contains("max_exp_avg_sq"), GetParam() == "adam");
  } else if (GetParam() == "sgd") {
    EXPECT_DOUBLE_EQ(group.at("momentum").toDouble(), 0.9);
    EXPECT_EQ(first.at("momentum_buffer").toTensor().sizes(), weight.sizes());
  } else {
    EXPECT_EQ(first.at("step").toInt(), 2);  // RMSprop's step is an int in Python
    EXPECT_TRUE(first.contains("grad_avg"));
    EXPECT_TRUE(first.contains("momentum_buffer"));
  }
}

INSTANTIATE_TEST_SUITE_P(Families, OptimizerState, ::testing::Values("adam", "adamw", "sgd", "sgd-plain", "rmsprop"));

TEST(OptimizerStateErrors, MismatchesChangeNothing) {
  auto net = make_net(1);
  auto opt = make_optimizer("adam", *net);
  train(net, *opt, 2);
  c10::IValue good = tt::optimizer_state_dict(*opt);

  auto other = make_net(2);
  auto other_opt = make_optimizer("adam", *other);
  train(other, *other_opt, 1);
  const c10::IValue before = tt::io::load_pt_bytes(tt::io::save_pt_bytes(tt::optimizer_state_dict(*other_opt)), "x");

  // A wrong shape: named with the parameter index, the key and both shapes.
  c10::IValue bad = tt::io::load_pt_bytes(tt::io::save_pt_bytes(good), "copy");
  bad.toGenericDict().at("state").toGenericDict().at(1).toGenericDict().insert_or_assign("exp_avg", torch::zeros({7}));
  std::string msg = error_of<tt::LoadError>([&] { tt::load_optimizer_state_dict(*other_opt, bad); });
  EXPECT_NE(msg.find("state[1].exp_avg has shape [7], its parameter has shape [4]"), std::string::npos) << msg;
  EXPECT_NE(msg.find("nothing was changed"), std::string::npos) << msg;

  // A group of the wrong size.
  auto small = torch::nn::Linear(3, 4);
  torch::optim::Adam small_opt(small->parameters(), torch::optim::AdamOptions(0.5));
  msg = error_of<tt::LoadError>([&] { tt::load_optimizer_state_dict(small_opt, good); });
  EXPECT_NE(msg.find("param_groups[0] has 7 parameters, the optimizer's group has 2"), std::string::npos) << msg;
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::AdamOptions&>(small_opt.param_groups()[0].options()).lr(), 0.5);

  // amsgrad without max_exp_avg_sq, maximize=True, a state index no group names.
  bad = tt::io::load_pt_bytes(tt::io::save_pt_bytes(good), "copy");
  EXPECT_EQ(bad.toGenericDict().at("state").toGenericDict().at(0).toGenericDict().erase("max_exp_avg_sq"), 1u);
  bad.toGenericDict().at("param_groups").toList().get(0).toGenericDict().insert_or_assign("maximize", true);
  bad.toGenericDict().at("state").toGenericDict().insert_or_assign(42, c10::impl::GenericDict(c10::StringType::get(), c10::AnyType::get()));
  msg = error_of<tt::LoadError>([&] { tt::load_optimizer_state_dict(*other_opt, bad); });
  EXPECT_NE(msg.find("state[0] has no 'max_exp_avg_sq'"), std::string::npos) << msg;
  EXPECT_NE(msg.find("maximize is True"), std::string::npos) << msg;
  EXPECT_NE(msg.find("state[42] names no parameter"), std::string::npos) << msg;

  // None of it changed the optimizer.
  const auto after = tt::optimizer_state_dict(*other_opt).toGenericDict().at("state").toGenericDict();
  const auto expected = before.toGenericDict().at("state").toGenericDict();
  ASSERT_EQ(after.size(), expected.size());
  for (const auto& entry : expected)
    EXPECT_TRUE(torch::equal(after.at(entry.key()).toGenericDict().at("exp_avg").toTensor(),
                             entry.value().toGenericDict().at("exp_avg").toTensor()));

  // Another family's state is not silently taken: SGD has no 'step' or 'exp_avg'.
  torch::optim::SGD sgd(net->parameters(), torch::optim::SGDOptions(0.1).momentum(0.9));
  msg = error_of<tt::LoadError>([&] { tt::load_optimizer_state_dict(sgd, good); });
  EXPECT_NE(msg.find("has no 'momentum_buffer'"), std::string::npos) << msg;

  torch::optim::Adagrad adagrad(net->parameters());
  msg = error_of<tt::ValueError>([&] { tt::optimizer_state_dict(adagrad); });
  EXPECT_NE(msg.find("Adam, AdamW, SGD and RMSprop"), std::string::npos) << msg;
}

TEST(OptimizerStateErrors, PythonOnlyOptionsAreReported) {
  auto net = make_net(1);
  auto opt = make_optimizer("sgd", *net);
  c10::IValue sd = tt::optimizer_state_dict(*opt);
  auto group = sd.toGenericDict().at("param_groups").toList().get(0).toGenericDict();
  group.insert("initial_lr", 0.5);
  group.insert("foreach", c10::IValue());
  group.insert("mystery", 3);
  group.insert_or_assign("lr", int64_t{2});  // Python ints are numbers too
  tt::LoadReport report = tt::load_optimizer_state_dict(*opt, sd);
  EXPECT_DOUBLE_EQ(static_cast<torch::optim::SGDOptions&>(opt->param_groups()[0].options()).lr(), 2.0);
  ASSERT_EQ(report.warnings.size(), 2u);
  EXPECT_NE(report.warnings[0].find("initial_lr"), std::string::npos);
  EXPECT_NE(report.warnings[1].find("mystery is not a SGD option"), std::string::npos);
}

// ---- checkpoints -------------------------------------------------------------------------------

TEST(Checkpoint, RoundTripResumesExactly) {
  tt_test::TempDir dir;
  auto net = make_net(1);
  auto opt = make_optimizer("adam", *net);
  train(net, *opt, 3);
  net->forward(inputs()[0]);  // states to save
  tt::Checkpoint ck;
  ck.epoch = 7;
  ck.loss = 0.125;
  ck.metadata = json::parse(R"({"run": "a", "lr": [0.1, 0.01], "nested": {"ok": true, "none": null, "n": 3}})");
  ck.include_states = true;
  tt::save_checkpoint(*net, *opt, ck, dir.file("ck.pt"));
  const tt::io::TensorDict states = tt::save_states(*net);

  auto copy = make_net(2);
  auto copy_opt = make_optimizer("adam", *copy);
  tt::Checkpoint back = tt::load_checkpoint(*copy, *copy_opt, dir.file("ck.pt"), tt::LoadOptions().load_states(true));
  EXPECT_EQ(back.epoch, 7);
  EXPECT_EQ(back.loss, 0.125);
  EXPECT_EQ(back.metadata, ck.metadata);
  EXPECT_TRUE(back.include_states);
  EXPECT_EQ(back.tracetorch_version, tt::tracetorch_version());
  EXPECT_EQ(back.torch_version, tt::torch_version());
  EXPECT_TRUE(std::regex_match(back.timestamp, std::regex(R"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ)"))) << back.timestamp;
  ASSERT_TRUE(back.architecture.has_value());
  EXPECT_EQ(*back.architecture, tt::arch::to_json(*net));
  EXPECT_FALSE(back.rng_state.has_value());
  for (const auto& item : states) EXPECT_TRUE(torch::equal(tt::save_states(*copy)[item.key()], item.value())) << item.key();

  train(net, *opt, 2);
  train(copy, *copy_opt, 2);
  expect_equal(params(*net), params(*copy));

  // Without an optimizer (inference) and without states.
  auto third = make_net(3);
  tt::Checkpoint plain = tt::load_checkpoint(*third, dir.file("ck.pt"));
  EXPECT_TRUE(plain.include_states);  // in the file, but not asked for
  EXPECT_EQ(tt::save_states(*third).size(), 0u);
}

TEST(Checkpoint, PythonReadsKeysAndValues) {
  if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  tt_test::TempDir dir;
  auto net = make_net(1);
  auto opt = make_optimizer("rmsprop", *net);
  train(net, *opt, 1);
  tt::Checkpoint ck;
  ck.epoch = 2;
  ck.loss = 1.5;
  ck.metadata["tags"] = {"x", 1, false};
  ck.include_rng_state = true;
  tt::save_checkpoint(*net, *opt, ck, dir.file("ck.pt"));
  std::string out;
  int rc = tt_test::run_python(
      "import torch\n"
      "ck = torch.load('" + dir.file("ck.pt") + "')\n"
      "assert list(ck)[:4] == ['epoch', 'model_state_dict', 'optimizer_state_dict', 'loss'], list(ck)\n"
      "assert ck['epoch'] == 2 and ck['loss'] == 1.5, ck\n"
      "assert ck['metadata'] == {'tags': ['x', 1, False]}, ck['metadata']\n"
      "assert ck['architecture']['format'] == 'tt-arch/1'\n"
      "assert ck['versions']['torch'].startswith('1.') or ck['versions']['torch'].startswith('2.')\n"
      "groups = ck['optimizer_state_dict']['param_groups']\n"
      "assert sorted(ck['optimizer_state_dict']['state']) == groups[0]['params'] == list(range(7)), groups\n"
      "torch.set_rng_state(ck['rng_state'])\n"
      "print(torch.rand(3).tolist())\n",
      &out);
  ASSERT_EQ(rc, 0) << out;
  // Python's generator, restored from our state, continues exactly as ours does.
  tt::set_cpu_rng_state(tt::load_checkpoint(*net, dir.file("ck.pt")).rng_state.value());
  const torch::Tensor r = torch::rand({3});
  std::istringstream printed(out.substr(out.find('[') + 1));
  for (int64_t i = 0; i < 3; ++i) {
    double v = 0;
    char sep = 0;
    printed >> v >> sep;
    EXPECT_EQ(v, r[i].item<double>()) << out;
  }
}

TEST(Checkpoint, RngStateRestoresTheSequence) {
  const torch::Tensor state = tt::cpu_rng_state();
  const torch::Tensor a = torch::randn({4});
  tt::set_cpu_rng_state(state);
  EXPECT_TRUE(torch::equal(torch::randn({4}), a));
  std::string msg = error_of<tt::ValueError>([] { tt::set_cpu_rng_state(torch::zeros({3})); });
  EXPECT_NE(msg.find("expected a 1-d uint8 tensor"), std::string::npos) << msg;
  msg = error_of<tt::ValueError>([] { tt::set_cpu_rng_state(torch::zeros({3}, torch::kByte)); });
  EXPECT_NE(msg.find("not a CPU generator state"), std::string::npos) << msg;
}

TEST(Checkpoint, MismatchChangesNeitherModelNorOptimizer) {
  tt_test::TempDir dir;
  auto net = make_net(1);
  auto opt = make_optimizer("adam", *net);
  train(net, *opt, 2);
  net->forward(inputs()[0]);
  tt::Checkpoint ck;
  ck.include_states = true;
  tt::save_checkpoint(*net, *opt, ck, dir.file("ck.pt"));

  // The same file, with one optimizer tensor of the wrong shape.
  c10::IValue file = tt::io::load_pt(dir.file("ck.pt"));
  c10::IValue opt_sd = file.toGenericDict().at("optimizer_state_dict");
  opt_sd.toGenericDict().at("state").toGenericDict().at(2).toGenericDict().insert_or_assign("exp_avg_sq", torch::zeros({1}));
  tt::io::save_pt(file, dir.file("bad_opt.pt"));
  // And one with a model tensor of the wrong shape (the states and optimizer are fine).
  file = tt::io::load_pt(dir.file("ck.pt"));
  file.toGenericDict().at("model_state_dict").toGenericDict().insert_or_assign("2.weight", torch::zeros({9, 9}));
  tt::io::save_pt(file, dir.file("bad_model.pt"));

  auto other = make_net(2);
  auto other_opt = make_optimizer("adam", *other);
  train(other, *other_opt, 1);
  other->forward(inputs()[1]);
  const auto weights = params(*other);
  const auto states = tt::save_states(*other);
  const std::string opt_bytes = tt::io::save_pt_bytes(tt::optimizer_state_dict(*other_opt));
  auto unchanged = [&] {
    expect_equal(params(*other), weights);
    for (const auto& item : states) EXPECT_TRUE(torch::equal(tt::save_states(*other)[item.key()], item.value()));
    EXPECT_EQ(tt::io::save_pt_bytes(tt::optimizer_state_dict(*other_opt)), opt_bytes);
  };
  const auto with_states = tt::LoadOptions().load_states(true);
  std::string msg = error_of<tt::LoadError>([&] { tt::load_checkpoint(*other, *other_opt, dir.file("bad_opt.pt"), with_states); });
  EXPECT_NE(msg.find("'optimizer_state_dict' (Adam)"), std::string::npos) << msg;
  EXPECT_NE(msg.find("state[2].exp_avg_sq has shape [1], its parameter has shape [4]"), std::string::npos) << msg;
  unchanged();
  msg = error_of<tt::LoadError>([&] { tt::load_checkpoint(*other, *other_opt, dir.file("bad_model.pt"), with_states); });
  EXPECT_NE(msg.find("size mismatch for 2.weight"), std::string::npos) << msg;
  unchanged();

  // A file without an optimizer's state: an error when strict, a warning otherwise.
  tt::save_checkpoint(*net, tt::Checkpoint(), dir.file("no_opt.pt"));
  msg = error_of<tt::LoadError>([&] { tt::load_checkpoint(*other, *other_opt, dir.file("no_opt.pt")); });
  EXPECT_NE(msg.find("no 'optimizer_state_dict'"), std::string::npos) << msg;
  unchanged();
  tt::Checkpoint loose = tt::load_checkpoint(*other, *other_opt, dir.file("no_opt.pt"), tt::LoadOptions().strict(false));
  ASSERT_EQ(loose.report.warnings.size(), 1u);
  EXPECT_NE(loose.report.warnings[0].find("optimizer is left as it is"), std::string::npos);
  expect_equal(params(*other), params(*net));
}

TEST(Checkpoint, ReadsHandWrittenPythonDicts) {
  tt_test::TempDir dir;
  auto net = make_net(1);
  // What a Python user writes: a 'state_dict' key, the loss as a tensor, extra keys.
  c10::impl::GenericDict file(c10::StringType::get(), c10::AnyType::get());
  file.insert("state_dict", tt::io::to_ivalue(tt::state_dict(*net)));
  file.insert("epoch", int64_t{4});
  file.insert("loss", torch::tensor(0.5));
  file.insert("best_acc", 0.75);
  file.insert("weights_copy", torch::zeros({2}));
  tt::io::save_pt(file, dir.file("py.pt"));
  auto copy = make_net(2);
  tt::Checkpoint ck = tt::load_checkpoint(*copy, dir.file("py.pt"));
  EXPECT_EQ(ck.epoch, 4);
  EXPECT_EQ(ck.loss, 0.5);
  EXPECT_EQ(ck.metadata, json::parse(R"({"best_acc": 0.75})"));
  ASSERT_EQ(ck.report.warnings.size(), 1u);
  EXPECT_NE(ck.report.warnings[0].find("'weights_copy'"), std::string::npos);
  expect_equal(params(*copy), params(*net));

  tt::io::save_tensor_dict(tt::state_dict(*net), dir.file("plain.pt"));
  std::string msg = error_of<tt::FileError>([&] { tt::load_checkpoint(*copy, dir.file("plain.pt")); });
  EXPECT_NE(msg.find("no 'model_state_dict'"), std::string::npos) << msg;
  msg = error_of<tt::LoadError>([&] { tt::load_checkpoint(*copy, dir.file("py.pt"), tt::LoadOptions().load_states(true)); });
  EXPECT_NE(msg.find("no 'model_states'"), std::string::npos) << msg;
}

TEST(Checkpoint, MetadataMustBeJsonObject) {
  tt_test::TempDir dir;
  auto net = make_net(1);
  tt::Checkpoint ck;
  ck.metadata = json::array({1, 2});
  std::string msg = error_of<tt::ValueError>([&] { tt::save_checkpoint(*net, ck, dir.file("x.pt")); });
  EXPECT_NE(msg.find("metadata must be a JSON object"), std::string::npos) << msg;
  ck.metadata = json::object({{"big", uint64_t{1} << 63}});
  msg = error_of<tt::ValueError>([&] { tt::save_checkpoint(*net, ck, dir.file("x.pt")); });
  EXPECT_NE(msg.find("does not fit in int64"), std::string::npos) << msg;
  EXPECT_FALSE(std::filesystem::exists(dir.file("x.pt")));
}

}  // namespace
