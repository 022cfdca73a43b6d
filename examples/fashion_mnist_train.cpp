// Trains a spiking classifier on Fashion-MNIST and writes everything a user wants to look at.
//
//   fashion_mnist_train [--out DIR] [--epochs N] [--resume] ...   (--help lists all options)
//
// Network: Linear(784, H) -> LIB(H) (binary spikes) -> Linear(H, 10) -> LI(10). Each image, normalised with the
// training set's pixel mean and deviation, is the constant input current of T time steps; the
// class scores are the output membranes at the last step (cross-entropy). Training runs the whole
// T-step sequence at once (tt::forward_sequence), with Adam and a cosine learning-rate schedule.
//
// Written into DIR:
//   checkpoints/epoch_<k>.pt  one training checkpoint per epoch (model, optimizer, epoch, loss, RNG
//                             state, metadata); --resume continues from the newest one, and the
//                             resumed run ends with the same weights as an uninterrupted one
//   model.pt                  the final model in one file (architecture + weights)
//   metrics.csv               per epoch: train loss and accuracy, test accuracy, seconds
//   predictions.csv           per test image: label, prediction
//   confusion.csv             10 x 10 counts (rows: label, columns: prediction)
//   raster.csv, membranes.csv one test image step by step: hidden spikes and output membranes
//   example_input.pt          that image as a [T, 1, 784] input for `tracetorch run`
#include <tracetorch/io/checkpoint.h>
#include <tracetorch/io/model_file.h>
#include <tracetorch/tracetorch.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

namespace fs = std::filesystem;

namespace {

struct Settings {
  std::string data_dir = "/usr/share/datasets/fashion-mnist";
  std::string out = "demo";
  int64_t epochs = 5;
  int64_t hidden = 256;
  int64_t time_steps = 8;
  int64_t batch = 128;
  double lr = 3e-3;
  uint64_t seed = 0;
  int64_t train_limit = 0;  // 0: the whole set
  int64_t test_limit = 0;
  bool resume = false;
  bool quiet = false;
};

struct Dataset {
  torch::Tensor images;  // [N, 784] float, normalised
  torch::Tensor labels;  // [N] long
};

Dataset load_split(const Settings& s, const std::string& prefix, int64_t limit, double mean, double std) {
  torch::Tensor images = tt::io::load_idx(s.data_dir + "/" + prefix + "-images-idx3-ubyte.gz");
  torch::Tensor labels = tt::io::load_idx(s.data_dir + "/" + prefix + "-labels-idx1-ubyte.gz");
  if (limit > 0 && limit < images.size(0)) {
    images = images.slice(0, 0, limit);
    labels = labels.slice(0, 0, limit);
  }
  images = images.reshape({images.size(0), 784}).to(torch::kFloat32).div(255.0);
  return {images.sub(mean).div(std), labels.to(torch::kLong)};
}

tt::Sequential build_network(int64_t hidden) {
  // round_ste makes the hidden outputs binary spikes; training sees sigmoid4x's gradient through it.
  const auto spiking = tt::snn::LIBOptions(hidden).quant_fn(tt::functional::round_ste_fn(1.0));
  return tt::Sequential(torch::nn::Linear(784, hidden), tt::snn::LIB(spiking), torch::nn::Linear(hidden, 10),
                        tt::snn::LI(10));
}

// The scores of a batch: the output membranes after T steps of constant input.
torch::Tensor class_scores(tt::Sequential& net, const torch::Tensor& images, int64_t time_steps) {
  tt::zero_states(*net);
  const torch::Tensor current = images.unsqueeze(0).expand({time_steps, images.size(0), images.size(1)});
  return tt::forward_sequence(net, current)[time_steps - 1];
}

// A bar redrawn in place on a terminal; plain lines (every 10%) when stdout is a file or a pipe.
class Progress {
 public:
  Progress(int64_t epoch, int64_t epochs, int64_t total, bool quiet)
      : epoch_(epoch), epochs_(epochs), total_(total), quiet_(quiet), tty_(isatty(fileno(stdout)) == 1),
        start_(Clock::now()), last_draw_(start_) {}

