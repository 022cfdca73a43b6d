// Tests for tracetorch/rc: the reservoir update equations, initialisation (spectral radius,
// topologies, seeds), the sparse kernel, ridge readouts (closed form, CG, accumulation), the
// premade ESNs, forecasting alignment, torch_rc-compatible save / load, and Python interop.
#include <gtest/gtest.h>

#include "error_of.h"
#include <torch/torch.h>

#include <array>
#include <cmath>
#include <filesystem>
#include <string>
#include <vector>

#include "test_support.h"
#include "tracetorch/core/error.h"
#include "tracetorch/core/model.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/rc/rc.h"

namespace fs = std::filesystem;
using namespace tt::rc;

namespace {

torch::Tensor t2(std::vector<std::vector<double>> rows) {
  const int64_t r = static_cast<int64_t>(rows.size()), c = static_cast<int64_t>(rows[0].size());
  torch::Tensor out = torch::empty({r, c}, torch::kFloat64);
  for (int64_t i = 0; i < r; ++i)
    for (int64_t j = 0; j < c; ++j) out[i][j] = rows[i][j];
  return out;
}

void set_param(torch::Tensor& p, const torch::Tensor& value) {
  torch::NoGradGuard no_grad;
  p.copy_(value);
}

double max_abs_diff(const torch::Tensor& a, const torch::Tensor& b) {
  return (a.to(torch::kFloat64) - b.to(torch::kFloat64)).abs().max().item<double>();
}

// A 3-unit reservoir with hand-chosen weights, feedback 2, driving input 1.
Reservoir three_unit(double leak, Activation act, RecurrentKernel kernel) {
  Reservoir r(ReservoirOptions(3, 2).input_size(1).leak_rate(leak).activation(act).kernel(kernel).dtype(torch::kFloat64));
  set_param(r->weight_feedback, t2({{0.5, -0.2}, {0.1, 0.3}, {-0.4, 0.2}}));
  set_param(r->weight_input, t2({{0.7}, {-0.5}, {0.25}}));
  set_param(r->weight_hh, t2({{0.0, 0.6, 0.0}, {-0.3, 0.0, 0.2}, {0.0, 0.0, 0.5}}));
  set_param(r->bias_h, torch::tensor({0.05, -0.1, 0.2}, torch::kFloat64));
  return r;
}

// The same update written out with scalars.
std::vector<std::array<double, 3>> hand_states(double leak, Activation act,
                                               const std::vector<std::array<double, 3>>& steps /* fb0, fb1, u */) {
  const double Wfb[3][2] = {{0.5, -0.2}, {0.1, 0.3}, {-0.4, 0.2}};
  const double Win[3] = {0.7, -0.5, 0.25};
  const double Whh[3][3] = {{0.0, 0.6, 0.0}, {-0.3, 0.0, 0.2}, {0.0, 0.0, 0.5}};
  const double b[3] = {0.05, -0.1, 0.2};
  std::array<double, 3> h = {0, 0, 0};
  std::vector<std::array<double, 3>> out;
  for (const auto& s : steps) {
    std::array<double, 3> next{};
    for (int i = 0; i < 3; ++i) {
      double pre = Wfb[i][0] * s[0] + Wfb[i][1] * s[1] + Win[i] * s[2] + b[i];
      for (int j = 0; j < 3; ++j) pre += Whh[i][j] * h[j];
      double v = act == Activation::Tanh ? std::tanh(pre) : act == Activation::Relu ? std::max(0.0, pre) : pre;
      next[i] = (1.0 - leak) * h[i] + leak * v;
    }
    h = next;
    out.push_back(h);
  }
  return out;
}

// Mackey-Glass, normalised to zero mean / unit variance, as [1, n, 1] float32.
torch::Tensor mg_series(int64_t n) {
  torch::Tensor x = mackey_glass(n);
  x = (x - x.mean()) / x.std(false);
  return x.to(torch::kFloat32).view({1, n, 1});
}

}  // namespace

// =============================================================================================
// reservoir update equations

TEST(RcReservoir, UpdateEquationsMatchHandComputation) {
  const std::vector<std::array<double, 3>> steps = {{1.0, -0.5, 0.3}, {0.2, 0.8, -1.0}, {-0.7, 0.1, 0.5}, {0.0, 0.0, 0.0}};
  torch::Tensor fb = torch::empty({1, 4, 2}, torch::kFloat64), u = torch::empty({1, 4, 1}, torch::kFloat64);
  for (int t = 0; t < 4; ++t) {
    fb[0][t][0] = steps[t][0];
    fb[0][t][1] = steps[t][1];
    u[0][t][0] = steps[t][2];
  }
  for (auto kernel : {RecurrentKernel::Dense, RecurrentKernel::Sparse}) {
    for (auto act : {Activation::Tanh, Activation::Relu, Activation::Identity}) {
      for (double leak : {1.0, 0.3}) {
        auto expected = hand_states(leak, act, steps);
        // Whole sequence at once.
        Reservoir r = three_unit(leak, act, kernel);
        torch::Tensor seq = r->forward(fb, u);
        ASSERT_EQ(seq.sizes(), (std::vector<int64_t>{1, 4, 3}));
        // One step at a time ([batch, features]); the state carries over between calls.
        Reservoir s = three_unit(leak, act, kernel);
        for (int t = 0; t < 4; ++t) {
          torch::Tensor h = s->forward(fb.select(1, t), u.select(1, t));
          ASSERT_EQ(h.sizes(), (std::vector<int64_t>{1, 3}));
          for (int i = 0; i < 3; ++i) {
            EXPECT_NEAR(seq[0][t][i].item<double>(), expected[t][i], 1e-12)
                << "sequence, t=" << t << " unit " << i << " act " << to_string(act) << " leak " << leak;
            EXPECT_NEAR(h[0][i].item<double>(), expected[t][i], 1e-12) << "single step, t=" << t;
          }
        }
        EXPECT_TRUE(torch::allclose(r->get_state(), seq.select(1, 3)));
      }
    }
  }
}

