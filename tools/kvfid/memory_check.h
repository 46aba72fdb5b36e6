#pragma once
// The memory check every command that runs the reference makes before it loads the
// model: the mapped weight file plus the working memory its runs need (estimated by
// reference/mp/memory_estimate.h) against what this process may still use. A run that
// cannot fit is refused with one line (MemoryError, exit 2).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reference/model/weight_storage.h"
#include "reference/mp/memory_estimate.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

// Bytes the engine's packed matrices add to the mapped weight file, for the largest of
// `formats` (the engines a command builds one at a time): none where the engine reads
// the file's own bytes (stored already in that format: cuda/engine/packed_model.h),
// else every parameter at the packed width (FP32 for a block format's decode). `stored`:
// stored_matrix_type of the model; nullopt counts every format as a copy.
std::uint64_t engine_weight_bytes(const ModelConfig& config, const std::vector<WeightFormat>& formats,
                                  std::optional<WeightType> stored);

// Throws MemoryError naming `command` when the model's weight file plus `working`
// bytes exceed the available memory.
void check_memory(const std::string& command, const std::string& model_path, std::uint64_t working);

}  // namespace kvfid::cli
