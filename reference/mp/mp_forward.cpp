#include "reference/mp/mp_forward.h"

#include <map>

#include "reference/mp/attention.h"
#include "reference/mp/kv_store.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/projection.h"
#include "reference/mp/rms_norm.h"
#include "reference/mp/rope.h"
#include "reference/mp/swiglu.h"
#include "reference/util/progress.h"

namespace kvfid::ref {

namespace {

void add_in_place(MpArray& x, const MpArray& y, const MpArith& arith, int threads) {
  parallel_for(std::int64_t(x.size()), threads, [&](std::int64_t begin, std::int64_t end) {
    for (std::int64_t i = begin; i < end; ++i) arith.add(x[i], x[i], y[i]);
  });
}

MpArray copy_of(const MpArray& a) {
  MpArray c(a.size(), a.precision());
  for (std::size_t i = 0; i < a.size(); ++i) mpfr_set(c[i], a[i], MPFR_RNDN);  // exact: same precision
  return c;
}

}  // namespace

int forward_progress_steps(const ModelConfig& config) { return config.n_layers + 1; }

std::vector<MpTap> mp_forward(const Model& model, const MpWeights& weights, const std::vector<int>& tokens,
                              const MpForwardOptions& options) {
  ExponentRangeScope range;
  const ModelConfig& c = model.config;
  const MpArith& arith = options.arith;
  const mpfr_prec_t prec = arith.precision();
  const int threads = options.threads;
  Shards* const shards = options.shards;
  const int T = int(tokens.size());
  const std::size_t tokens_n = tokens.size();
  const MpArray eps = mp_constant(c.rms_norm_eps);
  const MpArray theta = mp_constant(c.rope_theta);
  const MpArray no_bias;
  std::map<std::string, MpArray> produced;

  const Model& stored = *weights.model;  // the matrices the forward reads (stored_model's, say)
  MpArray x(tokens_n * c.dim, prec);     // [T, dim] residual stream
  std::vector<double> row(std::size_t(c.dim));  // [dim] one embedding row, exact
  for (int t = 0; t < T; ++t) {
    stored.embedding.decode_row(tokens[t], row.data());
    for (int i = 0; i < c.dim; ++i) arith.set_d(x[std::size_t(t) * c.dim + i], row[std::size_t(i)]);
  }
  const RopeTable rope = make_rope_table(T, c.head_dim, theta[0], arith);
  MpArray normed(tokens_n * c.dim, prec);       // [T, dim]
  MpArray block_out(tokens_n * c.dim, prec);    // [T, dim] what a block adds to the residual
  MpArray gate(tokens_n * c.hidden, prec);      // [T, hidden]
  MpArray up(tokens_n * c.hidden, prec);        // [T, hidden]

  for (int l = 0; l < c.n_layers; ++l) {
    const MpLayerVectors& w = weights.layers[l];
    const LayerWeights& m = stored.layers[std::size_t(l)];
    rms_norm(normed, x, w.attn_norm, eps[0], T, arith, threads);
    MpArray q(tokens_n * c.q_dim(), prec);   // [T, n_heads, head_dim]
    MpArray k(tokens_n * c.kv_dim(), prec);  // [T, n_kv_heads, head_dim]
    MpArray v(tokens_n * c.kv_dim(), prec);  // [T, n_kv_heads, head_dim]
    project(q, weights.read(m.wq), normed, w.bq, T, arith, threads, shards);
    project(k, weights.read(m.wk), normed, w.bk, T, arith, threads, shards);
    project(v, weights.read(m.wv), normed, w.bv, T, arith, threads, shards);
    apply_rope(q, rope, T, c.n_heads, c.rope, arith, threads);
    apply_rope(k, rope, T, c.n_kv_heads, c.rope, arith, threads);
    const bool probs_kept = options.taps.wants(tap_layer_name(l, "attn.probs"));
    MpArray probs(probs_kept ? std::size_t(c.n_heads) * tokens_n * tokens_n : 0, prec);  // [n_heads, T, T]
    MpArray attn_out(tokens_n * c.q_dim(), prec);  // [T, n_heads * head_dim]
    MpArray* const kept_probs = probs_kept ? &probs : nullptr;
    if (options.kv) {
      const MpKvStore store = store_kv(k, v, *options.kv, l, T, c);
      causal_attention(kept_probs, attn_out, q, store.view(), T, c, arith, threads, shards);
      k = own_keys(store, T, c.kv_dim());
      v = own_values(store, T, c.kv_dim());
    } else {
      causal_attention(kept_probs, attn_out, q, AttentionKv{k, k, v, v}, T, c, arith, threads, shards);
    }
    project(block_out, weights.read(m.wo), attn_out, no_bias, T, arith, threads, shards);
    add_in_place(x, block_out, arith, threads);

    rms_norm(normed, x, w.ffn_norm, eps[0], T, arith, threads);
    project(gate, weights.read(m.w1), normed, no_bias, T, arith, threads, shards);
    project(up, weights.read(m.w3), normed, no_bias, T, arith, threads, shards);
    swiglu_in_place(gate, up, arith, threads);
    project(block_out, weights.read(m.w2), gate, no_bias, T, arith, threads, shards);
    add_in_place(x, block_out, arith, threads);

    // Only the wanted taps outlive their layer.
    auto keep = [&](const char* what, MpArray&& values) {
      if (options.taps.wants(tap_layer_name(l, what))) produced[tap_layer_name(l, what)] = std::move(values);
    };
    keep("q", std::move(q));
    keep("k", std::move(k));
    keep("v", std::move(v));
    keep("attn.probs", std::move(probs));
    keep("attn.out", std::move(attn_out));
    if (options.taps.wants(tap_layer_name(l, "out"))) produced[tap_layer_name(l, "out")] = copy_of(x);
    if (options.progress) options.progress->advance();
  }

  rms_norm(normed, x, weights.final_norm, eps[0], T, arith, threads);
  MpArray logits(tokens_n * c.vocab, prec);  // [T, vocab]
  project(logits, weights.read(stored.classifier), normed, no_bias, T, arith, threads, shards);
  produced["logits"] = std::move(logits);
  if (options.progress) options.progress->advance();

  std::vector<MpTap> taps;
  for (const TapSpec& spec : tap_specs(c, T, options.taps))
    taps.push_back(MpTap{spec.name, spec.shape, std::move(produced.at(spec.name))});
  return taps;
}

}  // namespace kvfid::ref
