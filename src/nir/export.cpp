// Models as NIR graphs: one description per module type, traceTorch decays mapped to NIR time
// constants for a time step dt, and the firing traceTorch neurons as small LI / Threshold / Scale
// graphs whose recurrent edges carry their subtractive reset. Output shapes come from the
// importer's own node builder, so that every exported node is also checked to import.
#include "tracetorch/nir/export.h"

#include <cmath>
#include <variant>

#include "core/text.h"
#include "nir/import.h"
#include "tracetorch/core/error.h"
#include "tracetorch/nir/graph.h"
#include "tracetorch/nir/nodes.h"
#include "tracetorch/snn/neuron.h"

namespace tt::nir {

namespace {

using io::make_nir_node;
using io::NirNode;
using tt::detail::shape_string;

// LibTorch 1.13 holds options in c10::variant, 2.x in std::variant: unqualified calls with these
// declarations visible find either through argument-dependent lookup.
using std::get;
using std::holds_alternative;

template <size_t D>
std::vector<int64_t> to_vector(const torch::ExpandingArray<D>& a) {
  return {a->begin(), a->end()};
}

torch::Tensor shape_tensor(const std::vector<int64_t>& shape) {
  return torch::tensor(shape, torch::kInt64).reshape({static_cast<int64_t>(shape.size())});
}

NirNode io_node(const std::string& name, const std::string& type, const std::vector<int64_t>& shape) {
  return make_nir_node(name, type).set("shape", shape_tensor(shape));
}

class Exporter {
 public:
  explicit Exporter(const ExportOptions& options) : options_(options) {
    if (!(options.dt() > 0) || !std::isfinite(options.dt()))
      throw ValueError("export_graph: dt must be positive, got " + std::to_string(options.dt()));
  }

  io::NirGraph model(const torch::nn::Module& root) {
    if (auto* graph = dynamic_cast<const GraphImpl*>(&root)) {
      io::NirGraph out;
      static_cast<NirNode&>(out) = graph_node(*graph, "");
      return out;
    }
    std::vector<std::pair<std::string, const torch::nn::Module*>> chain;
    flatten_chain(root, "", chain);
    if (chain.empty()) throw ValueError("export_graph: the model has no modules to export");
    std::vector<int64_t> shape = options_.input_shape();
    if (shape.empty()) shape = first_input_shape(*chain.front().second, chain.front().first);

    io::NirGraph graph;
    graph.name = "";
    graph.type = "NIRGraph";
    graph.add_node(io_node("input", "Input", shape));
    std::string previous = "input";
    for (const auto& [path, module] : chain) {
      NirNode node = describe(*module, path, shape);
      shape = built_shape(node, shape, path);
      graph.add_node(node);
      graph.add_edge(previous, node.name);
      previous = node.name;
    }
    graph.add_node(io_node("output", "Output", shape));
    graph.add_edge(previous, "output");
    graph.metadata.emplace_back("exporter", io::NirValue("tracetorch"));
    graph.metadata.emplace_back("dt", io::NirValue(torch::tensor(options_.dt(), torch::kFloat64)));
    graph.metadata.emplace_back(
        "discretisation",
        io::NirValue(options_.discretisation() == Discretisation::Exact ? "exact" : "euler"));
    return graph;
  }

 private:
  [[noreturn]] static void fail(const std::string& path, const std::string& message) {
    throw ValueError("export_graph: module '" + (path.empty() ? std::string("<root>") : path) + "': " + message);
  }

  static bool is_sequential(const torch::nn::Module& m) { return dynamic_cast<const torch::nn::SequentialImpl*>(&m); }

  static void flatten_chain(const torch::nn::Module& m, const std::string& path,
                            std::vector<std::pair<std::string, const torch::nn::Module*>>& out) {
    if (!is_sequential(m)) {
      out.emplace_back(path.empty() ? "0" : path, &m);
      return;
    }
    for (const auto& child : m.named_children())
      flatten_chain(*child.value(), path.empty() ? child.key() : path + "." + child.key(), out);
  }

