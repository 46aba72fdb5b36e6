#include "reference/mp/mp_forward.h"

#include <algorithm>
#include <climits>
#include <map>
#include <optional>
#include <stdexcept>

#include "reference/mp/attention.h"
#include "reference/mp/ball_arith.h"
#include "reference/mp/kv_rotate.h"
#include "reference/mp/kv_store.h"
#include "reference/mp/latent_attention.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/projection.h"
#include "reference/mp/rms_norm.h"
#include "reference/mp/rope.h"
#include "reference/mp/swiglu.h"
#include "reference/util/progress.h"

namespace kvfid::ref {

namespace {

// x += y; with x_radii set, x's radii follow from theirs and y_radii.
void add_in_place(MpArray& x, const MpArray& y, const MpArith& arith, int threads, MpArray* x_radii,
                  const MpArray* y_radii) {
  parallel_for(std::int64_t(x.size()), threads, [&](std::int64_t begin, std::int64_t end) {
    BallArith ball(arith);
    for (std::int64_t i = begin; i < end; ++i)
      ball.add(ball_at(x, x_radii, std::size_t(i)), cball_at(x, x_radii, std::size_t(i)), cball_at(y, y_radii, std::size_t(i)));
  });
}

MpArray copy_of(const MpArray& a) {
  MpArray c(a.size(), a.precision());
  for (std::size_t i = 0; i < a.size(); ++i) mpfr_set(c[i], a[i], MPFR_RNDN);  // exact: same precision
  return c;
}

MpArray* tracked(MpArray& radii) { return radii.size() ? &radii : nullptr; }

// An RMSNorm in place, rows of gain.size(): Qwen3's per-head norm (x [tokens x heads,
// head_dim], one gain for every head) and Gemma 2's post-norms of a block's output
// (x [tokens, dim]); its radii likewise when tracked.
void norm_in_place(MpArray& x, MpArray& x_r, const MpArray& gain, mpfr_srcptr eps, int rows, const MpArith& arith,
                   int threads) {
  MpArray out(x.size(), x.precision());
  MpArray out_r = exact_radii(x_r.size());
  rms_norm(out, x, gain, eps, rows, arith, threads, tracked(x_r), tracked(out_r));
  x = std::move(out);
  x_r = std::move(out_r);
}

}  // namespace

std::optional<long> radius_free_bits(const MpArray& x, const MpArray& x_r, std::size_t tokens, std::size_t dim) {
  long bits = LONG_MAX;  // rows of exact values leave all
  for (std::size_t t = 0; t < tokens; ++t) {
    long top_value = LONG_MIN, top_radius = LONG_MIN;
    for (std::size_t i = t * dim; i < (t + 1) * dim; ++i) {
      if (!mpfr_number_p(x_r[i])) return std::nullopt;  // an unbounded radius
      if (mpfr_regular_p(x[i])) top_value = std::max(top_value, long(mpfr_get_exp(x[i])));
      if (mpfr_regular_p(x_r[i])) top_radius = std::max(top_radius, long(mpfr_get_exp(x_r[i])));
    }
    if (top_radius == LONG_MIN) continue;
    if (top_value == LONG_MIN) return std::nullopt;  // a radius about zeros
    // max r <= 2^top_radius and max |x| >= 2^(top_value - 1): their ratio is at most
    // 2^-(top_value - top_radius - 1).
    bits = std::min(bits, top_value - top_radius - 1);
  }
  return bits;
}

mpfr_prec_t scheduled_precision(const MpArray& x, const MpArray& x_r, std::size_t tokens, std::size_t dim,
                                mpfr_prec_t ceiling) {
  const std::optional<long> free = radius_free_bits(x, x_r, tokens, dim);
  if (!free) return ceiling;  // nothing to go by
  const long bits = std::min(*free, long(ceiling));
  const long limbs = (std::max(bits, 0L) + kScheduleGuardBits + 63) / 64;
  return mpfr_prec_t(std::clamp(64 * limbs, 64L, long(ceiling)));
}

const MpTap& mp_tap(const std::vector<MpTap>& taps, const std::string& name) {
  for (const MpTap& t : taps)
    if (t.name == name) return t;
  throw std::invalid_argument("the forward kept no tap " + name);
}

int forward_progress_steps(const ModelConfig& config, int logits_blocks) { return config.n_layers + logits_blocks; }

struct MpForwardRun::State {
  const MpWeights& weights;
  const MpForwardOptions& options;
  const ModelConfig& c;
  const std::size_t tokens_n;
  const MpArray eps, theta, no_bias;
  MpArray x;          // [T, dim] residual stream
  RopeTable rope;
  MpArray normed;     // [T, dim]
  MpArray block_out;  // [T, dim] what a block adds to the residual
  MpArray gate;       // [T, hidden]
  MpArray up;         // [T, hidden]
  int layer = 0;      // the next layer to run
  std::vector<int> stage_precisions;  // the precision of each layer run, then of the logits
  std::optional<MpArith> final_arith;  // the logits' arithmetic, set (and the final norm run) at the first logits call
  // Their radii when enclosed (enclosure.h), else empty.
  MpArray x_r, normed_r, block_out_r, gate_r, up_r;

