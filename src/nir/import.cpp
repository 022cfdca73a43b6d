// One module per NIR node type, its parameters taken from the node and its output shape computed
// from the input shape (NIR shapes are per sample; the modules see [batch, shape...]).
#include "nir/import.h"

#include "core/text.h"
#include "nir/params.h"
#include "tracetorch/core/error.h"
#include "tracetorch/nir/neuron.h"
#include "tracetorch/nir/nodes.h"

namespace tt::nir::detail {

namespace {

using tt::detail::shape_string;

class NodeReader {
 public:
  NodeReader(const io::NirNode& node, std::string where, torch::Dtype dtype)
      : node_(node), where_(std::move(where)), dtype_(dtype) {}

  [[noreturn]] void fail(const std::string& message) const {
    throw ValueError("NIR node '" + where_ + "' (" + node_.type + "): " + message);
  }
  const std::string& where() const { return where_; }

  torch::Tensor array(const std::string& field) const {
    const io::NirValue& value = node_.get(field);
    if (!value.is_array()) fail("field '" + field + "' must be numbers");
    return value.array();
  }
  // A parameter in the import dtype.
  torch::Tensor floats(const std::string& field) const { return array(field).to(dtype_).contiguous(); }
  torch::Dtype dtype() const { return dtype_; }

  int64_t integer(const std::string& field) const {
    const torch::Tensor t = array(field);
    if (t.numel() != 1) fail("field '" + field + "' must be one integer, got shape " + shape_string(t.sizes()));
    const double v = t.to(torch::kFloat64).item<double>();
    if (v != static_cast<double>(static_cast<int64_t>(v))) fail("field '" + field + "' must be an integer");
    return static_cast<int64_t>(v);
  }

  // An integer or a list of `n` integers (kernel sizes, strides).
  std::vector<int64_t> integers(const std::string& field, size_t n) const {
    const torch::Tensor t = array(field).to(torch::kFloat64).flatten();
    if (t.numel() != 1 && t.numel() != static_cast<int64_t>(n))
      fail("field '" + field + "' must be one integer or " + std::to_string(n) + " of them, got " +
           std::to_string(t.numel()));
    std::vector<int64_t> out;
    for (size_t i = 0; i < n; ++i) {
      const double v = t[t.numel() == 1 ? 0 : static_cast<int64_t>(i)].item<double>();
      if (v != static_cast<double>(static_cast<int64_t>(v)) || v < 0)
        fail("field '" + field + "' must hold non-negative integers");
      out.push_back(static_cast<int64_t>(v));
    }
    return out;
  }

  const io::NirNode& node() const { return node_; }

