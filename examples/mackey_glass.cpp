// Mackey-Glass (tau = 17) forecasting with a classic echo state network.
//
//   ./build/examples/mackey_glass [reservoir_size=500] [seed=0]
//
// 1. Generate the series: RK4 with dt = 0.1, sampled every 1.0 time unit (tt::rc::mackey_glass),
//    normalised to zero mean and unit variance.
// 2. Train: warm up the reservoir on 500 steps, then ridge-fit the readout on the next 5,000
//    one-step-ahead pairs (input x_t, target x_{t+1}).
// 3. One-step test: keep running teacher forced over the next 2,000 steps; report the NRMSE.
// 4. Forecast: warm up on the 500 steps before the test segment, then run free (outputs fed back)
//    and report how long the forecast stays within 0.2 standard deviations (valid horizon).
#include <torch/torch.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "tracetorch/rc/rc.h"

using namespace tt::rc;

int main(int argc, char** argv) {
  const int64_t reservoir_size = argc > 1 ? std::atoll(argv[1]) : 500;
  const uint64_t seed = argc > 2 ? std::strtoull(argv[2], nullptr, 10) : 0;
  const int64_t washout = 500, train = 5000, test = 2000, horizon = 2000;
  torch::set_num_threads(1);

  // ---- data ----
  const int64_t total = washout + train + test + 1;
  torch::Tensor raw = mackey_glass(total);
  torch::Tensor series = ((raw - raw.mean()) / raw.std(false)).to(torch::kFloat32).view({1, total, 1});
  torch::Tensor inputs = series.slice(1, 0, total - 1);  // x_t
  torch::Tensor targets = series.slice(1, 1, total);     // x_{t+1}

  // ---- model ----
  ESNModel model = classic_esn(reservoir_size, 1, 1,
                               ESNOptions()
                                   .spectral_radius(0.9)
                                   .leak_rate(0.5)
                                   .feedback_init(InputInit::uniform(0.5))
                                   .bias_init(InputInit::uniform(0.2))
                                   .readout_alpha(1e-8)
                                   .seed(seed));

  // ---- train ----
  auto t0 = std::chrono::steady_clock::now();
  SolveInfo info = ESNTrainer(model).fit(inputs.slice(1, 0, washout + train),
                                         targets.slice(1, washout, washout + train), washout);
  auto t1 = std::chrono::steady_clock::now();

  // ---- one-step test (the state continues from the end of training) ----
  torch::NoGradGuard no_grad;
  torch::Tensor test_in = inputs.slice(1, washout + train, washout + train + test);
  torch::Tensor test_target = targets.slice(1, washout + train, washout + train + test);
  torch::Tensor one_step = model->forward(test_in);
  const double one_step_nrmse = nrmse(one_step, test_target);

  // ---- free-running forecast from the start of the test segment ----
  model->reset_reservoirs();
  auto t2 = std::chrono::steady_clock::now();
  torch::Tensor forecast = model->forecast(inputs.slice(1, washout + train - 500, washout + train), horizon);
  auto t3 = std::chrono::steady_clock::now();
  // forecast[k] predicts x_{start + k}, which is targets[start - 1 + k].
  torch::Tensor truth = targets.slice(1, washout + train - 1, washout + train - 1 + horizon);
  const int64_t vph = valid_prediction_horizon(forecast[0], truth[0], 0.2);

  auto seconds = [](auto a, auto b) { return std::chrono::duration<double>(b - a).count(); };
  std::printf("Mackey-Glass tau=17 (RK4 dt=0.1, sampled every 1.0), classic ESN\n");
  std::printf("  reservoir %lld units (dense, radius 0.9, leak 0.5), seed %llu, alpha 1e-8\n",
              static_cast<long long>(reservoir_size), static_cast<unsigned long long>(seed));
  std::printf("  warm-up %lld, train %lld, test %lld steps\n", static_cast<long long>(washout),
              static_cast<long long>(train), static_cast<long long>(test));
  std::printf("| metric                             | value        |\n");
  std::printf("|------------------------------------|--------------|\n");
  std::printf("| one-step NRMSE (2,000 test steps)  | %12.3e |\n", one_step_nrmse);
  std::printf("| valid horizon (error > 0.2 sd)     | %6lld steps |\n", static_cast<long long>(vph));
  std::printf("| forecast NRMSE, first 100 steps    | %12.3e |\n",
              nrmse(forecast.slice(1, 0, 100), truth.slice(1, 0, 100)));
  std::printf("| forecast NRMSE, first 500 steps    | %12.3e |\n",
              nrmse(forecast.slice(1, 0, 500), truth.slice(1, 0, 500)));
  std::printf("| train time (warm-up + fit)         | %10.2f s |\n", seconds(t0, t1));
  const std::string label = "forecast time (" + std::to_string(horizon) + " steps)";
  std::printf("| %-34s | %10.2f s |\n", label.c_str(), seconds(t2, t3));
  std::printf("| ridge relative residual            | %12.1e |\n", info.residual);
  return one_step_nrmse < 1e-2 ? 0 : 1;
}