  void update(int64_t done, double loss, double accuracy) {
    if (quiet_) return;
    const auto now = Clock::now();
    const bool last = done == total_;
    if (tty_) {
      if (!last && now - last_draw_ < std::chrono::milliseconds(100)) return;
    } else {
      const int64_t decile = done * 10 / total_;
      if (decile == last_decile_) return;
      last_decile_ = decile;
    }
    last_draw_ = now;
    const double seconds = std::chrono::duration<double>(now - start_).count();
    const double rate = seconds > 0 ? static_cast<double>(done) / seconds : 0.0;
    const double eta = rate > 0 ? static_cast<double>(total_ - done) / rate : 0.0;
    constexpr int kWidth = 24;
    const int filled = static_cast<int>(kWidth * done / total_);
    std::string bar(static_cast<size_t>(filled), '#');
    bar.resize(kWidth, '.');
    std::printf("%sepoch %lld/%lld [%s] %3lld%%  %6.0f samples/s  loss %.4f  acc %5.1f%%  %s %3.0fs%s",
                tty_ ? "\r" : "", static_cast<long long>(epoch_), static_cast<long long>(epochs_), bar.c_str(),
                static_cast<long long>(100 * done / total_), rate, loss, 100.0 * accuracy, last ? "took" : "ETA",
                last ? seconds : eta, tty_ && !last ? "" : "\n");
    std::fflush(stdout);
  }

