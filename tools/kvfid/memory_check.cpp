#include "tools/kvfid/memory_check.h"

#include "reference/io/load_model.h"
#include "reference/util/available_memory.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

std::uint64_t engine_weight_bytes(const ModelConfig& config) { return std::uint64_t(config.parameter_count()) * 4; }

void check_memory(const std::string& command, const std::string& model_path, std::uint64_t working) {
  require_memory(command, model_weights_bytes(model_path), working, available_memory());
}

}  // namespace kvfid::cli