TEST(RcReservoir, StatePersistsAcrossCallsAndResets) {
  Reservoir r(ReservoirOptions(20, 2).spectral_radius(0.9).seed(3));
  torch::Tensor x = torch::randn({3, 12, 2});
  torch::Tensor whole = r->forward(x);
  r->reset_state();
  EXPECT_FALSE(r->get_state().defined());
  torch::Tensor a = r->forward(x.slice(1, 0, 5));
  torch::Tensor b = r->forward(x.slice(1, 5));
  EXPECT_TRUE(torch::allclose(torch::cat({a, b}, 1), whole, 1e-6, 1e-6));

  // reset_state(batch): zeros now; a different batch size re-creates the state (torch_rc's rule).
  r->reset_state(3);
  EXPECT_TRUE(torch::equal(r->get_state(), torch::zeros({3, 20})));
  EXPECT_TRUE(torch::allclose(r->forward(x), whole, 1e-6, 1e-6));
  r->forward(torch::randn({5, 2, 2}));
  EXPECT_EQ(r->get_state().size(0), 5);

  // set_state / get_state copy; a wrong width is refused.
  torch::Tensor s = torch::randn({3, 20});
  r->set_state(s);
  EXPECT_TRUE(torch::equal(r->get_state(), s));
  s.zero_();
  EXPECT_FALSE(torch::equal(r->get_state(), s));
  EXPECT_THROW(r->set_state(torch::zeros({3, 7})), tt::ValueError);

  // As a tt::Layer the state is managed by the model helpers; it also works inside Sequential
  // (the driving input is an optional argument).
  torch::nn::Sequential net(r);
  EXPECT_EQ(net->forward(x).sizes(), (std::vector<int64_t>{3, 12, 20}));
  auto states = tt::save_states(*net);
  ASSERT_TRUE(states.contains("0.state"));
  tt::zero_states(*net);
  EXPECT_FALSE(r->get_state().defined());
  tt::load_states(*net, states);
  EXPECT_TRUE(torch::equal(r->get_state(), states["0.state"]));
}

TEST(RcReservoir, ParameterNamesFollowTorchRc) {
  Reservoir r(ReservoirOptions(10, 3).input_size(2));
  std::vector<std::string> keys;
  for (const auto& p : r->named_parameters()) keys.push_back(p.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"weight_feedback", "weight_input", "weight_hh", "bias_h"}));
  for (const auto& p : r->parameters()) EXPECT_FALSE(p.requires_grad());  // frozen by default

  Reservoir plain(ReservoirOptions(10, 3).bias(false));
  keys.clear();
  for (const auto& p : plain->named_parameters()) keys.push_back(p.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"weight_feedback", "weight_hh"}));
  EXPECT_THROW(plain->forward(torch::zeros({1, 2, 3}), torch::zeros({1, 2, 1})), tt::ValueError);
  EXPECT_THROW(plain->forward(torch::zeros({1, 2, 4})), tt::ValueError);
}

TEST(RcReservoir, TrainableWeightsGetGradientsAndMatchTheFastPath) {
  Reservoir r(ReservoirOptions(8, 2).spectral_radius(0.8).leak_rate(0.5).trainable(true).seed(1));
  torch::Tensor x = torch::randn({2, 6, 2});
  torch::Tensor y = r->forward(x);
  y.sum().backward();
  ASSERT_TRUE(r->weight_hh.grad().defined());
  EXPECT_GT(r->weight_hh.grad().abs().sum().item<double>(), 0.0);
  r->reset_state();
  torch::Tensor fast;
  {
    torch::NoGradGuard no_grad;
    fast = r->forward(x);
  }
  EXPECT_TRUE(torch::allclose(y.detach(), fast, 1e-6, 1e-6));
}

// =============================================================================================
// initialisation

