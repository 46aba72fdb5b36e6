#pragma once
// One loader path for the reference and the engine.
#include <cstdint>
#include <optional>
#include <string>

#include "reference/model/model.h"

namespace kvfid::ref {

// PATH is a llama2.c v0 checkpoint (a file) or a Hugging Face style folder
// (config.json with LlamaForCausalLM or Qwen2ForCausalLM + model.safetensors with
// F32/F16/BF16 tensors under HF names). Checks every dimension against the config and
// rejects NaN/Inf weights. Throws InputError naming the file and the problem.
Model load_model(const std::string& path);

}  // namespace kvfid::ref

namespace kvfid::ref {

// The configuration alone: config.json of a folder (its weights may be absent) or
// the header of a checkpoint (checked against the file size). For `kvfid info`.
ModelConfig load_model_config(const std::string& path);

// The element type every weight matrix is stored in, read from a folder's safetensors
// header alone (the tensors' bytes are not touched), when all matrices share one;
// nullopt when they differ, and for a llama2.c file (whose query and key rows the loader
// reorders, so no consumer reads them in place).
std::optional<WeightType> stored_matrix_type(const std::string& path);

// The size of the file holding the weights (the checkpoint, or a folder's
// model.safetensors): what a loaded model maps into memory.
std::uint64_t model_weights_bytes(const std::string& path);

}  // namespace kvfid::ref
