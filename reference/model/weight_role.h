#pragma once
// Which weight of a Llama/Qwen2/Qwen3/Gemma 2/DeepSeek-V2 model a tensor is, independent of any file format's
// naming, so a producer of weights (the synthetic generator) and a writer of a format
// (the streamed HF writer) can meet without either knowing the other.
namespace kvfid::ref {

enum class WeightRole {
  embedding,   // [vocab, dim]
  attn_norm,   // [dim]            per layer
  wq,          // [q_dim, q_in_dim] per layer
  wk,          // [kv_dim, dim]    per layer
  wv,          // [kv_dim, dim]    per layer
  bq,          // [q_dim]          per layer, Qwen2 only
  bk,          // [kv_dim]         per layer, Qwen2 only
  bv,          // [kv_dim]         per layer, Qwen2 only
  q_norm,      // [head_dim]       per layer, Qwen3 only
  k_norm,      // [head_dim]       per layer, Qwen3 only
  wo,          // [dim, attn_out_dim] per layer
  ffn_norm,    // [dim]            per layer
  w1,          // [hidden, dim]    per layer (gate)
  w3,          // [hidden, dim]    per layer (up)
  w2,          // [dim, hidden]    per layer (down)
  post_attn_norm,  // [dim]        per layer, Gemma 2 only
  post_ffn_norm,   // [dim]        per layer, Gemma 2 only
  wq_a,        // [q_lora_rank, dim]                  per layer, MLA with a low-rank query only
  q_a_norm,    // [q_lora_rank]                       likewise
  wkv_a,       // [kv_lora_rank + rope_dim, dim]      per layer, MLA only
  kv_a_norm,   // [kv_lora_rank]                      per layer, MLA only
  wkv_b,       // [n_heads (nope + v_head_dim), kv_lora_rank]  per layer, MLA only
  final_norm,  // [dim]
  classifier,  // [vocab, dim]
};

}  // namespace kvfid::ref