 private:
  using Clock = std::chrono::steady_clock;
  int64_t epoch_, epochs_, total_;
  bool quiet_, tty_;
  Clock::time_point start_, last_draw_;
  int64_t last_decile_ = -1;
};

double evaluate(tt::Sequential& net, const Dataset& test, int64_t time_steps, torch::Tensor* predictions) {
  torch::NoGradGuard no_grad;
  std::vector<torch::Tensor> parts;
  for (int64_t begin = 0; begin < test.images.size(0); begin += 1000) {
    const int64_t end = std::min<int64_t>(begin + 1000, test.images.size(0));
    parts.push_back(class_scores(net, test.images.slice(0, begin, end), time_steps).argmax(-1));
  }
  const torch::Tensor predicted = torch::cat(parts);
  if (predictions) *predictions = predicted;
  return predicted.eq(test.labels).to(torch::kFloat64).mean().item<double>();
}

std::string checkpoint_path(const Settings& s, int64_t epoch) {
  return s.out + "/checkpoints/epoch_" + std::to_string(epoch) + ".pt";
}

// The newest epoch with a checkpoint on disk, 0 if none.
int64_t newest_checkpoint(const Settings& s) {
  int64_t newest = 0;
  for (int64_t epoch = 1; epoch <= s.epochs; ++epoch)
    if (fs::exists(checkpoint_path(s, epoch))) newest = epoch;
  return newest;
}

struct EpochMetrics {
  int64_t epoch;
  double train_loss, train_accuracy, test_accuracy, seconds;
};

tt::Checkpoint make_checkpoint(const Settings& s, const EpochMetrics& m, const std::vector<EpochMetrics>& history,
                               double mean, double std) {
  tt::Checkpoint checkpoint;
  checkpoint.epoch = m.epoch;
  checkpoint.loss = m.train_loss;
  checkpoint.include_rng_state = true;
  nlohmann::ordered_json rows = nlohmann::ordered_json::array();
  for (const EpochMetrics& h : history)
    rows.push_back({{"epoch", h.epoch}, {"train_loss", h.train_loss}, {"train_accuracy", h.train_accuracy},
                    {"test_accuracy", h.test_accuracy}, {"seconds", h.seconds}});
  checkpoint.metadata = {{"dataset", "Fashion-MNIST"}, {"time_steps", s.time_steps}, {"hidden", s.hidden},
                         {"pixel_mean", mean}, {"pixel_std", std}, {"epochs", s.epochs}, {"batch", s.batch},
                         {"lr", s.lr}, {"seed", s.seed}, {"test_accuracy", m.test_accuracy}, {"history", rows}};
  return checkpoint;
}

void write_metrics(const Settings& s, const std::vector<EpochMetrics>& history) {
  std::ofstream out(s.out + "/metrics.csv");
  out << "epoch,train_loss,train_accuracy,test_accuracy,seconds\n";
  for (const EpochMetrics& m : history)
    out << m.epoch << ',' << m.train_loss << ',' << m.train_accuracy << ',' << m.test_accuracy << ',' << m.seconds
        << '\n';
}

void write_evaluation(const Settings& s, const Dataset& test, const torch::Tensor& predicted) {
  std::ofstream predictions(s.out + "/predictions.csv");
  predictions << "index,label,prediction\n";
  std::vector<int64_t> confusion(100, 0);
  const auto labels = test.labels.accessor<int64_t, 1>();
  const auto guesses = predicted.accessor<int64_t, 1>();
  for (int64_t i = 0; i < test.labels.size(0); ++i) {
    predictions << i << ',' << labels[i] << ',' << guesses[i] << '\n';
    ++confusion[static_cast<size_t>(labels[i] * 10 + guesses[i])];
  }
  std::ofstream matrix(s.out + "/confusion.csv");
  for (int64_t label = 0; label < 10; ++label)
    for (int64_t guess = 0; guess < 10; ++guess)
      matrix << confusion[static_cast<size_t>(label * 10 + guess)] << (guess == 9 ? '\n' : ',');
}

// One test image through the network step by step, recording the hidden layer's spikes and the
// output membranes: the data of the raster and membrane pictures.
void write_trace(const Settings& s, tt::Sequential& net, const Dataset& test, int64_t index) {
  torch::NoGradGuard no_grad;
  tt::zero_states(*net);
  const torch::Tensor x = test.images.slice(0, index, index + 1);
  tt::io::save_tensor(x.unsqueeze(0).expand({s.time_steps, 1, 784}).contiguous(), s.out + "/example_input.pt");
  std::ofstream raster(s.out + "/raster.csv");
  std::ofstream membranes(s.out + "/membranes.csv");
  raster << "step,neuron\n";
  membranes << "step";
  for (int c = 0; c < 10; ++c) membranes << ",class_" << c;
  membranes << '\n';
  for (int64_t t = 0; t < s.time_steps; ++t) {
    const torch::Tensor spikes = net->begin()[1].forward(net->begin()[0].forward(x));
    const torch::Tensor membrane = net->begin()[3].forward(net->begin()[2].forward(spikes));
    const torch::Tensor fired = spikes[0].nonzero().flatten();
    for (int64_t i = 0; i < fired.size(0); ++i) raster << t << ',' << fired[i].item<int64_t>() << '\n';
    membranes << t;
    for (int64_t c = 0; c < 10; ++c) membranes << ',' << membrane[0][c].item<double>();
    membranes << '\n';
  }
}

int train(const Settings& s) {
  const auto start = std::chrono::steady_clock::now();
  fs::create_directories(s.out + "/checkpoints");

  // Normalisation constants from the training images (kept in the checkpoints' metadata, so a
  // deployment needs nothing else).
  Dataset train_set = load_split(s, "train", s.train_limit, 0.0, 1.0);
  const double mean = train_set.images.mean().item<double>();
  const double std = train_set.images.std().item<double>();
  train_set.images = train_set.images.sub(mean).div(std);
  const Dataset test_set = load_split(s, "t10k", s.test_limit, mean, std);

  torch::manual_seed(s.seed);
  tt::Sequential net = build_network(s.hidden);
  torch::optim::Adam optimizer(net->parameters(), torch::optim::AdamOptions(s.lr));

  std::vector<EpochMetrics> history;
  int64_t first_epoch = 1;
  if (s.resume) {
    if (const int64_t newest = newest_checkpoint(s); newest > 0) {
      const tt::Checkpoint checkpoint = tt::load_checkpoint(*net, optimizer, checkpoint_path(s, newest));
      if (checkpoint.rng_state) tt::set_cpu_rng_state(*checkpoint.rng_state);
      for (const auto& row : checkpoint.metadata.at("history"))
        history.push_back({row.at("epoch").get<int64_t>(), row.at("train_loss").get<double>(),
                           row.at("train_accuracy").get<double>(), row.at("test_accuracy").get<double>(),
                           row.at("seconds").get<double>()});
      first_epoch = newest + 1;
      std::printf("resumed from %s (epoch %lld, loss %.4f)\n", checkpoint_path(s, newest).c_str(),
                  static_cast<long long>(checkpoint.epoch), checkpoint.loss);
    } else {
      std::printf("no checkpoint in %s/checkpoints: starting from scratch\n", s.out.c_str());
    }
  }

  const int64_t n = train_set.images.size(0);
  const int64_t batches = (n + s.batch - 1) / s.batch;
  const int64_t total_iterations = batches * s.epochs;
  for (int64_t epoch = first_epoch; epoch <= s.epochs; ++epoch) {
    const auto epoch_start = std::chrono::steady_clock::now();
    net->train();
    // A seeded shuffle per epoch: the order depends only on (seed, epoch), so a resumed run sees
    // the same batches as an uninterrupted one.
    torch::Generator order_rng = at::detail::createCPUGenerator(s.seed * 1000003 + static_cast<uint64_t>(epoch));
    const torch::Tensor order = torch::randperm(n, order_rng, torch::TensorOptions().dtype(torch::kLong));
    Progress progress(epoch, s.epochs, n, s.quiet);
    double loss_sum = 0.0;
    int64_t correct = 0, seen = 0;
    for (int64_t b = 0; b < batches; ++b) {
      const int64_t iteration = (epoch - 1) * batches + b;
      const double lr = 0.5 * s.lr * (1.0 + std::cos(M_PI * static_cast<double>(iteration) / total_iterations));
      for (auto& group : optimizer.param_groups()) static_cast<torch::optim::AdamOptions&>(group.options()).lr(lr);

      const torch::Tensor index = order.slice(0, b * s.batch, std::min(n, (b + 1) * s.batch));
      const torch::Tensor images = train_set.images.index_select(0, index);
      const torch::Tensor labels = train_set.labels.index_select(0, index);
      optimizer.zero_grad();
      const torch::Tensor scores = class_scores(net, images, s.time_steps);
      const torch::Tensor loss = torch::nn::functional::cross_entropy(scores, labels);
      loss.backward();
      optimizer.step();

      loss_sum += loss.item<double>() * static_cast<double>(index.size(0));
      correct += scores.argmax(-1).eq(labels).sum().item<int64_t>();
      seen += index.size(0);
      progress.update(seen, loss_sum / static_cast<double>(seen), static_cast<double>(correct) / seen);
    }
    net->eval();
    const double test_accuracy = evaluate(net, test_set, s.time_steps, nullptr);
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - epoch_start).count();
    history.push_back({epoch, loss_sum / n, static_cast<double>(correct) / n, test_accuracy, seconds});
    tt::save_checkpoint(*net, optimizer, make_checkpoint(s, history.back(), history, mean, std),
                        checkpoint_path(s, epoch));
    write_metrics(s, history);
    if (!s.quiet)
      std::printf("epoch %lld/%lld: test accuracy %.1f%%, checkpoint %s\n", static_cast<long long>(epoch),
                  static_cast<long long>(s.epochs), 100.0 * test_accuracy, checkpoint_path(s, epoch).c_str());
  }

