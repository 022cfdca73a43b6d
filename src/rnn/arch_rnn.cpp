#include "tracetorch/core/arch.h"
#include "tracetorch/rnn/rnn.h"

namespace tt::arch {

namespace {

// One rnn.* type: JSON arguments (Python names) -> options -> module, and back. Only arguments
// that were given are written back, so JSON -> model -> JSON is the identity.
template <typename Holder, typename Impl>
void add_rnn_type(Registry& registry, const std::string& type) {
  Entry entry;
  entry.build = [](Args& args, const Registry&) {
    rnn::RNNOptions options(args.get_int("in_features"), args.get_int("out_features"));
    if (args.has("dim")) options.dim(args.get_int("dim"));
    args.finish();
    return torch::nn::AnyModule(Holder(options));
  };
  entry.describe = [type](const torch::nn::Module& module, const Registry&) -> std::optional<json> {
    const auto* layer = dynamic_cast<const Impl*>(&module);
    if (layer == nullptr) return std::nullopt;
    const rnn::RNNOptions& o = layer->options();
    json node;
    node["type"] = type;
    node["in_features"] = o.in_features();
    node["out_features"] = o.out_features();
    if (o.dim_given()) node["dim"] = o.dim();
    return node;
  };
  registry.add(type, std::move(entry));
}

}  // namespace

void register_rnn_types(Registry& registry) {
  add_rnn_type<rnn::SimpleRNN, rnn::SimpleRNNImpl>(registry, "rnn.SimpleRNN");
  add_rnn_type<rnn::GRU, rnn::GRUImpl>(registry, "rnn.GRU");
  add_rnn_type<rnn::LSTM, rnn::LSTMImpl>(registry, "rnn.LSTM");
}

}  // namespace tt::arch
