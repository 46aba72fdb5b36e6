#include "tools/kvfid/memory_check.h"

#include <algorithm>

#include "reference/io/load_model.h"
#include "reference/util/available_memory.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

std::uint64_t engine_weight_bytes(const ModelConfig& config, const std::vector<WeightFormat>& formats,
                                  std::optional<WeightType> stored) {
  std::uint64_t most = 0;
  for (const WeightFormat& f : formats) {
    const std::optional<WeightType> packed_as = f.plain ? std::optional(weight_type_of(*f.plain)) : std::nullopt;
    if (packed_as && stored == packed_as) continue;  // borrowed from the mapping
    const std::uint64_t width = packed_as ? weight_type_bytes(*packed_as) : 4;
    most = std::max(most, std::uint64_t(config.parameter_count()) * width);
  }
  return most;
}

void check_memory(const std::string& command, const std::string& model_path, std::uint64_t working) {
  require_memory(command, model_weights_bytes(model_path), working, available_memory());
}

}  // namespace kvfid::cli
