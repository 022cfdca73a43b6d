#include "tracetorch/snn/presets.h"

#include "tracetorch/core/error.h"

namespace tt::snn {

NeuronOptions preset_options(const std::string& name, int64_t num_neurons) {
#define TT_PRESET_CASE(NAME, D, S, R, EMA, OUT) \
  if (name == #NAME) return NAME##Options(num_neurons);
  TT_DETAIL_SNN_PRESET_TABLE(TT_PRESET_CASE)
#undef TT_PRESET_CASE
  throw ValueError("unknown SNN layer '" + name + "'");
}

const std::vector<std::string>& preset_names() {
  static const std::vector<std::string> names = {
#define TT_PRESET_NAME(NAME, D, S, R, EMA, OUT) #NAME,
      TT_DETAIL_SNN_PRESET_TABLE(TT_PRESET_NAME)
#undef TT_PRESET_NAME
  };
  return names;
}

}  // namespace tt::snn