  State(const Model& m, const MpWeights& w, const std::vector<int>& t, const MpForwardOptions& o)
      : weights(w), options(o), c(m.config), tokens_n(t.size()), eps(mp_constant(c.rms_norm_eps)),
        theta(mp_constant(c.rope_theta)), x(tokens_n * c.dim, o.arith.precision()),
        rope(make_rope_table(int(tokens_n), c.rope_head_dim(), theta[0], c.rope_scaling, o.arith, o.enclose)),
        normed(tokens_n * c.dim, o.arith.precision()), block_out(tokens_n * c.dim, o.arith.precision()),
        gate(tokens_n * c.hidden, o.arith.precision()), up(tokens_n * c.hidden, o.arith.precision()),
        x_r(radii(tokens_n * c.dim)), normed_r(radii(tokens_n * c.dim)), block_out_r(radii(tokens_n * c.dim)),
        gate_r(radii(tokens_n * c.hidden)), up_r(radii(tokens_n * c.hidden)) {}

  // n radii when enclosed, else none.
  MpArray radii(std::size_t n) const { return exact_radii(options.enclose ? n : 0); }

  // The arithmetic of the next stage (a layer, or with `logits` the logits): the run's,
  // or with the schedule, exact() at the scheduled precision, the buffers that stage
  // writes reallocated at it (normed; a layer's block_out, gate and up too; the residual
  // stream x keeps the run's). Recorded in stage_precisions.
  MpArith next_stage_arith(bool logits) {
    MpArith arith = options.arith;
    if (options.enclose && options.precision_schedule && layer > 0) {
      arith = MpArith::exact(scheduled_precision(x, x_r, tokens_n, std::size_t(c.dim), arith.precision()));
      const mpfr_prec_t p = arith.precision();
      if (p != normed.precision()) normed = MpArray(normed.size(), p);
      if (!logits && p != block_out.precision()) {
        block_out = MpArray(block_out.size(), p);
        gate = MpArray(gate.size(), p);
        up = MpArray(up.size(), p);
      }
    }
    stage_precisions.push_back(int(arith.precision()));
    return arith;
  }
};

MpForwardRun::MpForwardRun(const Model& model, const MpWeights& weights, const std::vector<int>& tokens,
                           const MpForwardOptions& options) {
  if (options.enclose && options.arith.format())
    throw std::logic_error("MpForwardRun: enclosures are for exact arithmetic only");
  ExponentRangeScope range;
  s_ = std::make_unique<State>(model, weights, tokens, options);
  const Model& stored = *weights.model;  // the matrices the forward reads (stored_model's, say)
  const ModelConfig& c = model.config;
  std::vector<double> row(std::size_t(c.dim));  // [dim] one embedding row, exact
  const MpArray embed_scale = mp_constant(c.embed_scale);
  BallArith ball(options.arith);
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    stored.embedding.decode_row(tokens[t], row.data());
    for (int i = 0; i < c.dim; ++i) {
      const std::size_t at = t * std::size_t(c.dim) + std::size_t(i);
      options.arith.set_d(s_->x[at], row[std::size_t(i)]);
      // Gemma's embed_scale: a product of two float64s, exact at 106 bits or more; below,
      // rounded with its radius tracked.
      if (c.embed_scale != 1.0)
        ball.mul(ball_at(s_->x, tracked(s_->x_r), at), cball_at(s_->x, tracked(s_->x_r), at), {embed_scale[0]});
    }
  }
}