TEST(RcInit, SpectralRadiusIsScaledToTheTarget) {
  const std::vector<Topology> topologies = {Topology::dense(), Topology::erdos_renyi(0.1),
                                            Topology::watts_strogatz(4, 0.2), Topology::ring()};
  for (const auto& topo : topologies) {
    for (double target : {0.9, 1.25}) {
      for (int64_t n : {50, 200}) {
        Reservoir r(ReservoirOptions(n, 1).topology(topo).spectral_radius(target).seed(7));
        const double measured = spectral_radius(r->weight_hh);
        EXPECT_NEAR(measured, target, 1e-3) << topo.to_string() << " n=" << n;
      }
    }
  }
  // Without a target nothing is scaled (torch_rc's layer default): dense U(-1, 1) of size 200
  // has a radius far above 1.
  Reservoir raw(ReservoirOptions(200, 1).seed(7));
  EXPECT_GT(spectral_radius(raw->weight_hh), 5.0);
}

TEST(RcInit, TopologiesHaveTheirStructure) {
  auto gen = make_generator(11);
  torch::Tensor er = make_recurrent(100, Topology::erdos_renyi(0.05), std::nullopt, gen);
  EXPECT_EQ(er.ne(0).sum().item<int64_t>(), 500);
  torch::Tensor ws = make_recurrent(100, Topology::watts_strogatz(6, 0.0), std::nullopt, gen);
  EXPECT_EQ(ws.ne(0).sum().item<int64_t>(), 600);  // lattice: 6 neighbours each, both directions
  EXPECT_TRUE(torch::equal(ws.ne(0), ws.ne(0).t()));
  EXPECT_EQ(ws.diagonal().ne(0).sum().item<int64_t>(), 0);
  torch::Tensor rewired = make_recurrent(100, Topology::watts_strogatz(6, 0.5), std::nullopt, gen);
  EXPECT_EQ(rewired.ne(0).sum().item<int64_t>(), 600);  // rewiring keeps the edge count
  EXPECT_TRUE(torch::equal(rewired.ne(0), rewired.ne(0).t()));
  EXPECT_FALSE(torch::equal(rewired.ne(0), ws.ne(0)));
  torch::Tensor ring = make_recurrent(10, Topology::ring(), 0.7, gen);
  for (int64_t i = 0; i < 10; ++i) EXPECT_NEAR(ring[(i + 1) % 10][i].item<double>(), 0.7, 1e-12);
  EXPECT_EQ(ring.ne(0).sum().item<int64_t>(), 10);
  EXPECT_THROW(make_recurrent(10, Topology::watts_strogatz(3, 0.1), 0.9, gen), tt::ValueError);
  EXPECT_THROW(make_recurrent(10, Topology::erdos_renyi(0.0), 0.9, gen), tt::ValueError);
}

TEST(RcInit, InputInitialisersAndSeeds) {
  auto gen = make_generator(5);
  torch::Tensor bin = make_input({50, 4}, InputInit::binary(0.3), gen);
  EXPECT_TRUE((bin.abs() - 0.3).abs().max().item<double>() < 1e-12);
  EXPECT_GT(bin.gt(0).sum().item<int64_t>(), 50);
  EXPECT_GT(bin.lt(0).sum().item<int64_t>(), 50);
  torch::Tensor uni = make_input({50, 4}, InputInit::uniform(0.5), gen);
  EXPECT_LE(uni.abs().max().item<double>(), 0.5);
  EXPECT_GT(uni.abs().max().item<double>(), 0.4);
  EXPECT_TRUE(torch::equal(make_input({3, 3}, InputInit::zero(), gen), torch::zeros({3, 3}, torch::kFloat64)));

  auto opts = ReservoirOptions(30, 2).input_size(1).topology(Topology::erdos_renyi(0.2)).spectral_radius(0.9).seed(42);
  Reservoir a(opts), b(opts), c(ReservoirOptions(opts).seed(43));
  for (const auto& name : {"weight_feedback", "weight_input", "weight_hh", "bias_h"}) {
    EXPECT_TRUE(torch::equal(a->named_parameters()[name], b->named_parameters()[name])) << name;
  }
  EXPECT_FALSE(torch::equal(a->weight_hh, c->weight_hh));
  EXPECT_FALSE(torch::equal(a->weight_feedback, c->weight_feedback));

  // An explicit generator: the same state gives the same weights, and it advances.
  auto g1 = make_generator(7), g2 = make_generator(7);
  Reservoir d(ReservoirOptions(30, 2).spectral_radius(0.9).generator(g1));
  Reservoir e(ReservoirOptions(30, 2).spectral_radius(0.9).generator(g2));
  Reservoir f(ReservoirOptions(30, 2).spectral_radius(0.9).generator(g1));
  EXPECT_TRUE(torch::equal(d->weight_hh, e->weight_hh));
  EXPECT_FALSE(torch::equal(d->weight_hh, f->weight_hh));
}

TEST(RcReservoir, SparseKernelMatchesDense) {
  auto opts = ReservoirOptions(300, 3).topology(Topology::erdos_renyi(0.02)).spectral_radius(0.95).leak_rate(0.7).seed(9);
  Reservoir dense(ReservoirOptions(opts).kernel(RecurrentKernel::Dense));
  Reservoir sparse(ReservoirOptions(opts).kernel(RecurrentKernel::Sparse));
  Reservoir autok(opts);
  EXPECT_EQ(autok->effective_kernel(), RecurrentKernel::Sparse);
  Reservoir dense_auto(ReservoirOptions(opts).topology(Topology::dense()));
  EXPECT_EQ(dense_auto->effective_kernel(), RecurrentKernel::Dense);
  torch::Tensor x = torch::randn({4, 40, 3});
  torch::Tensor yd = dense->forward(x), ys = sparse->forward(x);
  EXPECT_LT(max_abs_diff(yd, ys), 1e-5);
  // The CSR copy follows in-place changes of weight_hh (e.g. load_state_dict).
  set_param(sparse->weight_hh, dense->weight_hh * 0.5);
  set_param(dense->weight_hh, dense->weight_hh * 0.5);
  EXPECT_LT(max_abs_diff(dense->forward(x), sparse->forward(x)), 1e-5);
}

