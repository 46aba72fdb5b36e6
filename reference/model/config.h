#pragma once
// One description for the Llama family (llama2.c checkpoints, HF Llama, Qwen2 and Qwen3).
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "reference/model/rope_scaling.h"

namespace kvfid::ref {

enum class Arch { llama, qwen2, qwen3, mistral };  // mistral: Llama's layers, its sliding window on every one

// How RoPE pairs the dimensions of a head.
// interleaved: pairs (2i, 2i+1), as llama2.c and Meta's original checkpoints.
// rotate_half: pairs (i, i + head_dim/2), as HF Llama and Qwen2.
enum class RopeStyle { interleaved, rotate_half };

struct ModelConfig {
  Arch arch = Arch::llama;
  int vocab = 0;
  int dim = 0;
  int n_layers = 0;
  int n_heads = 0;
  int n_kv_heads = 0;
  int head_dim = 0;
  int hidden = 0;   // SwiGLU intermediate size
  int max_seq = 0;  // context limit
  // eps and theta are the float64 values parsed from the model's description;
  // the reference treats them as exact.
  double rms_norm_eps = 1e-5;
  double rope_theta = 10000.0;
  RopeStyle rope = RopeStyle::interleaved;
  RopeScaling rope_scaling;  // inactive: plain RoPE
  bool tied_classifier = true;
  bool qkv_bias = false;
  bool qk_norm = false;  // Qwen3: RMSNorm of each head of q and of k (weights [head_dim]) before RoPE
  // Sliding-window attention (Mistral; Qwen2's use_sliding_window): a windowed layer's
  // query at position t reads the keys t - sliding_window + 1 .. t only. Layers below
  // full_attention_layers (Qwen2's max_window_layers) attend to every earlier position.
  int sliding_window = 0;  // 0: every layer attends fully
  int full_attention_layers = 0;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int group() const { return n_heads / n_kv_heads; }  // query heads per KV head
  int kv_head_of(int q_head) const { return q_head / group(); }
  // The window of `layer`: sliding_window when it is windowed, else 0 (full attention).
  int window_of(int layer) const { return sliding_window > 0 && layer >= full_attention_layers ? sliding_window : 0; }
  // The first key a query at position t reads in `layer`.
  int first_key(int layer, int t) const {
    const int w = window_of(layer);
    return w > 0 && t - w + 1 > 0 ? t - w + 1 : 0;
  }

  // Throws InputError(source, ...) when dimensions are missing or inconsistent.
  void validate(const std::string& source) const;
  // Parameters, counting a tied classifier once.
  std::int64_t parameter_count() const;
  // KV-cache bytes for one token over all layers, K and V, at the given bits per
  // element (block formats pass their effective bits, e.g. Q8_0 = 8.5).
  double kv_bytes_per_token(double bits_per_element) const;
};

std::string to_string(Arch arch);
std::string to_string(RopeStyle rope);

nlohmann::json to_json(const ModelConfig& config);
// HF's rope_scaling object (rope_type "llama3" and its four fields), also the manifest's.
nlohmann::json to_json(const RopeScaling& scaling);

}  // namespace kvfid::ref