MpForwardRun::~MpForwardRun() = default;

int MpForwardRun::layers_left() const { return s_->c.n_layers - s_->layer; }

const std::vector<int>& MpForwardRun::stage_precisions() const { return s_->stage_precisions; }

std::optional<long> MpForwardRun::residual_bits() const {
  if (!s_->options.enclose) throw std::logic_error("MpForwardRun::residual_bits: the run has no radii");
  return radius_free_bits(s_->x, s_->x_r, s_->tokens_n, std::size_t(s_->c.dim));
}

std::vector<MpTap> MpForwardRun::run_layer() {
  if (layers_left() == 0) throw std::logic_error("MpForwardRun::run_layer: every layer has run");
  ExponentRangeScope range;
  State& s = *s_;
  const ModelConfig& c = s.c;
  const MpArith arith = s.next_stage_arith(false);
  const mpfr_prec_t prec = arith.precision();
  const int threads = s.options.threads, T = int(s.tokens_n), l = s.layer;
  Shards* const shards = s.options.shards;
  const std::size_t tokens_n = s.tokens_n;
  const MpLayerVectors& w = s.weights.layers[std::size_t(l)];
  const LayerWeights& m = s.weights.model->layers[std::size_t(l)];
  MpArray &x = s.x, &normed = s.normed, &block_out = s.block_out, &gate = s.gate, &up = s.up;

  rms_norm(normed, x, w.attn_norm, s.eps[0], T, arith, threads, tracked(s.x_r), tracked(s.normed_r));
  MpArray q, k, v;  // [T, n_heads, head_dim], [T, n_kv_heads, head_dim], [T, n_kv_heads, v_head_dim]
  MpArray q_r, k_r, v_r;
  if (c.mla.active()) {  // DeepSeek's latent attention: k and v reconstructed from the latent
    if (s.options.evict || s.options.eviction.window > 0)
      throw std::invalid_argument("mp_forward: an eviction on latent attention is not supported");
    // Under a KV policy the cache's rows are stored (store_latent refuses what a latent
    // cannot hold) and the keys and values reconstructed from them.
    const std::optional<LatentStore> store =
        s.options.kv ? std::optional<LatentStore>(LatentStore{*s.options.kv, l}) : std::nullopt;
    LatentQkv lq = latent_qkv(normed, tracked(s.normed_r), s.weights, w, m, s.rope, s.eps[0], T, c, arith, threads,
                              shards, s.options.enclose, store ? &*store : nullptr);
    q = std::move(lq.q), k = std::move(lq.k), v = std::move(lq.v);
    q_r = std::move(lq.q_r), k_r = std::move(lq.k_r), v_r = std::move(lq.v_r);
  } else {
    q = MpArray(tokens_n * c.q_dim(), prec);
    k = MpArray(tokens_n * c.kv_dim(), prec);
    v = MpArray(tokens_n * c.v_dim(), prec);
    q_r = s.radii(q.size()), k_r = s.radii(k.size()), v_r = s.radii(v.size());
    project(q, s.weights.read(m.wq), normed, w.bq, T, arith, threads, shards, tracked(s.normed_r), tracked(q_r));
    project(k, s.weights.read(m.wk), normed, w.bk, T, arith, threads, shards, tracked(s.normed_r), tracked(k_r));
    project(v, s.weights.read(m.wv), normed, w.bv, T, arith, threads, shards, tracked(s.normed_r), tracked(v_r));
    if (c.qk_norm) {  // Qwen3: each head of q and of k is RMSNorm'd (rows of head_dim) before RoPE
      norm_in_place(q, q_r, w.q_norm, s.eps[0], T * c.n_heads, arith, threads);
      norm_in_place(k, k_r, w.k_norm, s.eps[0], T * c.n_kv_heads, arith, threads);
    }
    apply_rope(q, s.rope, T, c.n_heads, c.rope, arith, threads, tracked(q_r));
    apply_rope(k, s.rope, T, c.n_kv_heads, c.rope, arith, threads, tracked(k_r));
  }
  // A rotated policy (kv_rotate.h): q, k and v rotated; the q tap stays the model's.
  const quant::Rotation* rotation = s.options.kv && s.options.kv->rotation.active() ? &s.options.kv->rotation : nullptr;
  MpArray q_model, q_model_r;
  if (rotation) {
    q_model = copy_of(q);
    q_model_r = copy_of(q_r);
    rotate_rows(q, *rotation, false, T * c.n_heads, arith, threads, tracked(q_r));
    rotate_rows(k, *rotation, false, T * c.n_kv_heads, arith, threads, tracked(k_r));
    rotate_rows(v, *rotation, false, T * c.n_kv_heads, arith, threads, tracked(v_r));
  }
  const TapSelection& taps = s.options.taps;
  const bool probs_kept = taps.wants(tap_layer_name(l, "attn.probs"));
  MpArray probs(probs_kept ? std::size_t(c.n_heads) * tokens_n * tokens_n : 0, prec);  // [n_heads, T, T]
  MpArray probs_r = s.radii(probs.size());
  MpArray attn_out(tokens_n * c.attn_out_dim(), prec);  // [T, n_heads * v_head_dim]
  MpArray attn_out_r = s.radii(attn_out.size());
  MpArray* const kept_probs = probs_kept ? &probs : nullptr;
  const AttentionRadii attention_radii{tracked(q_r), probs_kept ? tracked(probs_r) : nullptr, tracked(attn_out_r)};
  AttentionMask mask{true, c.window_of(l), 0};
  if (s.options.eviction.window > 0) {
    if (mask.window > 0) throw std::invalid_argument("mp_forward: an eviction on a model with its own sliding window");
    mask = s.options.eviction;
  }
  // An eviction: the options' own (on K and V as computed) or the KV policy's (on the
  // stored forms).
  const EvictionPolicy* evict = s.options.evict;
  if (s.options.kv && s.options.kv->evict) {
    if (evict) throw std::invalid_argument("mp_forward: two eviction policies");
    evict = &*s.options.kv->evict;
  }
  // Enclosures take a KV policy's eviction only: its keys and values are exact.
  if (evict && ((s.options.enclose && !s.options.kv) || shards || s.options.eviction.window > 0))
    throw std::invalid_argument("mp_forward: an eviction policy on unstored K and V with enclosures, shards or a mask");
  // The window policy is the layer's own window as an eviction (eviction_spec.h): its
  // kept keys are those the mask would let the query read.
  if (evict && c.window_of(l) > 0 && evict->kind != EvictionKind::window)
    throw std::invalid_argument("mp_forward: an eviction on a model with its own sliding window");
  if (evict && !s.options.kv) {
    evicting_attention(kept_probs, attn_out, q, AttentionKv{k, k, v, v}, T, c, arith, threads, *evict, l,
                       s.options.evict_record);
  } else if (s.options.kv && !c.mla.active()) {
    // The stored forms are exact once store_kv has proven each rounding (kv_store.h).
    const MpKvStore store = store_kv(k, v, *s.options.kv, l, T, c, tracked(k_r), tracked(v_r));
    if (evict)
      evicting_attention(kept_probs, attn_out, q, store.view(), T, c, arith, threads, *evict, l, s.options.evict_record,
                         attention_radii);
    else
      causal_attention(kept_probs, attn_out, q, store.view(), T, c, arith, threads, shards, attention_radii, mask);
    k = own_keys(store, T, c.kv_dim());
    v = own_values(store, T, c.kv_dim());
    k_r = s.radii(k.size());
    v_r = s.radii(v.size());
    if (rotation) {  // the output and the k and v taps back in the model's basis
      rotate_rows(attn_out, *rotation, true, T * c.n_heads, arith, threads, tracked(attn_out_r));
      k = to_model_basis(k, *rotation, T * c.n_kv_heads, threads, tracked(k_r));
      v = to_model_basis(v, *rotation, T * c.n_kv_heads, threads, tracked(v_r));
      q = std::move(q_model);
      q_r = std::move(q_model_r);
    }
  } else {
    causal_attention(kept_probs, attn_out, q, AttentionKv{k, k, v, v, 0, 0, tracked(k_r), tracked(v_r)}, T, c, arith,
                     threads, shards, attention_radii, mask);
  }
  project(block_out, s.weights.read(m.wo), attn_out, s.no_bias, T, arith, threads, shards, tracked(attn_out_r),
          tracked(s.block_out_r));
  if (c.sandwich_norms) norm_in_place(block_out, s.block_out_r, w.post_attn_norm, s.eps[0], T, arith, threads);
  add_in_place(x, block_out, arith, threads, tracked(s.x_r), tracked(s.block_out_r));

  rms_norm(normed, x, w.ffn_norm, s.eps[0], T, arith, threads, tracked(s.x_r), tracked(s.normed_r));
  project(gate, s.weights.read(m.w1), normed, s.no_bias, T, arith, threads, shards, tracked(s.normed_r), tracked(s.gate_r));
  project(up, s.weights.read(m.w3), normed, s.no_bias, T, arith, threads, shards, tracked(s.normed_r), tracked(s.up_r));
  gated_in_place(c.activation, gate, up, arith, threads, tracked(s.gate_r), tracked(s.up_r));
  project(block_out, s.weights.read(m.w2), gate, s.no_bias, T, arith, threads, shards, tracked(s.gate_r),
          tracked(s.block_out_r));
  if (c.sandwich_norms) norm_in_place(block_out, s.block_out_r, w.post_ffn_norm, s.eps[0], T, arith, threads);
  add_in_place(x, block_out, arith, threads, tracked(s.x_r), tracked(s.block_out_r));

  // Only the wanted taps outlive their layer.
  std::map<std::string, std::pair<MpArray, MpArray>> produced;  // values, radii
  auto keep = [&](const char* what, MpArray&& values, MpArray&& radii) {
    if (taps.wants(tap_layer_name(l, what))) produced[tap_layer_name(l, what)] = {std::move(values), std::move(radii)};
  };
  keep("q", std::move(q), std::move(q_r));
  keep("k", std::move(k), std::move(k_r));
  keep("v", std::move(v), std::move(v_r));
  keep("attn.probs", std::move(probs), std::move(probs_r));
  keep("attn.out", std::move(attn_out), std::move(attn_out_r));
  if (taps.wants(tap_layer_name(l, "out"))) produced[tap_layer_name(l, "out")] = {copy_of(x), copy_of(s.x_r)};
  std::vector<MpTap> out;
  for (const TapSpec& spec : tap_specs(c, T, taps))
    if (auto it = produced.find(spec.name); it != produced.end())
      out.push_back(MpTap{spec.name, spec.shape, std::move(it->second.first), std::move(it->second.second)});
  ++s.layer;
  if (s.options.progress) s.options.progress->advance();
  return out;
}