 private:
  const io::NirNode& node_;
  std::string where_;
  torch::Dtype dtype_;
};

// floor((L + 2p - d (k - 1) - 1) / s) + 1, the output length of a convolution or pool.
int64_t window_output(const NodeReader& r, int64_t length, int64_t padding, int64_t dilation, int64_t kernel,
                      int64_t stride) {
  if (stride <= 0) r.fail("strides must be positive");
  const int64_t span = length + 2 * padding - dilation * (kernel - 1) - 1;
  if (span < 0) r.fail("the window is larger than the (padded) input of length " + std::to_string(length));
  return span / stride + 1;
}

template <size_t D>
BuiltNode build_conv(const NodeReader& r, const std::vector<int64_t>& in_shape) {
  const torch::Tensor weight = r.floats("weight");
  if (weight.dim() != static_cast<int64_t>(D) + 2)
    r.fail("weight must have " + std::to_string(D + 2) + " dimensions, got " + shape_string(weight.sizes()));
  if (in_shape.size() != D + 1)
    r.fail("expects an input of shape [channels, " + std::string(D == 1 ? "length" : "height, width") + "], got " +
           shape_string(in_shape));
  const int64_t groups = r.integer("groups");
  if (groups <= 0) r.fail("groups must be positive");
  const int64_t out_channels = weight.size(0), in_channels = weight.size(1) * groups;
  if (in_channels != in_shape[0] || out_channels % groups != 0)
    r.fail("weight " + shape_string(weight.sizes()) + " with groups " + std::to_string(groups) +
           " does not fit an input of shape " + shape_string(in_shape));
  const torch::Tensor bias = r.floats("bias").flatten();
  if (bias.numel() != out_channels) r.fail("bias must have " + std::to_string(out_channels) + " entries");
  if (r.node().has("input_shape")) {
    const auto declared = r.integers("input_shape", D);
    if (!std::equal(declared.begin(), declared.end(), in_shape.begin() + 1))
      r.fail("input_shape " + shape_string(declared) + " does not match the incoming shape " + shape_string(in_shape));
  }
  const auto stride = r.integers("stride", D);
  const auto dilation = r.integers("dilation", D);
  std::vector<int64_t> kernel(weight.sizes().begin() + 2, weight.sizes().end());

  torch::ExpandingArray<D> stride_a(stride), dilation_a(dilation), kernel_a(kernel);
  using Options = torch::nn::ConvOptions<D>;
  Options options(in_channels, out_channels, kernel_a);
  options.stride(stride_a).dilation(dilation_a).groups(groups).bias(true);
  std::vector<int64_t> out_shape = {out_channels};
  const io::NirValue& padding = r.node().get("padding");
  if (padding.is_text()) {
    if (padding.text() == "valid") {
      options.padding(torch::kValid);
      for (size_t i = 0; i < D; ++i)
        out_shape.push_back(window_output(r, in_shape[i + 1], 0, dilation[i], kernel[i], stride[i]));
    } else if (padding.text() == "same") {
      for (int64_t s : stride)
        if (s != 1) r.fail("padding 'same' needs stride 1");
      options.padding(torch::kSame);
      out_shape.insert(out_shape.end(), in_shape.begin() + 1, in_shape.end());
    } else {
      r.fail("padding must be 'same', 'valid' or integers, got '" + padding.text() + "'");
    }
  } else {
    const auto pad = r.integers("padding", D);
    options.padding(torch::ExpandingArray<D>(pad));
    for (size_t i = 0; i < D; ++i)
      out_shape.push_back(window_output(r, in_shape[i + 1], pad[i], dilation[i], kernel[i], stride[i]));
  }
  torch::nn::AnyModule module;
  if constexpr (D == 1) {
    torch::nn::Conv1d conv(options);
    conv->weight.set_data(weight);
    conv->bias.set_data(bias);
    module = torch::nn::AnyModule(conv);
  } else {
    torch::nn::Conv2d conv(options);
    conv->weight.set_data(weight);
    conv->bias.set_data(bias);
    module = torch::nn::AnyModule(conv);
  }
  return {module, out_shape};
}

BuiltNode build_pool(const NodeReader& r, const std::vector<int64_t>& in_shape, bool sum) {
  if (in_shape.size() != 3) r.fail("expects an input of shape [channels, height, width], got " + shape_string(in_shape));
  const auto kernel = r.integers("kernel_size", 2);
  const auto stride = r.integers("stride", 2);
  const auto padding = r.integers("padding", 2);
  std::vector<int64_t> out_shape = {in_shape[0]};
  for (size_t i = 0; i < 2; ++i) {
    if (kernel[i] <= 0) r.fail("kernel sizes must be positive");
    if (2 * padding[i] > kernel[i]) r.fail("padding must be at most half the kernel size");
    out_shape.push_back(window_output(r, in_shape[i + 1], padding[i], 1, kernel[i], stride[i]));
  }
  // NIR's AvgPool is SumPool then a scale by 1 / kernel area: padded zeros count.
  torch::nn::AvgPool2dOptions options{torch::ExpandingArray<2>(kernel)};
  options.stride(torch::ExpandingArray<2>(stride)).padding(torch::ExpandingArray<2>(padding)).count_include_pad(true);
  if (sum) options.divisor_override(1);
  return {torch::nn::AnyModule(torch::nn::AvgPool2d(options)), out_shape};
}

BuiltNode build_flatten(const NodeReader& r, const std::vector<int64_t>& in_shape) {
  if (r.node().has("input_type")) {
    const torch::Tensor declared = r.array("input_type").to(torch::kLong).flatten();
    if (declared.numel() != static_cast<int64_t>(in_shape.size()) ||
        !std::equal(in_shape.begin(), in_shape.end(), declared.data_ptr<int64_t>()))
      r.fail("input_type " + shape_string(declared.sizes().vec()) + " does not match the incoming shape " +
             shape_string(in_shape));
  }
  // NIR counts dimensions of the per-sample shape (no batch axis), negatives from the end.
  const auto rank = static_cast<int64_t>(in_shape.size());
  auto resolve = [&](int64_t d) { return d < 0 ? d + rank : d; };
  const int64_t start = resolve(r.integer("start_dim")), end = resolve(r.integer("end_dim"));
  if (start < 0 || end >= rank || start > end)
    r.fail("start_dim " + std::to_string(r.integer("start_dim")) + " / end_dim " + std::to_string(r.integer("end_dim")) +
           " do not fit an input of shape " + shape_string(in_shape));
  std::vector<int64_t> out_shape(in_shape.begin(), in_shape.begin() + start);
  int64_t merged = 1;
  for (int64_t d = start; d <= end; ++d) merged *= in_shape[static_cast<size_t>(d)];
  out_shape.push_back(merged);
  out_shape.insert(out_shape.end(), in_shape.begin() + end + 1, in_shape.end());
  torch::nn::Flatten flatten(torch::nn::FlattenOptions().start_dim(start + 1).end_dim(end + 1));
  return {torch::nn::AnyModule(flatten), out_shape};
}

BuiltNode build_affine(const NodeReader& r, const std::vector<int64_t>& in_shape, bool with_bias) {
  const torch::Tensor weight = r.floats("weight");
  if (weight.dim() != 2) r.fail("weight must be a matrix [out, in], got shape " + shape_string(weight.sizes()));
  if (in_shape.empty() || in_shape.back() != weight.size(1))
    r.fail("weight " + shape_string(weight.sizes()) + " does not fit an input of shape " + shape_string(in_shape));
  torch::nn::Linear linear(torch::nn::LinearOptions(weight.size(1), weight.size(0)).bias(with_bias));
  linear->weight.set_data(weight);
  if (with_bias) {
    const torch::Tensor bias = r.floats("bias");
    if (bias.numel() != weight.size(0))
      r.fail("bias of shape " + shape_string(bias.sizes()) + " does not fit weight " + shape_string(weight.sizes()));
    linear->bias.set_data(bias.reshape({weight.size(0)}));
  }
  std::vector<int64_t> out_shape = in_shape;
  out_shape.back() = weight.size(0);
  return {torch::nn::AnyModule(linear), out_shape};
}

}  // namespace

std::vector<int64_t> io_shape(const io::NirNode& node, const std::string& where) {
  const NodeReader r(node, where, torch::kFloat64);
  const torch::Tensor shape = r.array("shape").to(torch::kFloat64).flatten();
  std::vector<int64_t> out;
  for (int64_t i = 0; i < shape.numel(); ++i) {
    const double v = shape[i].item<double>();
    if (v < 1 || v != static_cast<double>(static_cast<int64_t>(v))) r.fail("shape must hold positive integers");
    out.push_back(static_cast<int64_t>(v));
  }
  return out;
}

BuiltNode build_node(const io::NirNode& node, const std::vector<int64_t>& in_shape, const ImportOptions& options,
                     const std::string& where) {
  const NodeReader r(node, where, options.dtype());
  const std::string& type = node.type;
  try {
    if (type == "Affine") return build_affine(r, in_shape, true);
    if (type == "Linear") return build_affine(r, in_shape, false);
    if (type == "Conv1d") return build_conv<1>(r, in_shape);
    if (type == "Conv2d") return build_conv<2>(r, in_shape);
    if (type == "SumPool2d") return build_pool(r, in_shape, true);
    if (type == "AvgPool2d") return build_pool(r, in_shape, false);
    if (type == "Flatten") return build_flatten(r, in_shape);
    const torch::Dtype dtype = options.dtype();
    if (type == "Scale")
      return {torch::nn::AnyModule(Scale(ScaleOptions(in_shape, r.floats("scale")).dtype(dtype))), in_shape};
    if (type == "Threshold")
      return {torch::nn::AnyModule(Threshold(ThresholdOptions(in_shape, r.floats("threshold")).dtype(dtype))), in_shape};
    if (type == "Delay")
      return {torch::nn::AnyModule(Delay(DelayOptions(in_shape, r.floats("delay")).dt(options.dt()).dtype(dtype))),
              in_shape};
    if (type == "NIRGraph") {
      Graph sub(node, options);
      if (sub->input_names().size() != 1 || sub->output_names().size() != 1)
        r.fail("a nested graph needs exactly one Input and one Output node");
      const auto& want = sub->output_shape(sub->input_names()[0]);
      if (want != in_shape)
        r.fail("its Input takes " + shape_string(want) + ", the incoming edges carry " + shape_string(in_shape));
      std::vector<int64_t> out_shape = sub->output_shape(sub->output_names()[0]);
      return {torch::nn::AnyModule(sub), out_shape};
    }
    const NeuronKind kind = kind_from_name(type);  // the six neuron types; others were rejected by validation
    NeuronOptions neuron(kind, in_shape);
    neuron.dt(options.dt()).discretisation(options.discretisation()).dtype(dtype);
    for (const auto& field : neuron_fields(kind))
      if (node.has(field)) neuron.set(field, r.floats(field));
    return {torch::nn::AnyModule(Neuron(neuron)), in_shape};
  } catch (const ValueError& e) {
    const std::string message = e.what();
    if (message.rfind("NIR node", 0) == 0) throw;
    r.fail(message);
  } catch (const c10::Error& e) {
    r.fail(tt::detail::first_line(e.what_without_backtrace()));
  }
}

}  // namespace tt::nir::detail
