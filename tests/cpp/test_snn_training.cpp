// Training SNNs: gradients through time (checked against central finite differences in float64
// for every raw parameter of all 32 presets), truncated / online learning with detach_states,
// optimizer updates seen by inference, and a small network that learns a temporal task.
#include <gtest/gtest.h>

#include <cmath>

#include "tracetorch/tracetorch.h"

namespace {

const int64_t kNeurons = 3;

// Non-default float64 rank-1 values: different per neuron and per parameter.
tt::snn::NeuronOptions float64_options(const std::string& name) {
  auto o = tt::snn::preset_options(name, kNeurons);
  size_t index = 0;
  for (const auto& spec : tt::snn::neuron_parameters(o)) {
    std::vector<double> v;
    for (int64_t i = 0; i < kNeurons; ++i) {
      const double t = static_cast<double>((index + static_cast<size_t>(i)) % 3);  // 0, 1, 2
      switch (spec.transform) {
        case tt::Transform::Decay: v.push_back(0.6 + 0.12 * t); break;
        case tt::Transform::Threshold: v.push_back(0.7 + 0.3 * t); break;
        case tt::Transform::Bias: v.push_back(-0.15 + 0.17 * t); break;
        case tt::Transform::Identity:
          v.push_back(spec.name.find("scale") != std::string::npos ? 0.8 + 0.25 * t : 0.5 - 0.45 * t);
          break;
      }
    }
    o.set_value(spec.name, torch::tensor(v, torch::kFloat64));
    ++index;
  }
  return o;
}

// sum_t <y_t, w_t> from zero states; x and w are [T, batch, n].
torch::Tensor sequence_loss(tt::snn::Neuron& layer, const torch::Tensor& x, const torch::Tensor& w,
                            const torch::Tensor& x0 = {}) {
  layer->zero_states();
  torch::Tensor loss = torch::zeros({}, torch::kFloat64);
  for (int64_t t = 0; t < x.size(0); ++t) loss = loss + (layer(t == 0 && x0.defined() ? x0 : x[t]) * w[t]).sum();
  return loss;
}

bool close(double analytic, double numeric) { return std::abs(analytic - numeric) <= 1e-6 + 1e-5 * std::abs(numeric); }

TEST(SnnTraining, GradientsOfEveryRawParameterMatchFiniteDifferencesForAllPresets) {
  torch::manual_seed(0);
  const int64_t T = 6, batch = 2;
  const double eps = 1e-6;
  for (const auto& name : tt::snn::preset_names()) {
    tt::snn::Neuron layer(float64_options(name));
    const auto x = torch::randn({T, batch, kNeurons}, torch::kFloat64) * 1.5;
    const auto w = torch::randn({T, batch, kNeurons}, torch::kFloat64);
    auto x0 = x[0].clone().requires_grad_(true);
    for (auto& p : layer->parameters()) p.mutable_grad() = torch::Tensor();
    sequence_loss(layer, x, w, x0).backward();

    const auto params = layer->named_parameters();
    ASSERT_EQ(params.size(), tt::snn::neuron_parameters(layer->options()).size()) << name;
    size_t checked = 0;
    torch::NoGradGuard no_grad;
    for (const auto& item : params) {
      auto p = item.value();
      ASSERT_EQ(p.dtype(), torch::kFloat64) << name;
      ASSERT_TRUE(p.grad().defined()) << name << "." << item.key();
      auto flat = p.view({-1});
      const auto grad = p.grad().view({-1});
      for (int64_t i = 0; i < flat.numel(); ++i) {
        flat[i].add_(eps);
        const double plus = sequence_loss(layer, x, w).item<double>();
        flat[i].sub_(2 * eps);
        const double minus = sequence_loss(layer, x, w).item<double>();
        flat[i].add_(eps);
        const double numeric = (plus - minus) / (2 * eps);
        const double analytic = grad[i].item<double>();
        EXPECT_TRUE(close(analytic, numeric)) << name << "." << item.key() << "[" << i << "]: autograd " << analytic
                                              << " vs finite differences " << numeric;
        ++checked;
      }
    }
    EXPECT_GT(checked, 0u);
    // The first input's gradient has come back through every later step.
    ASSERT_TRUE(x0.grad().defined()) << name;
    auto x0_flat = x0.detach().clone();
    for (int64_t i = 0; i < x0_flat.numel(); ++i) {
      auto v = x0_flat.view({-1});
      v[i].add_(eps);
      const double plus = sequence_loss(layer, x, w, x0_flat).item<double>();
      v[i].sub_(2 * eps);
      const double minus = sequence_loss(layer, x, w, x0_flat).item<double>();
      v[i].add_(eps);
      const double numeric = (plus - minus) / (2 * eps);
      EXPECT_TRUE(close(x0.grad().view({-1})[i].item<double>(), numeric)) << name << " x0[" << i << "]";
    }
  }
}

// Linear -> SRLIB -> Linear -> DLI, float64, managed as a model.
tt::Sequential small_model() {
  tt::Sequential net;
  net->push_back(torch::nn::Linear(3, 5));
  net->push_back(tt::snn::SRLIB(tt::snn::SRLIBOptions(5).rec_weight(0.4).beta(0.8)));
  net->push_back(torch::nn::Linear(5, 2));
  net->push_back(tt::snn::DLI(2));
  net->to(torch::kFloat64);
  return net;
}

TEST(SnnTraining, BPTTGradientsReachEveryEarlierInputOfTheSequence) {
  torch::manual_seed(1);
  auto net = small_model();
  const int64_t T = 8;
  std::vector<torch::Tensor> xs;
  for (int64_t t = 0; t < T; ++t) xs.push_back((torch::randn({4, 3}, torch::kFloat64) * 2).requires_grad_(true));
  tt::zero_states(*net);
  torch::Tensor y;
  for (const auto& x : xs) y = net->forward(x);
  y.pow(2).sum().backward();  // a loss on the last output only
  for (int64_t t = 0; t < T; ++t) {
    ASSERT_TRUE(xs[t].grad().defined()) << t;
    EXPECT_GT(xs[t].grad().abs().sum().item<double>(), 0.0) << t;
  }
  // ... and they are the true derivatives: finite differences on the first step's input
  torch::NoGradGuard no_grad;
  auto loss_with = [&](const torch::Tensor& first) {
    tt::zero_states(*net);
    torch::Tensor out;
    for (int64_t t = 0; t < T; ++t) out = net->forward(t == 0 ? first : xs[t].detach());
    return out.pow(2).sum().item<double>();
  };
  auto x0 = xs[0].detach().clone();
  for (int64_t i = 0; i < x0.numel(); i += 3) {
    auto v = x0.view({-1});
    v[i].add_(1e-6);
    const double plus = loss_with(x0);
    v[i].sub_(2e-6);
    const double minus = loss_with(x0);
    v[i].add_(1e-6);
    EXPECT_TRUE(close(xs[0].grad().view({-1})[i].item<double>(), (plus - minus) / 2e-6)) << i;
  }
}

TEST(SnnTraining, DetachStatesStopsTheGradientButNotTheValues) {
  torch::manual_seed(2);
  auto net = small_model();
  const int64_t T = 9, k = 3;  // windows [0,3) [3,6) [6,9)
  std::vector<torch::Tensor> xs;
  for (int64_t t = 0; t < T; ++t) xs.push_back((torch::randn({4, 3}, torch::kFloat64) * 2).requires_grad_(true));

  // values: the truncated run computes exactly what the untruncated one computes
  std::vector<torch::Tensor> full;
  tt::zero_states(*net);
  for (const auto& x : xs) full.push_back(net->forward(x).detach());
  tt::zero_states(*net);
  torch::Tensor y;
  tt::io::TensorDict states_at_last_window;
  for (int64_t t = 0; t < T; ++t) {
    if (t > 0 && t % k == 0) tt::detach_states(*net);
    if (t == 2 * k) states_at_last_window = tt::save_states(*net);
    y = net->forward(xs[t]);
    EXPECT_TRUE(torch::equal(y.detach(), full[t])) << t;
  }
  for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
  y.pow(2).sum().backward();
  // gradient stops at the last detach: inputs before step 2k get none
  for (int64_t t = 0; t < T; ++t) {
    if (t < 2 * k)
      EXPECT_FALSE(xs[t].grad().defined() && xs[t].grad().abs().sum().item<double>() > 0) << t;
    else
      EXPECT_TRUE(xs[t].grad().defined() && xs[t].grad().abs().sum().item<double>() > 0) << t;
  }
  // and the parameter gradients are those of a run that starts from the detached states
  std::vector<torch::Tensor> grads;
  for (const auto& p : net->parameters()) grads.push_back(p.grad().clone());
  for (auto& p : net->parameters()) p.mutable_grad() = torch::Tensor();
  tt::zero_states(*net);
  tt::load_states(*net, states_at_last_window);
  torch::Tensor y2;
  for (int64_t t = 2 * k; t < T; ++t) y2 = net->forward(xs[t].detach());
  y2.pow(2).sum().backward();
  const auto params = net->parameters();
  for (size_t i = 0; i < params.size(); ++i) EXPECT_TRUE(torch::allclose(params[i].grad(), grads[i], 1e-12, 1e-14)) << i;
}

TEST(SnnTraining, OptimizerUpdatesAreSeenByInferenceWithoutGrad) {
  // Inference under NoGradGuard may reuse activated parameters; an optimizer step must still be
  // visible to the next no-grad forward (SGD and Adam update in place).
  torch::manual_seed(3);
  for (int which = 0; which < 2; ++which) {
    tt::snn::DSRLITS layer(4);
    const auto x = torch::randn({6, 2, 4}) * 2;
    auto infer = [&] {
      torch::NoGradGuard no_grad;
      layer->zero_states();
      torch::Tensor y;
      for (int64_t t = 0; t < x.size(0); ++t) y = layer(x[t]);
      return y.clone();
    };
    std::unique_ptr<torch::optim::Optimizer> opt;
    if (which == 0)
      opt = std::make_unique<torch::optim::SGD>(layer->parameters(), torch::optim::SGDOptions(0.5));
    else
      opt = std::make_unique<torch::optim::Adam>(layer->parameters(), torch::optim::AdamOptions(0.1));
    const auto before = infer();
    layer->zero_states();
    torch::Tensor loss = torch::zeros({});
    for (int64_t t = 0; t < x.size(0); ++t) loss = loss + layer(x[t]).pow(2).sum();
    opt->zero_grad();
    loss.backward();
    opt->step();
    const auto after = infer();
    // the same computation with autograd on must agree (there nothing is reused)
    layer->zero_states();
    torch::Tensor with_grad;
    for (int64_t t = 0; t < x.size(0); ++t) with_grad = layer(x[t]);
    EXPECT_FALSE(torch::equal(before, after)) << (which == 0 ? "SGD" : "Adam");
    EXPECT_TRUE(torch::equal(after, with_grad.detach())) << (which == 0 ? "SGD" : "Adam");
  }
}

// A synthetic temporal task: after T steps of two noisy input channels, say which channel had
// the larger sum (target +1 / -1), read from the membrane of a leaky integrator.
struct Task {
  torch::Tensor x, y;  // [T, batch, 2], [batch, 1]
};
Task make_task(int64_t batch, int64_t T) {
  Task task;
  task.x = torch::randn({T, batch, 2});
  task.y = torch::sign((task.x.select(2, 0) - task.x.select(2, 1)).sum(0)).unsqueeze(1);
  return task;
}

TEST(SnnTraining, ASmallSnnLearnsATemporalTask) {
  torch::manual_seed(4);
  tt::Sequential net;
  net->push_back(torch::nn::Linear(2, 16));
  net->push_back(tt::snn::LIB(16));
  net->push_back(torch::nn::Linear(16, 1));
  net->push_back(tt::snn::LI(1));
  auto run = [&](const Task& task) {
    tt::zero_states(*net);
    torch::Tensor y;
    for (int64_t t = 0; t < task.x.size(0); ++t) y = net->forward(task.x[t]);
    return torch::mse_loss(y, task.y);
  };
  const Task validation = make_task(256, 12);
  double start;
  {
    torch::NoGradGuard no_grad;
    start = run(validation).item<double>();
  }
  torch::optim::Adam opt(net->parameters(), torch::optim::AdamOptions(0.02));
  for (int step = 0; step < 80; ++step) {
    const auto loss = run(make_task(32, 12));
    opt.zero_grad();
    loss.backward();
    opt.step();
  }
  double end;
  {
    torch::NoGradGuard no_grad;
    end = run(validation).item<double>();
  }
  EXPECT_LT(end, 0.5 * start) << "validation loss " << start << " -> " << end;
  EXPECT_LT(end, 0.7);
}

}  // namespace