// =============================================================================================
// readout

TEST(RcReadout, RidgeMatchesDirectLeastSquares) {
  torch::manual_seed(0);
  torch::Tensor X = torch::randn({300, 12}, torch::kFloat64);
  torch::Tensor Y = torch::mm(X, torch::randn({12, 3}, torch::kFloat64)) + 0.5 + 0.1 * torch::randn({300, 3}, torch::kFloat64);
  for (double alpha : {0.0, 1e-3, 10.0}) {
    Readout r(ReadoutOptions(12, 3).alpha(alpha).dtype(torch::kFloat64));
    r->fit(X, Y);
    // Ridge as ordinary least squares: [X 1; sqrt(alpha) I 0] w = [Y; 0] (bias not penalised).
    torch::Tensor A = torch::cat({X, torch::ones({300, 1}, torch::kFloat64)}, 1);
    torch::Tensor reg = torch::cat({std::sqrt(alpha) * torch::eye(12, torch::kFloat64), torch::zeros({12, 1}, torch::kFloat64)}, 1);
    torch::Tensor lhs = torch::cat({A, reg}, 0);
    torch::Tensor rhs = torch::cat({Y, torch::zeros({12, 3}, torch::kFloat64)}, 0);
    torch::Tensor w = std::get<0>(torch::linalg_lstsq(lhs, rhs, c10::nullopt, std::string("gelsd")));
    EXPECT_LT(max_abs_diff(r->weight, w.slice(0, 0, 12).t()), 1e-9) << "alpha " << alpha;
    EXPECT_LT(max_abs_diff(r->bias, w[12]), 1e-9) << "alpha " << alpha;
    EXPECT_TRUE(r->is_fitted());
    EXPECT_LT(max_abs_diff(r->forward(X), torch::mm(A, w)), 1e-9);
  }
  // Without bias: plain ridge.
  Readout nb(ReadoutOptions(12, 3).bias(false).alpha(0.0).dtype(torch::kFloat64));
  nb->fit(X, Y);
  torch::Tensor w = std::get<0>(torch::linalg_lstsq(X, Y, c10::nullopt, std::string("gelsd")));
  EXPECT_LT(max_abs_diff(nb->weight, w.t()), 1e-9);
  EXPECT_FALSE(nb->bias.defined());
}

TEST(RcReadout, ConjugateGradientMatchesClosedForm) {
  torch::manual_seed(1);
  torch::Tensor X = torch::tanh(torch::randn({800, 60}, torch::kFloat64));
  torch::Tensor Y = torch::randn({800, 4}, torch::kFloat64);
  Readout closed(ReadoutOptions(60, 4).alpha(1e-3).dtype(torch::kFloat64));
  Readout cg(ReadoutOptions(60, 4).alpha(1e-3).solver(Solver::CG).dtype(torch::kFloat64));
  closed->fit(X, Y);
  SolveInfo info = cg->fit(X, Y);
  EXPECT_TRUE(info.converged);
  EXPECT_GT(info.iterations, 0);
  EXPECT_LT(info.residual, 1e-9);
  EXPECT_LT(max_abs_diff(closed->weight, cg->weight), 1e-7);
  EXPECT_LT(max_abs_diff(closed->bias, cg->bias), 1e-7);
  // An iteration cap is reported, not hidden.
  Readout capped(ReadoutOptions(60, 4).alpha(1e-3).solver(Solver::CG).cg_max_iter(2).dtype(torch::kFloat64));
  EXPECT_FALSE(capped->fit(X, Y).converged);
}

TEST(RcReadout, AccumulatingBatchesEqualsOneShot) {
  torch::manual_seed(2);
  torch::Tensor X = torch::randn({4, 250, 20});
  torch::Tensor Y = torch::randn({4, 250, 2});
  Readout once(ReadoutOptions(20, 2).alpha(1e-4));
  once->fit(X, Y);
  Readout chunked(ReadoutOptions(20, 2).alpha(1e-4));
  for (int64_t b = 0; b < 4; ++b)
    for (int64_t t = 0; t < 250; t += 50) chunked->accumulate(X[b].slice(0, t, t + 50), Y[b].slice(0, t, t + 50));
  EXPECT_EQ(chunked->accumulated_samples(), 1000);
  chunked->solve();
  EXPECT_LT(max_abs_diff(once->xtx(), chunked->xtx()), 1e-9);
  EXPECT_LT(max_abs_diff(once->weight, chunked->weight), 1e-6);
  EXPECT_LT(max_abs_diff(once->bias, chunked->bias), 1e-6);
  EXPECT_THROW(Readout(4, 1)->solve(), tt::ValueError);
  EXPECT_THROW(once->accumulate(torch::zeros({5, 20}), torch::zeros({4, 2})), tt::ValueError);
}

