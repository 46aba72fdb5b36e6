#pragma once
// The model converted once to the engine's storage (reference/model/weight_storage.h):
// matrices in a plain weight format (round to nearest even from the exact float64
// values; the file's bytes themselves where it already stores that format) or, for a
// block format, its codes decoded to FP32; norm weights and biases in FP32 (small
// vectors kept at FP32, as llama.cpp and vLLM do). A tied classifier is the embedding.
#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "cuda/common/storage.h"
#include "reference/formats/float_format.h"
#include "reference/model/model.h"
#include "reference/model/weight_storage.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

// A matrix in the engine's storage: either borrowed -- the model file's own bytes, read
// in place through its mapping when they already are the packed format (BF16 weights
// run as BF16), so the engine holds the model once -- or owned, when packing changed
// them (rounded to another format, a block format decoded). Copies share the bytes.
class PackedMatrix {
 public:
  int rows = 0;
  int cols = 0;

  PackedMatrix() = default;
  static PackedMatrix owning(int rows, int cols, std::vector<std::uint8_t> bytes);
  // `bytes` stay valid while `owner` lives.
  static PackedMatrix borrowing(int rows, int cols, std::span<const std::uint8_t> bytes, std::shared_ptr<const void> owner);

  std::span<const std::uint8_t> bytes() const { return {data_, size_}; }  // [rows, cols] elements of PackedModel::weights
  bool borrowed() const { return borrowed_; }
  template <FloatFormat F>
  const typename num::Storage<F>::T* data() const {
    return reinterpret_cast<const typename num::Storage<F>::T*>(data_);
  }

 private:
  const std::uint8_t* data_ = nullptr;
  std::size_t size_ = 0;
  std::shared_ptr<const void> keep_;  // the owned bytes, or the owner of the borrowed ones
  bool borrowed_ = false;
};

// Norm gains are those the norms multiply by: under norm_unit_offset (Gemma) 1 + w
// rounded once to FP32 (HF's 1.0 + weight.float()), else w.
struct PackedLayer {
  std::vector<float> attn_norm;   // [dim]
  PackedMatrix wq, wk, wv;        // [q_dim, dim], [kv_dim, dim], [kv_dim, dim]
  std::vector<float> bq, bk, bv;  // [q_dim], [kv_dim], [kv_dim]; empty without bias
  std::vector<float> q_norm, k_norm;  // [head_dim] each; empty without Qwen3's q/k norms
  // Latent attention (config.h's LatentAttention): wq then reads q_in_dim; wk, wv empty.
  PackedMatrix wq_a;                  // [q_lora_rank, dim]; empty without a low-rank query
  std::vector<float> q_a_norm;        // [q_lora_rank]
  PackedMatrix wkv_a;                 // [kv_lora_rank + rope_dim, dim]
  std::vector<float> kv_a_norm;       // [kv_lora_rank]
  PackedMatrix wkv_b;                 // [n_heads (nope + v_head_dim), kv_lora_rank]
  PackedMatrix wo;                // [dim, attn_out_dim]
  std::vector<float> ffn_norm;    // [dim]
  std::vector<float> post_attn_norm, post_ffn_norm;  // [dim] each; empty without Gemma 2's post-norms
  PackedMatrix w1, w3;            // [hidden, dim]
  PackedMatrix w2;                // [dim, hidden]
};

struct PackedModel {
  ModelConfig config;
  FloatFormat weights = FloatFormat::f32;  // what the matrices hold: FP32 for a block format
  PackedMatrix embedding;  // [vocab, dim]
  std::vector<PackedLayer> layers;
  std::vector<float> final_norm;  // [dim]
  PackedMatrix classifier;        // [vocab, dim]
  float eps = 0;                  // rms_norm_eps rounded to FP32
  float attn_scale = 0;           // 1/sqrt(score_scale_dim) computed in double, rounded to FP32
  float embed_scale = 1;          // Gemma's (a bfloat16 value: exact in FP32)
  float attn_softcap = 0;         // rounded to FP32; 0: none
  float final_softcap = 0;
};

// `what` names the matrix in errors. Throws InputError(format.source, ...) when a block
// format's FP32 decode of some weight is not its exact value (packed_model.cpp).
PackedMatrix pack_matrix(const Matrix& m, const WeightFormat& format, const std::string& what);
std::vector<float> pack_vector(const std::vector<double>& v);  // RNE to FP32
// A norm's gains: pack_vector(w), or under the config's norm_unit_offset 1 + w in FP32.
std::vector<float> pack_gains(const std::vector<double>& w, const ModelConfig& config);
// In `weights` (EngineOptions::weights); InputError(weights.source, ...) for a format
// whose blocks do not tile every matrix row (check_weight_format_fits).
PackedModel pack_model(const Model& model, const WeightFormat& weights);
// 1/sqrt(score_scale_dim()) computed in float64 and rounded once to FP32.
float attention_scale(const ModelConfig& config);

}  // namespace kvfid::engine
