#pragma once
// Op map (latent attention; docs/ops.md): reference reference/mp/latent_attention.h | f64 reference/f64/forward_trace.cpp | tests MpLatentAttention.*
// DeepSeek-V2's multi-head latent attention (config.h's LatentAttention), the part
// before an ordinary attention: from a layer's normed input, the queries and the keys
// and values reconstructed from the cached latent, every token at once. The cache a
// decode keeps is the latent and k_pe; this computes what a query reads from it, so the
// attention after it (attention.h) is the one every other model runs, over n_heads key
// heads of head_dim and value heads of v_head_dim.
#include "reference/formats/quant/kv_policy.h"
#include "reference/model/model.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/rope.h"

namespace kvfid::ref {

class Shards;

struct LatentQkv {
  MpArray q;  // [tokens, n_heads, head_dim], the rope part rotated
  MpArray k;  // [tokens, n_heads, head_dim]: wkv_b's nope keys, then the shared k_pe
  MpArray v;  // [tokens, n_heads, v_head_dim]
  MpArray latent;  // [tokens, kv_lora_rank + rope_dim]: the normed latent, then k_pe rotated (the cache's rows)
  // Their radii (enclosure.h) when tracked, else empty.
  MpArray q_r, k_r, v_r, latent_r;
};

// A KV policy's stored form of the latent (kv_store.h's store_latent), layer `layer`'s.
struct LatentStore {
  const quant::KvPolicy& policy;
  int layer;
};

// normed: [tokens, dim] (radii normed_r when tracked, else null); `rope` a table of
// rope_dim. With `store`, the cache rows are stored (exact values, radius 0) and k and v
// reconstructed from them, as an engine reads its cache; without, from the rows as
// computed. Every array at the arithmetic's precision (the stored rows at store_latent's);
// the copies that split and join heads are exact, so the radii follow the ops that
// compute (project, rms_norm, apply_rope) and nothing else.
LatentQkv latent_qkv(const MpArray& normed, const MpArray* normed_r, const MpWeights& weights,
                     const MpLayerVectors& vectors, const LayerWeights& layer, const RopeTable& rope, mpfr_srcptr eps,
                     int tokens, const ModelConfig& config, const MpArith& arith, int threads, Shards* shards,
                     bool track, const LatentStore* store = nullptr);

}  // namespace kvfid::ref