  static std::vector<int64_t> first_input_shape(const torch::nn::Module& m, const std::string& path) {
    if (auto* l = dynamic_cast<const torch::nn::LinearImpl*>(&m)) return {l->options.in_features()};
    if (auto* n = dynamic_cast<const snn::NeuronImpl*>(&m)) return {n->num_neurons()};
    if (auto* n = dynamic_cast<const NeuronImpl*>(&m)) return n->options().shape();
    if (auto* n = dynamic_cast<const ScaleImpl*>(&m)) return n->options().shape();
    if (auto* n = dynamic_cast<const ThresholdImpl*>(&m)) return n->options().shape();
    if (auto* n = dynamic_cast<const DelayImpl*>(&m)) return n->options().shape();
    if (auto* g = dynamic_cast<const GraphImpl*>(&m)) {
      if (g->input_names().size() == 1) return g->output_shape(g->input_names()[0]);
    }
    fail(path, "cannot tell the input shape from this module; set ExportOptions::input_shape");
  }

  std::vector<int64_t> built_shape(const NirNode& node, const std::vector<int64_t>& in_shape, const std::string& path) {
    try {
      return detail::build_node(node, in_shape, ImportOptions(options_.dt()).discretisation(options_.discretisation()),
                                path)
          .out_shape;
    } catch (const ValueError& e) {
      fail(path, std::string("the exported node does not fit: ") + e.what());
    }
  }

  // ---- one module -> one node ----
  NirNode describe(const torch::nn::Module& m, const std::string& path, const std::vector<int64_t>& in_shape) {
    const std::string& name = path;
    if (auto* l = dynamic_cast<const torch::nn::LinearImpl*>(&m)) {
      NirNode node = make_nir_node(name, l->bias.defined() ? "Affine" : "Linear");
      node.set("weight", l->weight.detach().cpu().clone());
      if (l->bias.defined()) node.set("bias", l->bias.detach().cpu().clone());
      return node;
    }
    if (auto* f = dynamic_cast<const torch::nn::FlattenImpl*>(&m)) {
      // torch counts the batch axis, NIR does not.
      auto nir_dim = [&](int64_t d) {
        if (d == 0) fail(path, "a Flatten over the batch axis (start_dim 0) has no NIR equivalent");
        return d > 0 ? d - 1 : d;
      };
      return make_nir_node(name, "Flatten")
          .set("start_dim", torch::tensor(nir_dim(f->options.start_dim()), torch::kInt64))
          .set("end_dim", torch::tensor(nir_dim(f->options.end_dim()), torch::kInt64))
          .set("input_type", shape_tensor(in_shape));
    }
    if (auto* c = dynamic_cast<const torch::nn::Conv1dImpl*>(&m)) return conv(*c, "Conv1d", name, path, in_shape);
    if (auto* c = dynamic_cast<const torch::nn::Conv2dImpl*>(&m)) return conv(*c, "Conv2d", name, path, in_shape);
    if (auto* p = dynamic_cast<const torch::nn::AvgPool2dImpl*>(&m)) {
      const auto& o = p->options;
      const bool sum = o.divisor_override() && *o.divisor_override() == 1;
      if (o.ceil_mode() || !o.count_include_pad() || (o.divisor_override() && !sum))
        fail(path, "only AvgPool2d with count_include_pad, without ceil_mode and divisor_override (or "
                   "divisor_override 1, a sum pool) has a NIR equivalent");
      return make_nir_node(name, sum ? "SumPool2d" : "AvgPool2d")
          .set("kernel_size", shape_tensor(to_vector(o.kernel_size())))
          .set("stride", shape_tensor(to_vector(o.stride())))
          .set("padding", shape_tensor(to_vector(o.padding())));
    }
    if (auto* n = dynamic_cast<const NeuronImpl*>(&m)) {
      NirNode node = make_nir_node(name, kind_name(n->options().kind()));
      for (const auto& field : neuron_fields(n->options().kind())) node.set(field, n->param(field).detach().cpu().clone());
      return node;
    }
    if (auto* s = dynamic_cast<const ScaleImpl*>(&m)) return make_nir_node(name, "Scale").set("scale", s->scale.detach().cpu().clone());
    if (auto* t = dynamic_cast<const ThresholdImpl*>(&m))
      return make_nir_node(name, "Threshold").set("threshold", t->threshold.detach().cpu().clone());
    if (auto* d = dynamic_cast<const DelayImpl*>(&m)) {
      const torch::Tensor delay = d->named_buffers(false)["delay"];
      return make_nir_node(name, "Delay").set("delay", delay.detach().cpu().clone());
    }
    if (auto* g = dynamic_cast<const GraphImpl*>(&m)) return graph_node(*g, name);
    if (auto* n = dynamic_cast<const snn::NeuronImpl*>(&m)) return tracetorch_neuron(*n, name, path);
    if (is_sequential(m)) fail(path, "nested Sequential outside a chain");
    fail(path, "no NIR equivalent for this module (" + m.name() + ")");
  }

