// Serves the trained Fashion-MNIST classifier as a stream: batch 1, inference mode, one time step
// at a time. Shares no code with the training program; everything it needs (weights, number of
// time steps, pixel normalisation) comes from the files training wrote.
//
//   fashion_mnist_deploy check  --out DIR [--images N]   stream the first N test images and compare
//                                                        the predictions with DIR/predictions.csv
//   fashion_mnist_deploy pause  --out DIR [--image K]    stream image K, save the hidden states in the
//                                                        middle of it, record every step's output
//   fashion_mnist_deploy resume --out DIR                a new process: restore those states, finish
//                                                        the image, compare with the recorded outputs
#include <tracetorch/io/checkpoint.h>
#include <tracetorch/io/model_file.h>
#include <tracetorch/tracetorch.h>

#include <CLI/CLI.hpp>
#include <cstdio>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Deployment {
  tt::Sequential net;
  int64_t time_steps = 0;
  double pixel_mean = 0.0, pixel_std = 1.0;
};

// The final training checkpoint: weights and the metadata that says how to feed the network.
Deployment load_deployment(const std::string& dir) {
  Deployment d;
  d.net = tt::load_model(dir + "/model.pt");
  std::string final_checkpoint;
  for (int64_t epoch = 1;; ++epoch) {
    const std::string path = dir + "/checkpoints/epoch_" + std::to_string(epoch) + ".pt";
    if (!std::ifstream(path)) break;
    final_checkpoint = path;
  }
  if (final_checkpoint.empty()) throw std::runtime_error("no checkpoint in " + dir + "/checkpoints");
  const tt::Checkpoint checkpoint = tt::load_checkpoint(*d.net, final_checkpoint);
  d.time_steps = checkpoint.metadata.at("time_steps").get<int64_t>();
  d.pixel_mean = checkpoint.metadata.at("pixel_mean").get<double>();
  d.pixel_std = checkpoint.metadata.at("pixel_std").get<double>();
  return d;
}

torch::Tensor test_image(const Deployment& d, const std::string& data_dir, int64_t index) {
  const torch::Tensor images = tt::io::load_idx(data_dir + "/t10k-images-idx3-ubyte.gz");
  if (index < 0 || index >= images.size(0))
    throw std::runtime_error("image index " + std::to_string(index) + " out of range [0, " +
                             std::to_string(images.size(0)) + ")");
  return images[index].reshape({1, 784}).to(torch::kFloat32).div(255.0).sub(d.pixel_mean).div(d.pixel_std);
}

// One image, one time step per call: the deployment path.
std::vector<torch::Tensor> stream(Deployment& d, const torch::Tensor& image, int64_t from, int64_t to) {
  std::vector<torch::Tensor> outputs;
  for (int64_t t = from; t < to; ++t) outputs.push_back(d.net->forward(image).clone());
  return outputs;
}

int check(const std::string& dir, const std::string& data_dir, int64_t count) {
  Deployment d = load_deployment(dir);
  c10::InferenceMode inference;
  std::ifstream csv(dir + "/predictions.csv");
  std::string line;
  std::getline(csv, line);  // header
  int64_t equal = 0, correct = 0, checked = 0;
  while (checked < count && std::getline(csv, line)) {
    std::stringstream fields(line);
    std::string index, label, trained;
    std::getline(fields, index, ',');
    std::getline(fields, label, ',');
    std::getline(fields, trained, ',');
    tt::zero_states(*d.net);
    const std::vector<torch::Tensor> outputs = stream(d, test_image(d, data_dir, std::stoll(index)), 0, d.time_steps);
    const int64_t predicted = outputs.back().argmax(-1).item<int64_t>();
    equal += predicted == std::stoll(trained);
    correct += predicted == std::stoll(label);
    ++checked;
  }
  std::printf("streamed %lld test images one step at a time: %lld correct, %lld/%lld predictions equal the "
              "training process's evaluation\n",
              static_cast<long long>(checked), static_cast<long long>(correct), static_cast<long long>(equal),
              static_cast<long long>(checked));
  return equal == checked && checked > 0 ? 0 : 1;
}

int pause(const std::string& dir, const std::string& data_dir, int64_t image_index) {
  Deployment d = load_deployment(dir);
  c10::InferenceMode inference;
  const torch::Tensor image = test_image(d, data_dir, image_index);
  const int64_t middle = d.time_steps / 2;
  std::vector<torch::Tensor> outputs = stream(d, image, 0, middle);
  tt::save_states(*d.net, dir + "/stream_states.pt");
  const std::vector<torch::Tensor> rest = stream(d, image, middle, d.time_steps);
  outputs.insert(outputs.end(), rest.begin(), rest.end());
  tt::io::save_tensor(torch::cat(outputs), dir + "/stream_outputs.pt");
  tt::io::save_tensor(torch::tensor({image_index, middle}), dir + "/stream_position.pt");
  std::printf("image %lld: streamed %lld steps, saved the hidden states after step %lld to %s/stream_states.pt; "
              "prediction %lld\n",
              static_cast<long long>(image_index), static_cast<long long>(d.time_steps),
              static_cast<long long>(middle - 1), dir.c_str(), static_cast<long long>(outputs.back().argmax(-1).item<int64_t>()));
  return 0;
}

int resume(const std::string& dir, const std::string& data_dir) {
  Deployment d = load_deployment(dir);
  c10::InferenceMode inference;
  const torch::Tensor position = tt::io::load_tensor(dir + "/stream_position.pt");
  const int64_t image_index = position[0].item<int64_t>(), middle = position[1].item<int64_t>();
  const tt::LoadReport report = tt::load_states(*d.net, dir + "/stream_states.pt");
  const torch::Tensor recorded = tt::io::load_tensor(dir + "/stream_outputs.pt");
  const std::vector<torch::Tensor> rest = stream(d, test_image(d, data_dir, image_index), middle, d.time_steps);
  const torch::Tensor resumed = torch::cat(rest);
  const bool identical = torch::equal(resumed, recorded.slice(0, middle));
  std::printf("new process: %s; finished image %lld from step %lld: outputs identical to the uninterrupted "
              "stream: %s (prediction %lld)\n",
              report.summary().c_str(), static_cast<long long>(image_index), static_cast<long long>(middle),
              identical ? "yes" : "NO", static_cast<long long>(rest.back().argmax(-1).item<int64_t>()));
  return identical ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  std::string dir = "demo";
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  int64_t images = 200, image = 0;
  CLI::App app{"Stream the trained Fashion-MNIST classifier one time step at a time"};
  app.require_subcommand(1);
  app.add_option("--out", dir, "the training program's output folder")->capture_default_str();
  app.add_option("--data", data_dir, "folder with the Fashion-MNIST IDX files")->capture_default_str();
  CLI::App* check_cmd = app.add_subcommand("check", "stream test images, compare with training's predictions");
  check_cmd->add_option("--images", images, "how many test images")->capture_default_str();
  CLI::App* pause_cmd = app.add_subcommand("pause", "stream one image, save the states in the middle");
  pause_cmd->add_option("--image", image, "test image index")->capture_default_str();
  CLI::App* resume_cmd = app.add_subcommand("resume", "restore the saved states and finish the image");
  CLI11_PARSE(app, argc, argv);
  try {
    if (check_cmd->parsed()) return check(dir, data_dir, images);
    if (pause_cmd->parsed()) return pause(dir, data_dir, image);
    if (resume_cmd->parsed()) return resume(dir, data_dir);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
  return 2;
}
