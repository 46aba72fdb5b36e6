#pragma once
// One description for the Llama family (llama2.c checkpoints, HF Llama, Qwen2, Qwen3 and
// Mistral), Gemma 2 and DeepSeek-V2/V3's latent attention (dense layers).
#include <cstdint>
#include <string>

#include <nlohmann/json_fwd.hpp>

#include "reference/model/rope_scaling.h"

namespace kvfid::ref {

// mistral: Llama's layers, its sliding window on every one. gemma2: see the Gemma 2 fields.
// deepseek2: DeepSeek-V2/V3's multi-head latent attention (LatentAttention) in Llama's block.
enum class Arch { llama, qwen2, qwen3, mistral, gemma2, deepseek2 };

// The feed-forward gate's activation: silu (SwiGLU: silu(w1 x) * w3 x) or gelu_tanh
// (GeGLU with GELU's tanh approximation, 0.5 z (1 + tanh(sqrt(2/pi) (z + 0.044715 z^3))),
// HF's gelu_pytorch_tanh).
enum class Activation { silu, gelu_tanh };

// How RoPE pairs the dimensions of a head.
// interleaved: pairs (2i, 2i+1), as llama2.c and Meta's original checkpoints.
// rotate_half: pairs (i, i + head_dim/2), as HF Llama and Qwen2.
enum class RopeStyle { interleaved, rotate_half };

// DeepSeek-V2/V3's multi-head latent attention (MLA; HF DeepseekV2Attention), on when
// kv_lora_rank > 0. With h a layer's normed input and heads of head_dim = nope + rope_dim:
//   q      = wq h, or wq norm(wq_a h) with a low-rank query (q_lora_rank > 0) [n_heads, head_dim]
//   latent = norm(first kv_lora_rank of wkv_a h)                             [kv_lora_rank]
//   k_pe   = RoPE(last rope_dim of wkv_a h), one for every head               [rope_dim]
//   kv     = wkv_b latent, per head nope key values then v_head_dim values   [n_heads, nope + v_head_dim]
//   k      = (that head's nope keys, k_pe); v = its v_head_dim values; q's last rope_dim RoPE'd.
// The cache holds latent and k_pe only (kv_lora_rank + rope_dim values a token and
// layer); attention is then ordinary over n_heads key heads (n_kv_heads = n_heads),
// scores over sqrt(head_dim), values v_head_dim wide. RoPE pairs the rope part alone.
struct LatentAttention {
  int q_lora_rank = 0;   // 0: q = wq h
  int kv_lora_rank = 0;  // the latent's width; 0: no latent attention
  int rope_dim = 0;      // qk_rope_head_dim: the decoupled RoPE part ending each q and k head
  int v_head_dim = 0;
  bool active() const { return kv_lora_rank > 0; }
};

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
  LatentAttention mla;  // arch deepseek2 only

  int q_dim() const { return n_heads * head_dim; }
  int kv_dim() const { return n_kv_heads * head_dim; }
  // The width of a value head, of a token's values and of the attention's output (the
  // head_dim of k, of kv_dim and of q_dim, except under latent attention).
  int v_head_dim() const { return mla.active() ? mla.v_head_dim : head_dim; }
  int v_dim() const { return n_kv_heads * v_head_dim(); }
  int attn_out_dim() const { return n_heads * v_head_dim(); }
  // The width RoPE rotates at the end of each q and k head: all of it, or MLA's rope part.
  int rope_head_dim() const { return mla.active() ? mla.rope_dim : head_dim; }
  // What wq reads: the normed input, or MLA's low-rank query latent.
  int q_in_dim() const { return mla.q_lora_rank > 0 ? mla.q_lora_rank : dim; }
  // MLA's key part without RoPE (qk_nope_head_dim); 0 otherwise.
  int nope_dim() const { return mla.active() ? head_dim - mla.rope_dim : 0; }
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
  // Values one token puts in one layer's cache: K and V, or MLA's latent and k_pe.
  std::int64_t cache_values_per_token() const;  // K and V together may pass int's range
  // KV-cache bytes for one token over all layers at the given bits per element (block
  // formats pass their effective bits, e.g. Q8_0 = 8.5).
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

// DeepSeek-V2's attention on `config` (arch deepseek2): the latent `mla`, heads of
// nope + rope_dim (head_dim) for q and k, as many key heads as query heads, interleaved
// RoPE pairs on the rope part (DeepSeek's checkpoints; HF's modeling de-interleaves them
// at run time, which permutes q and k alike and leaves every q.k unchanged).
void apply_deepseek2(ModelConfig& config, int nope_dim, const LatentAttention& mla);

nlohmann::json to_json(const ModelConfig& config);
// HF's rope_scaling object (rope_type "llama3" and its four fields), also the manifest's.
nlohmann::json to_json(const RopeScaling& scaling);

}  // namespace kvfid::ref