  template <typename ConvImpl>
  NirNode conv(const ConvImpl& c, const char* type, const std::string& name, const std::string& path,
               const std::vector<int64_t>& in_shape) {
    const auto& o = c.options;
    if (!holds_alternative<torch::enumtype::kZeros>(o.padding_mode()))
      fail(path, "only zero padding has a NIR equivalent");
    NirNode node = make_nir_node(name, type);
    node.set("weight", c.weight.detach().cpu().clone());
    node.set("bias", c.bias.defined() ? c.bias.detach().cpu().clone() : torch::zeros({o.out_channels()}));
    node.set("stride", shape_tensor(to_vector(o.stride())));
    node.set("dilation", shape_tensor(to_vector(o.dilation())));
    node.set("groups", torch::tensor(o.groups(), torch::kInt64));
    if (holds_alternative<torch::enumtype::kSame>(o.padding())) {
      node.set("padding", io::NirValue("same"));
    } else if (holds_alternative<torch::enumtype::kValid>(o.padding())) {
      node.set("padding", io::NirValue("valid"));
    } else {
      node.set("padding", shape_tensor(to_vector(get<0>(o.padding()))));
    }
    if (in_shape.size() > 1) node.set("input_shape", shape_tensor({in_shape.begin() + 1, in_shape.end()}));
    return node;
  }

  NirNode graph_node(const GraphImpl& g, const std::string& name) {
    NirNode out = make_nir_node(name, "NIRGraph");
    out.metadata = g.graph().metadata;
    for (const NirNode& spec : g.graph().nodes) {
      if (spec.type == "Input" || spec.type == "Output") {
        out.add_node(io_node(spec.name, spec.type, g.output_shape(spec.name)));
        continue;
      }
      NirNode node = describe(*g.node_module(spec.name), spec.name, g.input_shape(spec.name));
      node.name = spec.name;
      node.metadata = spec.metadata;
      out.add_node(std::move(node));
    }
    out.edges = g.graph().edges;
    return out;
  }

  // ---- traceTorch neurons ----

  // NIR time constant for a per-step decay, so that the reader's rule gives decay^1 per step.
  torch::Tensor tau_of(const torch::Tensor& decay) const {
    const double dt = options_.dt();
    return options_.discretisation() == Discretisation::Exact ? decay.log().reciprocal().mul(-dt)
                                                              : torch::rsub(decay, 1).reciprocal().mul(dt);
  }