  torch::Tensor predicted;
  const double accuracy = evaluate(net, test_set, s.time_steps, &predicted);
  write_evaluation(s, test_set, predicted);
  write_trace(s, net, test_set, 0);
  tt::save_model(*net, s.out + "/model.pt");
  const double minutes = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count() / 60.0;
  std::printf("test accuracy %.1f%% (%lld test images), %.1f minutes in this process\n", 100.0 * accuracy,
              static_cast<long long>(test_set.labels.size(0)), minutes);
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  Settings s;
  CLI::App app{"Train a spiking classifier on Fashion-MNIST (tracetorch's main job)"};
  app.add_option("--data", s.data_dir, "folder with the Fashion-MNIST IDX files")->capture_default_str();
  app.add_option("--out", s.out, "output folder")->capture_default_str();
  app.add_option("--epochs", s.epochs, "epochs")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--hidden", s.hidden, "hidden LIB neurons")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--time-steps", s.time_steps, "time steps per image")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--batch", s.batch, "batch size")->capture_default_str()->check(CLI::PositiveNumber);
  app.add_option("--lr", s.lr, "peak learning rate (cosine schedule)")->capture_default_str();
  app.add_option("--seed", s.seed, "seed of the weights and the shuffle")->capture_default_str();
  app.add_option("--train-limit", s.train_limit, "use only the first N training images (0: all)");
  app.add_option("--test-limit", s.test_limit, "use only the first N test images (0: all)");
  app.add_flag("--resume", s.resume, "continue from the newest checkpoint in OUT/checkpoints");
  app.add_flag("--quiet", s.quiet, "no progress display");
  CLI11_PARSE(app, argc, argv);
  try {
    return train(s);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "error: %s\n", e.what());
    return 1;
  }
}
