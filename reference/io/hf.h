#pragma once
// Hugging Face style model folders: config.json (LlamaForCausalLM, MistralForCausalLM,
// Qwen2ForCausalLM, Qwen3ForCausalLM or Gemma2ForCausalLM) + model.safetensors with HF tensor names. Such a folder loads
// in transformers unchanged, and kvfid reads back exactly what it wrote.
#include <optional>
#include <string>

#include "reference/formats/float_format.h"
#include "reference/io/safetensors.h"
#include "reference/model/model.h"
#include "reference/util/input_error.h"

namespace kvfid::ref {

inline constexpr const char* kHfConfigFile = "config.json";
inline constexpr const char* kHfWeightsFile = "model.safetensors";

// Only config.json is read, so this works on the config of a model whose weights
// are not present. Throws InputError naming config.json and the problem.
ModelConfig read_hf_config(const std::string& dir);
// Every tensor is checked against the config (shape, dtype F32/F16/BF16, finite);
// missing and unexpected tensors are named.
Model read_hf_model(const std::string& dir);

// The matrix element type a safetensors dtype stores (F32, F16, BF16); nullopt for any
// other, which no weight may have.
std::optional<WeightType> weight_dtype(DType t);

// Throws std::invalid_argument (naming `writer`) unless an HF folder's config.json can
// express `config`: each family's features with that family, and only with it.
void check_hf_expressible(const ModelConfig& config, const std::string& writer);
// The config.json text that describes `config` (rotate-half RoPE pairs; DeepSeek's interleaved).
std::string hf_config_json(const ModelConfig& config, FloatFormat storage);
// A value the storage format cannot hold exactly (write_hf_model): the caller that
// chose the format says how to choose another.
class NotRepresentableError : public InputError {
 public:
  using InputError::InputError;
};

// Writes config.json and model.safetensors into `dir`, both or neither. Refuses
// (std::invalid_argument) a model with interleaved RoPE, which HF cannot express;
// refuses (NotRepresentableError naming the tensor) a value `storage` cannot hold
// exactly, so the folder always holds exactly the in-memory model.
void write_hf_model(const std::string& dir, const Model& model, FloatFormat storage);

}  // namespace kvfid::ref