  NirNode tracetorch_neuron(const snn::NeuronImpl& n, const std::string& name, const std::string& path) {
    const snn::NeuronOptions& o = n.options();
    const std::string cls = o.class_name();
    // NIR neurons see [batch, N]: the feature axis is the last one (dim -1, or 1).
    if (n.dim() != -1 && n.dim() != 1)
      fail(path, cls + " with dim " + std::to_string(n.dim()) + ": only the last feature axis exports");
    if (o.dual())
      fail(path, cls + " is dual: its positive / negative split of the drive (a rectification) has no NIR primitive");
    const int64_t size = n.num_neurons();
    auto p = [&](const std::string& param) {
      return n.get(param).detach().to(torch::kCPU, torch::kFloat64).expand({size}).clone();
    };
    auto zeros = torch::zeros({size}, torch::kFloat64);
    auto li = [&](const std::string& node_name, const torch::Tensor& decay, const torch::Tensor& r) {
      return make_nir_node(node_name, "LI").set("tau", tau_of(decay)).set("r", r).set("v_leak", zeros);
    };
    const torch::Tensor beta = p("beta");
    // An accumulating membrane (mem = beta mem + u) needs r (1 - beta) = 1; an EMA one r = 1.
    const torch::Tensor r_mem = o.ema() ? torch::ones_like(beta) : torch::rsub(beta, 1).reciprocal();

    if (o.output() == snn::Output::LI) {
      if (!o.synaptic()) return li(name, beta, r_mem);
      return make_nir_node(name, "CubaLI")
          .set("tau_syn", tau_of(p("alpha")))
          .set("tau_mem", tau_of(beta))
          .set("r", r_mem)
          .set("v_leak", zeros)
          .set("w_in", torch::ones_like(beta));
    }
    if (o.spike_fn().name != "sigmoid4x" || o.quant_fn().name != "round_ste(1.0)")
      fail(path, cls + " with spike_fn " + o.spike_fn().name + " and quant_fn " + o.quant_fn().name +
                     ": only Heaviside spikes (sigmoid4x then round_ste(1.0)) have a NIR equivalent; continuous "
                     "or stochastic outputs do not");

    NirNode g = make_nir_node(name, "NIRGraph");
    auto scale = [&](const std::string& node_name, const torch::Tensor& s) {
      g.add_node(make_nir_node(node_name, "Scale").set("scale", s));
    };
    auto threshold = [&](const std::string& node_name, const torch::Tensor& t) {
      g.add_node(make_nir_node(node_name, "Threshold").set("threshold", t));
    };
    g.add_node(io_node("input", "Input", {size}));
    if (o.synaptic()) {
      g.add_node(li("syn", p("alpha"), torch::ones_like(beta)));
      g.add_edge("input", "syn");
      g.add_edge("syn", "mem");
    } else {
      g.add_edge("input", "mem");
    }
    g.add_node(li("mem", beta, r_mem));
    std::vector<std::string> outputs;  // the nodes whose sum is the neuron's output
    const torch::Tensor bias = p("bias");
    if (o.output() == snn::Output::B) {
      const torch::Tensor theta = p("threshold");
      threshold("spike", theta.sub(bias));
      scale("reset", beta.mul(theta).neg());  // mem -= spike * theta, seen at the next step as beta * that
      g.add_edge("mem", "spike");
      g.add_edge("spike", "reset");
      g.add_edge("reset", "mem");
      outputs = {"spike"};
    } else {
      const torch::Tensor theta_pos = p("pos_threshold"), theta_neg = p("neg_threshold");
      threshold("spike_pos", theta_pos.sub(bias));
      scale("negate", torch::full({size}, -1.0, torch::kFloat64));
      threshold("spike_neg", theta_neg.add(bias));  // fires when -mem > theta_neg + bias
      scale("reset_pos", beta.mul(theta_pos).neg());
      scale("reset_neg", beta.mul(theta_neg));
      g.add_edge("mem", "spike_pos");
      g.add_edge("mem", "negate");
      g.add_edge("negate", "spike_neg");
      g.add_edge("spike_pos", "reset_pos");
      g.add_edge("spike_neg", "reset_neg");
      g.add_edge("reset_pos", "mem");
      g.add_edge("reset_neg", "mem");
      const bool scaled = o.output() == snn::Output::TS;
      scale("out_neg", scaled ? p("neg_scale").neg() : torch::full({size}, -1.0, torch::kFloat64));
      g.add_edge("spike_neg", "out_neg");
      if (scaled) {
        scale("out_pos", p("pos_scale"));
        g.add_edge("spike_pos", "out_pos");
        outputs = {"out_pos", "out_neg"};
      } else {
        outputs = {"spike_pos", "out_neg"};
      }
    }
    g.add_node(io_node("output", "Output", {size}));
    for (const auto& source : outputs) g.add_edge(source, "output");
    if (o.recurrent()) {
      // rec = gamma rec + (1 - gamma) previous output; mem gets rec_weight * rec.
      g.add_node(li("rec", p("gamma"), torch::ones_like(beta)));
      scale("rec_weight", p("rec_weight"));
      for (const auto& source : outputs) g.add_edge(source, "rec");
      g.add_edge("rec", "rec_weight");
      g.add_edge("rec_weight", "mem");
    }
    return g;
  }

  ExportOptions options_;
};

}  // namespace

io::NirGraph export_graph(const torch::nn::Module& model, const ExportOptions& options) {
  io::NirGraph graph = Exporter(options).model(model);
  io::validate_nir(graph, "export_graph");
  return graph;
}

void save(const torch::nn::Module& model, const std::string& path, const ExportOptions& options) {
  io::save_nir(export_graph(model, options), path);
}

}  // namespace tt::nir