// =============================================================================================
// premade models

TEST(RcEsn, PremadeModelsHaveTorchRcStructure) {
  ESNModel classic = classic_esn(30, 2, 3, ESNOptions().seed(1));
  std::vector<std::string> keys;
  for (const auto& item : tt::state_dict(*classic)) keys.push_back(item.key());
  EXPECT_EQ(keys, (std::vector<std::string>{"ReservoirLayer_1.weight_feedback", "ReservoirLayer_1.weight_input",
                                            "ReservoirLayer_1.weight_hh", "ReservoirLayer_1.bias_h",
                                            "CGReadoutLayer_1.weight", "CGReadoutLayer_1.bias"}));
  auto sd = tt::state_dict(*classic);
  EXPECT_EQ(sd["ReservoirLayer_1.weight_input"].sizes(), (std::vector<int64_t>{30, 0}));
  EXPECT_EQ(sd["CGReadoutLayer_1.weight"].sizes(), (std::vector<int64_t>{3, 32}));
  EXPECT_NEAR(spectral_radius(classic->reservoir->weight_hh), 0.9, 1e-3);  // premade default
  torch::Tensor x = torch::randn({4, 10, 2});
  EXPECT_EQ(classic->forward(x).sizes(), (std::vector<int64_t>{4, 10, 3}));

  ESNModel headless = headless_esn(30, 2, ESNOptions().seed(1));
  EXPECT_FALSE(headless->has_readout());
  EXPECT_EQ(headless->forward(x).sizes(), (std::vector<int64_t>{4, 10, 30}));
  // Same seed, same reservoir: the headless output is the classic model's reservoir state.
  classic->reset_reservoirs();
  classic->forward(x);
  EXPECT_TRUE(torch::allclose(headless->reservoir->get_state(), classic->reservoir->get_state()));

  ESNModel linear = linear_esn(30, 2, ESNOptions().seed(1).activation(Activation::Tanh));
  EXPECT_EQ(linear->reservoir->options().activation(), Activation::Identity);  // forced, as torch_rc
  EXPECT_FALSE(torch::allclose(linear->forward(x), headless->reservoir->forward(x), 1e-4, 1e-4));

  // Ott: readout sees [x, h with even units squared].
  ESNModel ott = ott_esn(6, 1, 1, ESNOptions().seed(1));
  torch::Tensor h = torch::tensor({{0.5, -0.5, 0.25, -0.25, 1.0, -1.0}});
  torch::Tensor f = ott->readout_features(torch::tensor({{2.0}}), h);
  EXPECT_TRUE(torch::allclose(f, torch::tensor({{2.0, 0.25, -0.5, 0.0625, -0.25, 1.0, -1.0}})));
}

TEST(RcEsn, ForecastAlignment) {
  // A readout that reads the input part of [x, h] and adds 1: y_t = x_t + 1. The first forecast
  // step is the output at the last warm-up step (last + 1); every later step feeds the previous
  // output back (last + 1 + k).
  ESNModel m = classic_esn(10, 1, 1, ESNOptions().seed(2));
  torch::Tensor w = torch::zeros({1, 11});
  w[0][0] = 1.0;
  set_param(m->readout->weight, w);
  set_param(m->readout->bias, torch::ones({1}));
  torch::Tensor warm = torch::arange(5, torch::kFloat32).view({1, 5, 1});
  torch::Tensor out = m->forecast(warm, 4);
  ASSERT_EQ(out.sizes(), (std::vector<int64_t>{1, 4, 1}));
  for (int k = 0; k < 4; ++k) EXPECT_FLOAT_EQ(out[0][k][0].item<float>(), 4.0f + 1.0f + k);

  m->reset_reservoirs();
  torch::Tensor with = m->forecast(warm, 3, ForecastOptions().return_warmup(true));
  ASSERT_EQ(with.size(1), 8);
  for (int t = 0; t < 5; ++t) EXPECT_FLOAT_EQ(with[0][t][0].item<float>(), t + 1.0f);

  // initial_feedback replaces the first fed-back value (torch_rc).
  m->reset_reservoirs();
  torch::Tensor ini = m->forecast(warm, 3, ForecastOptions().initial_feedback(torch::full({1, 1, 1}, 10.0)));
  EXPECT_FLOAT_EQ(ini[0][0][0].item<float>(), 5.0f);
  EXPECT_FLOAT_EQ(ini[0][1][0].item<float>(), 11.0f);
  EXPECT_FLOAT_EQ(ini[0][2][0].item<float>(), 12.0f);

  // A general trained model: forecast == warm-up then a hand-written feedback loop.
  ESNModel g = classic_esn(40, 2, 2, ESNOptions().seed(3).readout_alpha(1e-2));
  torch::Tensor series = torch::randn({2, 60, 2});
  ESNTrainer(g).fit(series.slice(1, 0, 59), series.slice(1, 11, 60), 10);
  g->reset_reservoirs();
  torch::Tensor fc = g->forecast(series.slice(1, 0, 30), 5);
  g->reset_reservoirs();
  torch::Tensor y = g->forward(series.slice(1, 0, 30)).select(1, 29);
  std::vector<torch::Tensor> manual = {y};
  for (int k = 1; k < 5; ++k) {
    y = g->forward(y);
    manual.push_back(y);
  }
  EXPECT_TRUE(torch::allclose(fc, torch::stack(manual, 1), 1e-6, 1e-6));
  EXPECT_THROW(headless_esn(10, 1)->forecast(warm, 3), tt::ValueError);  // output is not feedback-sized
}

