#include "tracetorch/core/arch.h"
#include "tracetorch/ssm/ssm.h"

namespace tt::arch {

namespace {

// The optional integer arguments of each ssm.* type, in the Python constructor's order. Only
// arguments that were given are written back, so JSON -> model -> JSON is the identity.
#define TT_ARG_IO(NAME)                                                                   \
  {#NAME, [](Options& o, int64_t v) { o.NAME(v); }, [](const Options& o) { return o.NAME(); }, \
   [](const Options& o) { return o.NAME##_given(); }}

template <typename Options>
struct IntArg {
  const char* name;
  void (*set)(Options&, int64_t);
  int64_t (*get)(const Options&);
  bool (*given)(const Options&);
};

template <typename Holder, typename Impl, typename Options>
void add_ssm_type(Registry& registry, const std::string& type, std::vector<IntArg<Options>> optional_args) {
  Entry entry;
  entry.build = [optional_args](Args& args, const Registry&) {
    Options options(args.get_int("num_neurons"));
    for (const auto& arg : optional_args)
      if (args.has(arg.name)) arg.set(options, args.get_int(arg.name));
    args.finish();
    return torch::nn::AnyModule(Holder(options));
  };
  entry.describe = [type, optional_args](const torch::nn::Module& module, const Registry&) -> std::optional<json> {
    const auto* layer = dynamic_cast<const Impl*>(&module);
    if (layer == nullptr) return std::nullopt;
    const Options& o = layer->options();
    json node;
    node["type"] = type;
    node["num_neurons"] = o.num_neurons();
    for (const auto& arg : optional_args)
      if (arg.given(o)) node[arg.name] = arg.get(o);
    return node;
  };
  registry.add(type, std::move(entry));
}

}  // namespace

void register_ssm_types(Registry& registry) {
  {
    using Options = ssm::S4Options;
    add_ssm_type<ssm::S4, ssm::S4Impl, Options>(registry, "ssm.S4", {TT_ARG_IO(d_state), TT_ARG_IO(dim)});
  }
  {
    using Options = ssm::S5Options;
    add_ssm_type<ssm::S5, ssm::S5Impl, Options>(registry, "ssm.S5", {TT_ARG_IO(d_state), TT_ARG_IO(dim)});
  }
  {
    using Options = ssm::S6Options;
    add_ssm_type<ssm::S6, ssm::S6Impl, Options>(registry, "ssm.S6",
                                                {TT_ARG_IO(d_state), TT_ARG_IO(dt_rank), TT_ARG_IO(dim)});
  }
  {
    using Options = ssm::MambaOptions;
    add_ssm_type<ssm::Mamba, ssm::MambaImpl, Options>(
        registry, "ssm.Mamba",
        {TT_ARG_IO(d_state), TT_ARG_IO(dim), TT_ARG_IO(dt_rank), TT_ARG_IO(conv_kernel)});
  }
}
#undef TT_ARG_IO

}  // namespace tt::arch
