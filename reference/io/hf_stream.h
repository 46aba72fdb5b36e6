#pragma once
// Writing a Hugging Face folder (config.json + model.safetensors) whose weights never
// exist in memory as a whole: each tensor is produced a chunk of rows at a time,
// encoded in its storage format and appended to the file. For models larger than
// memory (a 7B model is 15 GB in BF16); the bytes equal write_hf_model's for the same
// values.
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/model/config.h"
#include "reference/model/weight_role.h"

namespace kvfid::ref {

class Progress;

// One tensor of an HF folder, in file order.
struct HfTensorSlot {
  std::string name;                  // HF name, e.g. model.layers.3.self_attn.k_proj.weight
  std::vector<std::int64_t> shape;   // [rows, cols], or [n] for a norm gain or a bias
  WeightRole role;
  int layer;                         // -1 for the embedding, the final norm and the classifier

  std::int64_t rows() const { return shape.size() == 2 ? shape[0] : 1; }
  std::int64_t cols() const { return shape.back(); }
};

// The tensors write_hf_model writes for `config`, in its order (no lm_head when tied).
std::vector<HfTensorSlot> hf_tensor_layout(const ModelConfig& config);

// Bytes of config.json plus model.safetensors for `config` stored in `storage`.
std::uint64_t hf_folder_bytes(const ModelConfig& config, FloatFormat storage);

// Fills rows [begin, end) of a tensor into out [end - begin, cols]. Called from several
// threads at once, on disjoint rows; every value must be exactly representable in the
// storage format (std::logic_error otherwise: the producer broke its contract).
using HfRowSource = std::function<void(const HfTensorSlot&, std::int64_t begin, std::int64_t end, double* out)>;

struct HfStreamOptions {
  int threads = 1;               // >= 1 (hardware_threads() for all); the bytes do not depend on it
  Progress* progress = nullptr;  // advanced in MiB of model.safetensors
};

// Writes `dir` atomically (both files or neither). First refuses, with
// InputError(dir, ...) saying what it needs and what there is, when the file system
// holding `dir` has less free space than hf_folder_bytes.
void write_hf_streamed(const std::string& dir, const ModelConfig& config, FloatFormat storage,
                       const HfRowSource& source, const HfStreamOptions& options = {});

}  // namespace kvfid::ref