TEST(RcEsn, TrainerStreamingEqualsOneShotFit) {
  torch::Tensor series = mg_series(900);
  ESNModel a = classic_esn(60, 1, 1, ESNOptions().seed(4).readout_alpha(1e-6));
  ESNModel b = classic_esn(60, 1, 1, ESNOptions().seed(4).readout_alpha(1e-6));
  torch::Tensor inputs = series.slice(1, 0, 899), targets = series.slice(1, 1, 900);
  ESNTrainer(a).fit(inputs, targets.slice(1, 100), 100);
  ESNTrainer t(b);
  t.begin();
  t.warmup(inputs.slice(1, 0, 100));
  for (int64_t s = 100; s < 899; s += 200) t.accumulate(inputs.slice(1, s, std::min<int64_t>(s + 200, 899)),
                                                         targets.slice(1, s, std::min<int64_t>(s + 200, 899)));
  t.finish();
  EXPECT_LT(max_abs_diff(a->readout->weight, b->readout->weight), 1e-4);
  EXPECT_THROW(ESNTrainer(a).fit(inputs, targets, 899), tt::ValueError);
  EXPECT_THROW(ESNTrainer(headless_esn(5, 1)).fit(inputs, targets, 10), tt::ValueError);
}

// A small, fast configuration of the Mackey-Glass benchmark (docs/reservoir.md justifies the
// bound: the 500-unit configuration of examples/mackey_glass.cpp reaches ~1e-4; this 100-unit,
// 2,000-step one reaches ~1e-3, and 1e-2 leaves an order of magnitude of margin).
TEST(RcEsn, MackeyGlassOneStepNrmse) {
  torch::Tensor series = mg_series(2601);
  ESNModel m = classic_esn(100, 1, 1,
                           ESNOptions().seed(0).spectral_radius(0.9).leak_rate(0.5).readout_alpha(1e-7)
                               .feedback_init(InputInit::uniform(0.5)).bias_init(InputInit::uniform(0.2)));
  torch::Tensor inputs = series.slice(1, 0, 2600), targets = series.slice(1, 1, 2601);
  ESNTrainer(m).fit(inputs.slice(1, 0, 2100), targets.slice(1, 100, 2100), 100);
  // One-step predictions over the next 500 steps, teacher forced, continuing the state.
  torch::Tensor pred = m->forward(inputs.slice(1, 2100, 2600));
  const double err = nrmse(pred, targets.slice(1, 2100, 2600));
  RecordProperty("one_step_nrmse", std::to_string(err));
  EXPECT_LT(err, 1e-2);
  // The forecast tracks the series for a while.
  torch::Tensor fc = m->forecast(inputs.slice(1, 2100, 2400), 200);
  const int64_t vph = valid_prediction_horizon(fc[0], targets[0].slice(0, 2399, 2599));
  RecordProperty("valid_horizon", std::to_string(vph));
  EXPECT_GT(vph, 50);
}

// =============================================================================================
// save / load

TEST(RcFiles, SaveLoadWithoutStatesGivesIdenticalOutputs) {
  tt_test::TempDir dir;
  torch::Tensor series = mg_series(400);
  ESNModel m = classic_esn(40, 1, 1, ESNOptions().seed(5));
  ESNTrainer(m).fit(series.slice(1, 0, 399), series.slice(1, 51, 400), 50);
  const std::string path = dir.file("nested/dir/model.pt");
  m->save(path);  // parent directories are created
  ASSERT_TRUE(fs::exists(path));

  ESNModel n = classic_esn(40, 1, 1, ESNOptions().seed(99));  // different weights until loaded
  tt::LoadReport report = n->load(path);
  EXPECT_TRUE(report.complete());
  EXPECT_TRUE(report.warnings.empty());
  EXPECT_EQ(report.loaded.size(), 6u);
  m->reset_reservoirs();
  EXPECT_TRUE(torch::equal(m->forward(series), n->forward(series)));

  // load_states requested but the file has none: warn and continue.
  ESNModel k = classic_esn(40, 1, 1);
  tt::LoadReport warned = k->load(path, true, true);
  ASSERT_EQ(warned.warnings.size(), 1u);
  EXPECT_NE(warned.warnings[0].find("no reservoir states"), std::string::npos);
  EXPECT_FALSE(k->reservoir->get_state().defined());

  // The static form returns the model it loaded into.
  ESNModel target = classic_esn(40, 1, 1);
  ESNModel same = ESNModelImpl::load_from_file(path, target);
  EXPECT_EQ(same.get(), target.get());
  EXPECT_TRUE(torch::equal(target->readout->weight, m->readout->weight));
}

