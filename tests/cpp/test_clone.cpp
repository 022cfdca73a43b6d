// clone() of tracetorch layers and of models holding them (tt::Cloneable): a clone continues a
// stream exactly like the original and independently of it, shares no tensor, keeps learnability,
// compiled form and states, and works inside LibTorch's containers.
#include <gtest/gtest.h>

#include <functional>

#include "test_support.h"
#include "tracetorch/tracetorch.h"

namespace {

struct CloneCase {
  std::string name;
  std::function<std::shared_ptr<torch::nn::Module>()> make;  // a module whose forward takes one tensor
  std::vector<int64_t> input_shape;                          // one timestep
};

// input [6] -> lif -> w -> lif (a recurrent edge) ; lif -> output
std::shared_ptr<torch::nn::Module> nir_graph() {
  using tt::io::make_nir_node;
  tt::io::NirGraph g;
  g.type = "NIRGraph";
  g.add_node(make_nir_node("input", "Input").set("shape", torch::tensor({6}, torch::kInt64)));
  g.add_node(make_nir_node("lif", "LIF")
                 .set("tau", torch::full({6}, 5e-3))
                 .set("r", torch::ones({6}))
                 .set("v_leak", torch::zeros({6}))
                 .set("v_threshold", torch::full({6}, 0.1)));
  g.add_node(make_nir_node("w", "Linear").set("weight", torch::randn({6, 6})));
  g.add_node(make_nir_node("output", "Output").set("shape", torch::tensor({6}, torch::kInt64)));
  g.add_edge("input", "lif").add_edge("lif", "w").add_edge("w", "lif").add_edge("lif", "output");
  return tt::nir::import_graph(g, tt::nir::ImportOptions(1e-3)).ptr();
}

std::vector<CloneCase> clone_cases() {
  return {
      {"nir.CubaLIF",
       [] {
         return tt::nir::Neuron(
                    tt::nir::CubaLIFOptions({6}).set("tau_syn", 2e-3).set("tau_mem", 5e-3).set("v_threshold", 0.1))
             .ptr();
       },
       {3, 6}},
      {"nir.Delay", [] { return tt::nir::Delay(tt::nir::DelayOptions({6}, torch::full({6}, 2e-3))).ptr(); }, {3, 6}},
      {"nir.Graph", nir_graph, {3, 6}},
      {"LIB", [] { return tt::snn::LIB(tt::snn::LIBOptions(6).beta_rank(0)).ptr(); }, {3, 6}},
      {"DSRLITS", [] { return tt::snn::DSRLITS(6).ptr(); }, {3, 6}},
      {"SLI_dim1", [] { return tt::snn::SLI(tt::snn::SLIOptions(6).dim(1)).ptr(); }, {2, 6, 4}},
      {"SimpleRNN", [] { return tt::rnn::SimpleRNN(6, 4).ptr(); }, {3, 6}},
      {"GRU", [] { return tt::rnn::GRU(6, 5).ptr(); }, {3, 6}},
      {"LSTM_dim1", [] { return tt::rnn::LSTM(tt::rnn::LSTMOptions(6, 3).dim(1)).ptr(); }, {2, 6, 4}},
      {"S4", [] { return tt::ssm::S4(6, 3).ptr(); }, {3, 6}},
      {"S5_dim1", [] { return tt::ssm::S5(tt::ssm::S5Options(6).d_state(3).dim(1)).ptr(); }, {2, 6, 4}},
      {"S6", [] { return tt::ssm::S6(tt::ssm::S6Options(6).d_state(3).dt_rank(2)).ptr(); }, {3, 6}},
      {"Mamba", [] { return tt::ssm::Mamba(tt::ssm::MambaOptions(6).d_state(3).conv_kernel(3)).ptr(); }, {3, 6}},
      {"Mamba_noconv_dim1",
       [] { return tt::ssm::Mamba(tt::ssm::MambaOptions(6).d_state(2).conv_kernel(1).dim(1)).ptr(); },
       {2, 6, 4}},
      {"Sequential_GRU_S6",
       [] {
         return torch::nn::Sequential(torch::nn::Linear(6, 5), tt::rnn::GRU(5, 4), tt::ssm::S6(4, 2)).ptr();
       },
       {3, 6}},
  };
}

torch::Tensor step(torch::nn::Module& module, const torch::Tensor& x) {
  if (auto* layer = dynamic_cast<tt::Layer*>(&module)) return layer->forward_step(x);
  return dynamic_cast<torch::nn::SequentialImpl&>(module).forward(x);
}

std::vector<torch::Tensor> inputs(const std::vector<int64_t>& shape, int n) {
  torch::manual_seed(3);
  std::vector<torch::Tensor> xs;
  for (int i = 0; i < n; ++i) xs.push_back(torch::randn(shape));
  return xs;
}

// True when no parameter, buffer or state of `a` shares memory with one of `b`.
bool shares_nothing(torch::nn::Module& a, torch::nn::Module& b) {
  std::vector<const void*> seen;
  auto collect = [](torch::nn::Module& m, std::vector<const void*>& out) {
    for (const auto& p : m.parameters()) out.push_back(p.data_ptr());
    for (const auto& p : m.buffers()) out.push_back(p.data_ptr());
    for (const auto& [path, layer] : tt::named_layers(m))
      for (const auto& name : layer->state_names())
        if (layer->state(name).defined()) out.push_back(layer->state(name).data_ptr());
  };
  collect(a, seen);
  std::vector<const void*> other;
  collect(b, other);
  for (const void* p : other)
    if (std::find(seen.begin(), seen.end(), p) != seen.end()) return false;
  return true;
}

TEST(Clone, AMidStreamCloneContinuesIdenticallyAndIndependently) {
  for (const auto& c : clone_cases()) {
    SCOPED_TRACE(c.name);
    auto original = c.make();
    const auto xs = inputs(c.input_shape, 10);
    for (int t = 0; t < 5; ++t) step(*original, xs[t]);
    auto copy = original->clone();
    ASSERT_NE(copy.get(), original.get());
    EXPECT_TRUE(shares_nothing(*original, *copy));
    EXPECT_EQ(original->named_parameters().keys(), copy->named_parameters().keys());
    for (const auto& p : original->named_parameters())
      EXPECT_EQ(copy->named_parameters()[p.key()].requires_grad(), p.value().requires_grad()) << p.key();
    // Both continue the stream; the clone's outputs equal the original's, step by step.
    for (int t = 5; t < 10; ++t) {
      torch::Tensor a = step(*original, xs[t]);
      torch::Tensor b = step(*copy, xs[t]);
      EXPECT_TRUE(torch::equal(a, b)) << "step " << t;
    }
    // Independent: zeroing the original's states leaves the clone's alone.
    tt::zero_states(*original);
    for (const auto& [path, layer] : tt::named_layers(*copy))
      for (const auto& name : layer->state_names()) EXPECT_TRUE(layer->state(name).defined()) << name;
    // ... and an optimizer-style write into the clone's parameters leaves the original's alone.
    torch::NoGradGuard no_grad;
    for (auto& p : copy->parameters()) p.add_(1.0);
    for (const auto& p : original->named_parameters())
      EXPECT_FALSE(torch::equal(p.value(), copy->named_parameters()[p.key()])) << p.key();
  }
}

TEST(Clone, KeepsTheCompiledFormAndTheExactFlag) {
  tt::snn::LIB lib(tt::snn::LIBOptions(4).beta(0.7).learn_threshold(false));
  lib->compile();
  lib->set_exact(true);
  auto copy = std::dynamic_pointer_cast<tt::snn::NeuronImpl>(lib->clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(copy->is_compiled());
  EXPECT_TRUE(copy->exact());
  EXPECT_EQ(tt::state_dict(*copy).keys(), tt::state_dict(*lib).keys());
  EXPECT_TRUE(torch::equal(copy->get("beta"), lib->get("beta")));
  copy->decompile();
  EXPECT_TRUE(copy->is_learnable("beta"));
  EXPECT_FALSE(copy->is_learnable("threshold"));
  EXPECT_TRUE(lib->is_compiled());
}

TEST(Clone, WorksInsideLibTorchContainersAndCloneableParents) {
  torch::manual_seed(0);
  torch::nn::Sequential net(torch::nn::Linear(5, 4), tt::snn::LIB(4), torch::nn::Linear(4, 2), tt::snn::LI(2));
  const auto xs = inputs({3, 5}, 8);
  for (int t = 0; t < 4; ++t) net->forward(xs[t]);
  auto copy = std::dynamic_pointer_cast<torch::nn::SequentialImpl>(net->clone());
  ASSERT_TRUE(copy);
  EXPECT_TRUE(shares_nothing(*net, *copy));
  for (int t = 4; t < 8; ++t) EXPECT_TRUE(torch::equal(net->forward(xs[t]), copy->forward(xs[t])));

  // A user module deriving torch::nn::Cloneable clones its tt children in place (clone_).
  struct NetImpl : torch::nn::Cloneable<NetImpl> {
    NetImpl() { reset(); }
    void reset() override {
      fc = register_module("fc", torch::nn::Linear(5, 3));
      lif = register_module("lif", tt::snn::LIB(3));
    }
    torch::Tensor forward(const torch::Tensor& x) { return lif(fc(x)); }
    torch::nn::Linear fc{nullptr};
    tt::snn::LIB lif{nullptr};
  };
  auto custom = std::make_shared<NetImpl>();
  for (int t = 0; t < 4; ++t) custom->forward(xs[t]);
  auto custom_copy = std::dynamic_pointer_cast<NetImpl>(custom->clone());
  ASSERT_TRUE(custom_copy);
  EXPECT_TRUE(torch::equal(custom_copy->lif->state("mem"), custom->lif->state("mem")));
  EXPECT_NE(custom_copy->lif->state("mem").data_ptr(), custom->lif->state("mem").data_ptr());
  for (int t = 4; t < 8; ++t) EXPECT_TRUE(torch::equal(custom->forward(xs[t]), custom_copy->forward(xs[t])));
}

TEST(Clone, ResetReinitialisesAndForgetsStates) {
  tt::snn::RLIB rlib(tt::snn::RLIBOptions(4).beta(0.5));
  rlib(torch::ones({2, 4}));
  {
    torch::NoGradGuard no_grad;
    rlib->named_parameters()["raw_beta"].fill_(3.0);
  }
  rlib->reset();
  EXPECT_NEAR(rlib->get("beta")[0].item<double>(), 0.5, 1e-6);
  for (const auto& name : rlib->state_names()) EXPECT_FALSE(rlib->state(name).defined()) << name;
  EXPECT_EQ(tt::state_dict(*rlib).keys(), tt::state_dict(*tt::snn::RLIB(tt::snn::RLIBOptions(4))).keys());
}

}  // namespace
