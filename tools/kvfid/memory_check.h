#pragma once
// The memory check every command that runs the reference makes before it loads the
// model: the mapped weight file plus the working memory its runs need (estimated by
// reference/mp/memory_estimate.h) against what this process may still use. A run that
// cannot fit is refused with one line (MemoryError, exit 2).
#include <cstdint>
#include <string>

#include "reference/mp/memory_estimate.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

// Bytes the engine's packed weights take at most (FP32, a block format's decode): the
// commands that also run the engine add them.
std::uint64_t engine_weight_bytes(const ModelConfig& config);

// Throws MemoryError naming `command` when the model's weight file plus `working`
// bytes exceed the available memory.
void check_memory(const std::string& command, const std::string& model_path, std::uint64_t working);

}  // namespace kvfid::cli