TEST(RcFiles, SaveLoadWithStatesResumesIdentically) {
  tt_test::TempDir dir;
  torch::Tensor x = torch::randn({3, 30, 2});
  ESNModel m = headless_esn(25, 2, ESNOptions().seed(6));
  m->forward(x.slice(1, 0, 20));
  const std::string path = dir.file("with_states.pt");
  m->save(path, /*include_states=*/true);
  torch::Tensor cont = m->forward(x.slice(1, 20));

  ESNModel n = headless_esn(25, 2, ESNOptions().seed(7));
  tt::LoadReport report = n->load(path, true, /*load_states=*/true);
  EXPECT_TRUE(report.warnings.empty());
  EXPECT_TRUE(torch::equal(n->forward(x.slice(1, 20)), cont));

  // Without load_states the state is not touched (fresh zeros): outputs differ.
  ESNModel fresh = headless_esn(25, 2);
  fresh->load(path);
  EXPECT_FALSE(fresh->reservoir->get_state().defined());
  EXPECT_FALSE(torch::allclose(fresh->forward(x.slice(1, 20)), cont));

  // get / set_reservoir_states use torch_rc's names.
  auto states = m->get_reservoir_states();
  ASSERT_TRUE(states.contains("ReservoirLayer_1"));
  EXPECT_EQ(states["ReservoirLayer_1"].sizes(), (std::vector<int64_t>{3, 25}));
  tt::io::TensorDict bad;
  bad.insert("ReservoirLayer_1", torch::zeros({3, 4}));
  EXPECT_THROW(n->set_reservoir_states(bad), tt::LoadError);
}

TEST(RcFiles, ErrorCases) {
  tt_test::TempDir dir;
  ESNModel m = classic_esn(20, 1, 1, ESNOptions().seed(8));
  // Missing file.
  std::string msg = error_of<tt::Error>([&] { m->load(dir.file("absent.pt")); });
  EXPECT_NE(msg.find("absent.pt"), std::string::npos);
  EXPECT_NE(msg.find("no such file"), std::string::npos);
  // Size mismatch: a 30-unit file into a 20-unit model; nothing changes.
  ESNModel big = classic_esn(30, 1, 1);
  big->save(dir.file("big.pt"));
  torch::Tensor before = m->reservoir->weight_hh.clone();
  msg = error_of<tt::LoadError>([&] { m->load(dir.file("big.pt")); });
  EXPECT_NE(msg.find("size mismatch for ReservoirLayer_1.weight_hh"), std::string::npos) << msg;
  EXPECT_NE(msg.find("big.pt"), std::string::npos);
  EXPECT_TRUE(torch::equal(before, m->reservoir->weight_hh));
  EXPECT_THROW(m->load(dir.file("big.pt"), /*strict=*/false), tt::LoadError);  // size mismatch is never allowed
  // Missing keys: a headless file into a classic model.
  headless_esn(20, 1)->save(dir.file("headless.pt"));
  msg = error_of<tt::LoadError>([&] { m->load(dir.file("headless.pt")); });
  EXPECT_NE(msg.find("CGReadoutLayer_1.weight"), std::string::npos);
  tt::LoadReport loose = m->load(dir.file("headless.pt"), /*strict=*/false);
  EXPECT_EQ(loose.missing, (std::vector<std::string>{"CGReadoutLayer_1.weight", "CGReadoutLayer_1.bias"}));
  // Not a model file (a bare tensor).
  tt::io::save_tensor(torch::zeros({2}), dir.file("tensor.pt"));
  EXPECT_THROW(m->load(dir.file("tensor.pt")), tt::FileError);
  // Reservoir states of the wrong width: an error, and nothing (weights included) is changed.
  ESNModel other = classic_esn(20, 1, 1, ESNOptions().seed(12));
  c10::impl::GenericDict file(c10::StringType::get(), c10::AnyType::get());
  file.insert(std::string("state_dict"), tt::io::to_ivalue(tt::state_dict(*other)));
  tt::io::TensorDict bad_states;
  bad_states.insert("ReservoirLayer_1", torch::zeros({2, 7}));
  file.insert(std::string("reservoir_states"), tt::io::to_ivalue(bad_states));
  tt::io::save_pt(c10::IValue(file), dir.file("bad_states.pt"));
  before = m->reservoir->weight_hh.clone();
  msg = error_of<tt::LoadError>([&] { m->load(dir.file("bad_states.pt"), true, true); });
  EXPECT_NE(msg.find("ReservoirLayer_1"), std::string::npos) << msg;
  EXPECT_NE(msg.find("[2, 7]"), std::string::npos) << msg;
  EXPECT_TRUE(torch::equal(before, m->reservoir->weight_hh));
  // ... but the same file loads when the states are not requested.
  EXPECT_NO_THROW(m->load(dir.file("bad_states.pt")));
  EXPECT_TRUE(torch::equal(m->reservoir->weight_hh, other->reservoir->weight_hh));
}

// =============================================================================================
// Python interop

