#pragma once
// A loaded model: its matrices are views of the stored weights (reference/model/matrix.h:
// memory-mapped, decoded exactly where used), its norm weights and biases small float64
// vectors (F32, F16 and BF16 all embed in float64 exactly). The model here is the stored
// model, bit for bit.
#include <string>
#include <vector>

#include "reference/model/config.h"
#include "reference/model/matrix.h"

namespace kvfid::ref {

struct LayerWeights {
  std::vector<double> attn_norm;  // [dim]
  Matrix wq;                      // [n_heads*head_dim, q_in_dim]: dim, or MLA's q_lora_rank
  Matrix wk;                      // [n_kv_heads*head_dim, dim]; empty under MLA
  Matrix wv;                      // [n_kv_heads*head_dim, dim]; empty under MLA
  // Latent attention (config.h's LatentAttention), else empty:
  Matrix wq_a;                     // [q_lora_rank, dim], empty without a low-rank query
  std::vector<double> q_a_norm;    // [q_lora_rank], likewise
  Matrix wkv_a;                    // [kv_lora_rank + rope_dim, dim]
  std::vector<double> kv_a_norm;   // [kv_lora_rank]
  Matrix wkv_b;                    // [n_heads*(nope_dim + v_head_dim), kv_lora_rank]
  std::vector<double> bq;         // [n_heads*head_dim], empty unless qkv_bias
  std::vector<double> bk;         // [n_kv_heads*head_dim], empty unless qkv_bias
  std::vector<double> bv;         // [n_kv_heads*head_dim], empty unless qkv_bias
  std::vector<double> q_norm;     // [head_dim], empty unless qk_norm (one gain for every query head)
  std::vector<double> k_norm;     // [head_dim], empty unless qk_norm
  Matrix wo;                      // [dim, attn_out_dim]
  std::vector<double> ffn_norm;   // [dim]
  // [dim] each, empty unless sandwich_norms (Gemma 2): the norms of the attention's and
  // the FFN's outputs before the residual adds.
  std::vector<double> post_attn_norm, post_ffn_norm;
  Matrix w1;                      // [hidden, dim]  gate: act(w1 x)
  Matrix w3;                      // [hidden, dim]  up
  Matrix w2;                      // [dim, hidden]  down
};

struct Model {
  ModelConfig config;
  Matrix embedding;  // [vocab, dim]
  std::vector<LayerWeights> layers;
  std::vector<double> final_norm;  // [dim]
  Matrix classifier;               // [vocab, dim]; the embedding's own view when tied
  std::string source;              // path it was loaded from
  std::string sha256;              // of the file holding the weights
};

}  // namespace kvfid::ref
