#pragma once
// One description for the Llama family (llama2.c checkpoints, HF Llama, Qwen2, Qwen3 and
// Mistral) and Gemma 2.
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "reference/model/rope_scaling.h"

namespace kvfid::ref {

// mistral: Llama's layers, its sliding window on every one. gemma2: see the Gemma 2 fields.
enum class Arch { llama, qwen2, qwen3, mistral, gemma2 };

// The feed-forward gate's activation: silu (SwiGLU: silu(w1 x) * w3 x) or gelu_tanh
// (GeGLU with GELU's tanh approximation, 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))),
// HF's gelu_pytorch_tanh).
enum class Activation { silu, gelu_tanh };

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
  bool alternating_window = false;  // Gemma 2: the window on even layers, odd layers global
  // Gemma 2 (arch gemma2 sets each; every other family keeps these neutral values).
  double embed_scale = 1.0;       // the embedding row times this (Gemma: sqrt(dim) rounded to bfloat16)
  bool norm_unit_offset = false;  // each RMSNorm gain is 1 + w, w the stored weight (Gemma)
  // post_attn_norm RMSNorms the attention's output and post_ffn_norm the FFN's before
  // each is added to the residual (ffn_norm is then Gemma's pre_feedforward_layernorm).
  bool sandwich_norms = false;
  Activation activation = Activation::silu;
  double query_scale_dim = 0;  // scores are q.k / sqrt(this): Gemma's query_pre_attn_scalar; 0: head_dim
  // Soft-capping, z -> cap * tanh(z / cap): of the scaled scores before the mask and the
  // softmax, and of the logits. 0: none.
  double attn_softcap = 0;
  double final_softcap = 0;

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  int group() const { return n_heads / n_kv_heads; }  // query heads per KV head
  int kv_head_of(int q_head) const { return q_head / group(); }
  // The window of `layer`: sliding_window when it is windowed, else 0 (full attention).
  int window_of(int layer) const {
    if (sliding_window == 0) return 0;
    if (alternating_window) return layer % 2 == 0 ? sliding_window : 0;
    return layer >= full_attention_layers ? sliding_window : 0;
  }
  // What the attention divides q.k by the square root of.
  double score_scale_dim() const { return query_scale_dim > 0 ? query_scale_dim : double(head_dim); }
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
std::string to_string(Activation activation);

// Gemma 2's block on `config` (transformers' Gemma2 model): embed_scale = sqrt(dim)
// rounded to bfloat16, gains 1 + w, post-norms, GeGLU, the sliding window (when
// config.sliding_window > 0) on even layers, scores over sqrt(query_pre_attn_scalar),
// and the two soft-caps (0: none).
void apply_gemma2(ModelConfig& config, double query_pre_attn_scalar, double attn_softcap, double final_softcap);

nlohmann::json to_json(const ModelConfig& config);
// HF's rope_scaling object (rope_type "llama3" and its four fields), also the manifest's.
nlohmann::json to_json(const RopeScaling& scaling);

}  // namespace kvfid::ref
