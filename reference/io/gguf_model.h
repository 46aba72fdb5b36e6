#pragma once
// A model from a GGUF file (gguf.h) of the llama or qwen2 architecture, as llama.cpp
// reads it: the config from the "{arch}.*" metadata, the weights as views of the mapped
// tensors (F32, F16, BF16 read in place; Q8_0 and Q4_0 as block views decoded exactly
// where used, reference/model/matrix.h), so the golden is the exact forward of exactly
// what the file stores. RoPE: llama.cpp's llama architecture rotates adjacent pairs
// (its HF converter permutes q and k into that order), qwen2 rotates halves (NEOX).
// Anything else -- another architecture, rope scaling, partial rotary dimensions, a
// tensor kvfid has no place for -- is refused with one line naming it.
#include <string>

#include "reference/io/gguf.h"
#include "reference/model/config.h"
#include "reference/model/model.h"

namespace kvfid::ref {

ModelConfig gguf_config(const GgufFile& file);
Model read_gguf_model(const std::string& path);
ModelConfig read_gguf_config(const std::string& path);

}  // namespace kvfid::ref
