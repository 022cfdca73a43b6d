// tracetorch convert FILE --dtype float16 --output OUT [--key K]: floating tensors to another
// floating dtype; integer and bool tensors are kept. Exit 0, or 1 for an error.
#include <cstdio>
#include <map>
#include <memory>

#include "commands.h"
#include "tracetorch/core/error.h"
#include "tracetorch/io/state_dict_tools.h"

namespace tt_cli {

namespace {

struct ConvertArgs {
  Input input;
  std::string dtype, output;
  bool json = false;
};

int convert(const ConvertArgs& a) {
  static const std::map<std::string, torch::Dtype> dtypes = {
      {"float32", torch::kFloat32}, {"float64", torch::kFloat64}, {"float16", torch::kFloat16},
      {"bfloat16", torch::kBFloat16}};
  auto found = dtypes.find(a.dtype);
  if (found == dtypes.end())
    throw tt::ValueError("convert: --dtype must be float32, float64, float16 or bfloat16, got '" + a.dtype + "'");
  const tt::io::TensorDict in = a.input.read();
  const tt::io::TensorDict out = tt::io::convert_dtype(in, found->second);
  tt::io::save_tensor_dict(out, a.output);
  size_t converted = 0;
  for (size_t i = 0; i < in.size(); ++i) converted += in[i].value().scalar_type() != out[i].value().scalar_type();
  if (a.json) {
    print_json({{"dtype", a.dtype}, {"converted", converted}, {"kept", in.size() - converted}});
  } else {
    std::printf("converted %zu of %zu tensors to %s\n", converted, in.size(), a.dtype.c_str());
  }
  return 0;
}

}  // namespace

Command add_convert(CLI::App& app) {
  auto args = std::make_shared<ConvertArgs>();
  auto* cmd = app.add_subcommand("convert", "convert floating tensors to another dtype");
  add_input(*cmd, args->input);
  cmd->add_option("--dtype", args->dtype, "float32, float64, float16 or bfloat16")->required();
  cmd->add_option("--output,-o", args->output, "where to write the result (a plain state_dict .pt)")->required();
  cmd->add_flag("--json", args->json, "one JSON document instead of text");
  return [args] { return convert(*args); };
}

}  // namespace tt_cli
