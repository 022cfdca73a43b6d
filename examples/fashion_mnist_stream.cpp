// Streams Fashion-MNIST images through a small spiking network one timestep at a time, saves
// weights and hidden states mid-sequence, and resumes in a NEW process with identical outputs.
//
//   fashion_mnist_stream run    --dir OUT   steps 0..49; saves arch, weights, states at step 25
//   fashion_mnist_stream resume --dir OUT   new process: restores them, runs steps 25..49 and
//                                           compares with the outputs the first run recorded
//
// Network: Linear(784, 128) -> LIB(128) -> Linear(128, 10) -> LI(10). The input of every step is
// the batch of images (pixels scaled to [0, 1]): a constant input current.
#include <tracetorch/tracetorch.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>

namespace {

constexpr int64_t kSteps = 50;
constexpr int64_t kSplit = 25;
constexpr int64_t kBatch = 8;

// Where Debian's dataset-fashion-mnist puts the files; $TT_FASHION_MNIST_DIR overrides it.
std::string fashion_mnist_dir() {
  if (const char* dir = std::getenv("TT_FASHION_MNIST_DIR")) return dir;
  return "/usr/share/datasets/fashion-mnist";
}

torch::Tensor load_images() {
  torch::Tensor images = tt::io::load_idx(fashion_mnist_dir() + "/t10k-images-idx3-ubyte.gz").slice(0, 0, kBatch);
  return images.reshape({kBatch, 784}).to(torch::kFloat32).div(255.0);
}

torch::Tensor load_labels() {
  return tt::io::load_idx(fashion_mnist_dir() + "/t10k-labels-idx1-ubyte.gz").slice(0, 0, kBatch).to(torch::kLong);
}

tt::Sequential build_network() {
  return tt::Sequential(torch::nn::Linear(784, 128), tt::snn::LIB(128), torch::nn::Linear(128, 10), tt::snn::LI(10));
}

int run(const std::string& dir) {
  torch::manual_seed(0);
  tt::Sequential net = build_network();
  const torch::Tensor x = load_images();
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> outputs;
  for (int64_t t = 0; t < kSteps; ++t) {
    if (t == kSplit) {
      tt::arch::save(*net, dir + "/arch.json");
      tt::save_state_dict(*net, dir + "/weights.pt");
      tt::save_states(*net, dir + "/states_step25.pt");
      std::printf("step %2lld: saved arch.json, weights.pt, states_step25.pt (%zu states)\n",
                  static_cast<long long>(t), tt::save_states(*net).size());
    }
    outputs.push_back(net->forward(x));
  }
  tt::io::save_tensor(torch::stack(outputs), dir + "/outputs_reference.pt");
  const torch::Tensor predicted = outputs.back().argmax(-1);
  std::printf("ran %lld steps on %lld images; membrane argmax at the last step:", static_cast<long long>(kSteps),
              static_cast<long long>(kBatch));
  for (int64_t i = 0; i < kBatch; ++i) std::printf(" %lld", static_cast<long long>(predicted[i].item<int64_t>()));
  std::printf("\n(the weights are random: this demo is about state handling, not accuracy)\n");
  return 0;
}

int resume(const std::string& dir) {
  tt::Sequential net = tt::arch::load(dir + "/arch.json");
  tt::load_state_dict(*net, dir + "/weights.pt");
  const tt::LoadReport report = tt::load_states(*net, dir + "/states_step25.pt");
  std::printf("restored in a new process: %s\n", report.summary().c_str());
  const torch::Tensor x = load_images();
  const torch::Tensor labels = load_labels();
  const torch::Tensor reference = tt::io::load_tensor(dir + "/outputs_reference.pt");
  torch::NoGradGuard no_grad;
  bool identical = true;
  std::printf("%6s  %14s  %s\n", "step", "max |diff|", "bitwise equal");
  for (int64_t t = kSplit; t < kSteps; ++t) {
    const torch::Tensor y = net->forward(x);
    const bool equal = torch::equal(y, reference[t]);
    identical = identical && equal;
    if (t % 5 == 0 || t == kSteps - 1)
      std::printf("%6lld  %14.3g  %s\n", static_cast<long long>(t), (y - reference[t]).abs().max().item<double>(),
                  equal ? "yes" : "NO");
  }
  std::printf("labels of the streamed images:");
  for (int64_t i = 0; i < kBatch; ++i) std::printf(" %lld", static_cast<long long>(labels[i].item<int64_t>()));
  std::printf("\nresumed outputs identical to the uninterrupted run: %s\n", identical ? "yes" : "NO");
  return identical ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 4 || std::strcmp(argv[2], "--dir") != 0 ||
      (std::strcmp(argv[1], "run") != 0 && std::strcmp(argv[1], "resume") != 0)) {
    std::fprintf(stderr, "usage: %s run|resume --dir DIR\n", argv[0]);
    return 2;
  }
  try {
    return std::strcmp(argv[1], "run") == 0 ? run(argv[3]) : resume(argv[3]);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