MpArray MpForwardRun::logits(int first, int count, MpArray* radii) {
  State& s = *s_;
  if (layers_left() != 0 || first < 0 || count < 1 || std::size_t(first) + std::size_t(count) > s.tokens_n)
    throw std::logic_error("MpForwardRun::logits: layers left or tokens out of range");
  ExponentRangeScope range;
  const ModelConfig& c = s.c;
  if (!s.final_arith) {
    s.final_arith = s.next_stage_arith(true);
    rms_norm(s.normed, s.x, s.weights.final_norm, s.eps[0], int(s.tokens_n), *s.final_arith, s.options.threads,
             tracked(s.x_r), tracked(s.normed_r));
  }
  const MpArith& arith = *s.final_arith;
  const std::size_t dim = std::size_t(c.dim);
  MpArray rows(std::size_t(count) * dim, arith.precision());  // [count, dim] the block's normed rows
  MpArray rows_r = s.radii(rows.size());                      // and their radii
  for (std::size_t i = 0; i < rows.size(); ++i) mpfr_set(rows[i], s.normed[std::size_t(first) * dim + i], MPFR_RNDN);  // exact
  for (std::size_t i = 0; i < rows_r.size(); ++i) mpfr_set(rows_r[i], s.normed_r[std::size_t(first) * dim + i], MPFR_RNDN);
  MpArray logits(std::size_t(count) * std::size_t(c.vocab), arith.precision());  // [count, vocab]
  MpArray logits_r = s.radii(logits.size());
  project(logits, s.weights.read(s.weights.model->classifier), rows, s.no_bias, count, arith, s.options.threads,
          s.options.shards, tracked(rows_r), tracked(logits_r));
  if (c.final_softcap > 0) {  // Gemma 2: logits -> cap * tanh(logits / cap)
    const MpArray cap = mp_constant(c.final_softcap);
    parallel_for(std::int64_t(logits.size()), s.options.threads, [&](std::int64_t begin, std::int64_t end) {
      BallArith ball(arith);
      for (std::int64_t i = begin; i < end; ++i) {
        const Ball z = ball_at(logits, tracked(logits_r), std::size_t(i));
        ball.soft_cap(z, cball(z), cap[0]);
      }
    });
  }
  if (radii) *radii = std::move(logits_r);
  if (s.options.progress) s.options.progress->advance();
  return logits;
}

