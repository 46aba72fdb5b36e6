#pragma once
// A synthetic model written straight to a Hugging Face folder, streamed: what
// `kvfid fixture` writes, and what tests regenerate from a recipe.
#include <cstdint>
#include <string>

#include "reference/formats/float_format.h"
#include "reference/io/hf_stream.h"
#include "reference/model/config.h"

namespace kvfid::ref {

// `config` is a shape or a reduction of one whose full depth is `layout_layers`
// (SynthOptions::layout_layers); the values are generated in `dtype`, so the folder
// holds them exactly. The bytes depend on nothing else (not options.threads).
void write_synthetic_hf(const std::string& dir, const ModelConfig& config, int layout_layers, std::uint64_t seed,
                        FloatFormat dtype, const HfStreamOptions& options = {});

}  // namespace kvfid::ref
