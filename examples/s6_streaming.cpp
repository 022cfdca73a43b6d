// Streaming inference with a selective state-space layer (S6), one timestep per call. Halfway
// through, the SSM state is saved to a file; a freshly built model loads the weights and that
// state and continues the stream with exactly the same outputs as the original.
#include <torch/torch.h>

#include <cstdio>
#include <filesystem>

#include "tracetorch/core/model.h"
#include "tracetorch/core/sequential.h"
#include "tracetorch/core/state_dict.h"
#include "tracetorch/ssm/ssm.h"

tt::Sequential build_model() {
  // 8 channels with a 4-dimensional state each; dt_rank defaults to max(1, 8 / 16) = 1.
  return tt::Sequential(torch::nn::Linear(3, 8), tt::ssm::S6(tt::ssm::S6Options(8).d_state(4)),
                        torch::nn::Linear(8, 1));
}

int main() {
  torch::NoGradGuard no_grad;
  torch::manual_seed(0);
  const int64_t steps = 10, split = 5;
  const torch::Tensor inputs = torch::randn({steps, 2, 3});  // [time, batch, features]
  const std::string dir = (std::filesystem::temp_directory_path() / "tracetorch_s6_example").string();
  std::filesystem::create_directories(dir);

  // 1. Stream the first half, then save weights and states ("1.state", shape [2, 8, 4]).
  tt::Sequential model = build_model();
  for (int64_t t = 0; t < split; ++t) model->forward(inputs[t]);
  for (const auto& item : tt::save_states(*model))
    std::printf("state %s: %s\n", item.key().c_str(), c10::str(item.value().sizes()).c_str());
  tt::save_state_dict(*model, dir + "/weights.pt");
  tt::save_states(*model, dir + "/states.pt");

  // 2. Keep streaming with the original model.
  std::vector<torch::Tensor> original;
  for (int64_t t = split; t < steps; ++t) original.push_back(model->forward(inputs[t]));

  // 3. Elsewhere (another process, later): build, load weights and states, continue.
  torch::manual_seed(123);  // different random weights, overwritten by the load
  tt::Sequential restored = build_model();
  tt::load_state_dict(*restored, dir + "/weights.pt");
  tt::load_states(*restored, dir + "/states.pt");

  std::printf("step  original (batch 0, 1)  restored (batch 0, 1)  identical\n");
  bool all_same = true;
  for (int64_t t = split; t < steps; ++t) {
    const torch::Tensor a = original[t - split], b = restored->forward(inputs[t]);
    const bool same = torch::equal(a, b);
    all_same = all_same && same;
    std::printf("%4lld  [%8.5f, %8.5f]   [%8.5f, %8.5f]   %s\n", static_cast<long long>(t), a[0][0].item<double>(),
                a[1][0].item<double>(), b[0][0].item<double>(), b[1][0].item<double>(), same ? "yes" : "NO");
  }
  std::filesystem::remove_all(dir);
  return all_same ? 0 : 1;
}