std::vector<double> exact_evicting_logits(const Model& model, const std::vector<int>& tokens, const quant::KvPolicy& kv,
                                          EvictionRecord* record) {
  if (!kv.evict) throw std::invalid_argument("exact_evicting_logits: a KV policy without an eviction");
  MpForwardOptions o;
  o.arith = MpArith::exact(kEvictionAccountBits);
  o.taps = TapSelection::logits;
  o.threads = resolve_thread_count(0);
  o.kv = kv;
  o.evict_record = record;
  return to_doubles(mp_tap(mp_forward(model, to_mp_weights(model, kEvictionAccountBits), tokens, o), "logits").values);
}

std::vector<MpTap> mp_forward(const Model& model, const MpWeights& weights, const std::vector<int>& tokens,
                              const MpForwardOptions& options) {
  MpForwardRun run(model, weights, tokens, options);
  std::map<std::string, MpTap> produced;
  while (run.layers_left() > 0)
    for (MpTap& tap : run.run_layer()) produced[tap.name] = std::move(tap);
  MpTap& logits = produced["logits"];
  logits.values = run.logits(0, int(tokens.size()), &logits.radii);
  std::vector<MpTap> taps;
  for (const TapSpec& spec : tap_specs(model.config, int(tokens.size()), options.taps)) {
    MpTap& tap = produced.at(spec.name);
    taps.push_back(MpTap{spec.name, spec.shape, std::move(tap.values), std::move(tap.radii)});
  }
  return taps;
}

}  // namespace kvfid::ref