TEST(RcFiles, PythonReadsOurFilesWithTorchRcKeys) {
  if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  tt_test::TempDir dir;
  torch::Tensor series = mg_series(300);
  ESNModel m = classic_esn(16, 1, 1, ESNOptions().seed(10).leak_rate(0.6));
  ESNTrainer(m).fit(series.slice(1, 0, 299), series.slice(1, 21, 300), 20);
  m->reset_reservoirs();
  torch::Tensor x = series.slice(1, 0, 50);
  torch::Tensor y = m->forward(x);
  m->save(dir.file("model.pt"), /*include_states=*/true);
  tt::io::TensorDict io;
  io.insert("x", x);
  io.insert("y", y);
  tt::io::save_tensor_dict(io, dir.file("io.pt"));

  // Python: plain torch.load, torch_rc's key names, and torch_rc's update equation reproduces y.
  const std::string code = R"PY(
import torch
ck = torch.load(")PY" + dir.file("model.pt") + R"PY(")
io = torch.load(")PY" + dir.file("io.pt") + R"PY(")
assert set(ck.keys()) == {"state_dict", "metadata", "reservoir_states"}, ck.keys()
sd = ck["state_dict"]
assert list(sd.keys()) == ["ReservoirLayer_1.weight_feedback", "ReservoirLayer_1.weight_input",
    "ReservoirLayer_1.weight_hh", "ReservoirLayer_1.bias_h", "CGReadoutLayer_1.weight", "CGReadoutLayer_1.bias"], list(sd.keys())
assert tuple(sd["ReservoirLayer_1.weight_input"].shape) == (16, 0)
assert list(ck["reservoir_states"].keys()) == ["ReservoirLayer_1"]
assert tuple(ck["reservoir_states"]["ReservoirLayer_1"].shape) == (1, 16)
x, y = io["x"], io["y"]
Wfb, Whh, b = sd["ReservoirLayer_1.weight_feedback"], sd["ReservoirLayer_1.weight_hh"], sd["ReservoirLayer_1.bias_h"]
W, c = sd["CGReadoutLayer_1.weight"], sd["CGReadoutLayer_1.bias"]
h = torch.zeros(1, 16)
outs = []
for t in range(x.shape[1]):
    fb = x[:, t, :]
    new = torch.tanh(torch.nn.functional.linear(fb, Wfb) + torch.nn.functional.linear(h, Whh) + b)
    h = (1 - 0.6) * h + 0.6 * new
    outs.append(torch.nn.functional.linear(torch.cat([fb, h], -1), W, c))
out = torch.stack(outs, 1)
err = (out - y).abs().max().item()
assert err < 1e-5, err
assert torch.allclose(h, ck["reservoir_states"]["ReservoirLayer_1"], atol=1e-5)
print("OK")
)PY";
  std::string output;
  ASSERT_EQ(tt_test::run_python(code, &output), 0) << output;
  EXPECT_NE(output.find("OK"), std::string::npos) << output;
}

TEST(RcFiles, WeLoadTorchRcStyleFilesWrittenByPython) {
  if (tt_test::python().empty()) GTEST_SKIP() << "no python3 with torch";
  tt_test::TempDir dir;
  // What torch_rc's ESNModel.save(path, include_states=True, note="x") writes for
  // headless_esn(12, 2): an OrderedDict state_dict, a metadata dict, and the states.
  const std::string code = R"PY(
import torch, collections
g = torch.Generator().manual_seed(0)
sd = collections.OrderedDict()
sd["ReservoirLayer_1.weight_feedback"] = torch.rand(12, 2, generator=g) * 2 - 1
sd["ReservoirLayer_1.weight_input"] = torch.empty(12, 0)
sd["ReservoirLayer_1.weight_hh"] = (torch.rand(12, 12, generator=g) * 2 - 1) * 0.1
sd["ReservoirLayer_1.bias_h"] = torch.zeros(12)
state = torch.rand(4, 12, generator=g)
torch.save({"state_dict": sd, "metadata": {"note": "x"}, "reservoir_states": {"ReservoirLayer_1": state}}, ")PY" +
                           dir.file("py.pt") + R"PY(")
x = torch.rand(4, 5, 2, generator=g)
h = state.clone()
outs = []
for t in range(5):
    h = torch.tanh(x[:, t] @ sd["ReservoirLayer_1.weight_feedback"].T + h @ sd["ReservoirLayer_1.weight_hh"].T + sd["ReservoirLayer_1.bias_h"])
    outs.append(h)
torch.save({"x": x, "y": torch.stack(outs, 1)}, ")PY" + dir.file("py_io.pt") + R"PY(")
)PY";
  std::string output;
  ASSERT_EQ(tt_test::run_python(code, &output), 0) << output;
  ESNModel m = headless_esn(12, 2);
  tt::LoadReport report = m->load(dir.file("py.pt"), true, true);
  EXPECT_TRUE(report.complete()) << report.summary();
  auto io = tt::io::load_tensor_dict(dir.file("py_io.pt"));
  EXPECT_LT(max_abs_diff(m->forward(io["x"]), io["y"]), 1e-5);
}
