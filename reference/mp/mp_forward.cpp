#include "reference/mp/mp_forward.h"

#include <map>
#include <stdexcept>

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
  bool final_normed = false;

  State(const Model& m, const MpWeights& w, const std::vector<int>& t, const MpForwardOptions& o)
      : weights(w), options(o), c(m.config), tokens_n(t.size()), eps(mp_constant(c.rms_norm_eps)),
        theta(mp_constant(c.rope_theta)), x(tokens_n * c.dim, o.arith.precision()),
        rope(make_rope_table(int(tokens_n), c.head_dim, theta[0], o.arith)),
        normed(tokens_n * c.dim, o.arith.precision()), block_out(tokens_n * c.dim, o.arith.precision()),
        gate(tokens_n * c.hidden, o.arith.precision()), up(tokens_n * c.hidden, o.arith.precision()) {}
};

MpForwardRun::MpForwardRun(const Model& model, const MpWeights& weights, const std::vector<int>& tokens,
                           const MpForwardOptions& options) {
  ExponentRangeScope range;
  s_ = std::make_unique<State>(model, weights, tokens, options);
  const Model& stored = *weights.model;  // the matrices the forward reads (stored_model's, say)
  const ModelConfig& c = model.config;
  std::vector<double> row(std::size_t(c.dim));  // [dim] one embedding row, exact
  for (std::size_t t = 0; t < tokens.size(); ++t) {
    stored.embedding.decode_row(tokens[t], row.data());
    for (int i = 0; i < c.dim; ++i) options.arith.set_d(s_->x[t * std::size_t(c.dim) + std::size_t(i)], row[std::size_t(i)]);
  }
}

MpForwardRun::~MpForwardRun() = default;

int MpForwardRun::layers_left() const { return s_->c.n_layers - s_->layer; }

std::vector<MpTap> MpForwardRun::run_layer() {
  if (layers_left() == 0) throw std::logic_error("MpForwardRun::run_layer: every layer has run");
  ExponentRangeScope range;
  State& s = *s_;
  const ModelConfig& c = s.c;
  const MpArith& arith = s.options.arith;
  const mpfr_prec_t prec = arith.precision();
  const int threads = s.options.threads, T = int(s.tokens_n), l = s.layer;
  Shards* const shards = s.options.shards;
  const std::size_t tokens_n = s.tokens_n;
  const MpLayerVectors& w = s.weights.layers[std::size_t(l)];
  const LayerWeights& m = s.weights.model->layers[std::size_t(l)];
  MpArray &x = s.x, &normed = s.normed, &block_out = s.block_out, &gate = s.gate, &up = s.up;

  rms_norm(normed, x, w.attn_norm, s.eps[0], T, arith, threads);
  MpArray q(tokens_n * c.q_dim(), prec);   // [T, n_heads, head_dim]
  MpArray k(tokens_n * c.kv_dim(), prec);  // [T, n_kv_heads, head_dim]
  MpArray v(tokens_n * c.kv_dim(), prec);  // [T, n_kv_heads, head_dim]
  project(q, s.weights.read(m.wq), normed, w.bq, T, arith, threads, shards);
  project(k, s.weights.read(m.wk), normed, w.bk, T, arith, threads, shards);
  project(v, s.weights.read(m.wv), normed, w.bv, T, arith, threads, shards);
  apply_rope(q, s.rope, T, c.n_heads, c.rope, arith, threads);
  apply_rope(k, s.rope, T, c.n_kv_heads, c.rope, arith, threads);
  const TapSelection& taps = s.options.taps;
  const bool probs_kept = taps.wants(tap_layer_name(l, "attn.probs"));
  MpArray probs(probs_kept ? std::size_t(c.n_heads) * tokens_n * tokens_n : 0, prec);  // [n_heads, T, T]
  MpArray attn_out(tokens_n * c.q_dim(), prec);  // [T, n_heads * head_dim]
  MpArray* const kept_probs = probs_kept ? &probs : nullptr;
  if (s.options.kv) {
    const MpKvStore store = store_kv(k, v, *s.options.kv, l, T, c);
    causal_attention(kept_probs, attn_out, q, store.view(), T, c, arith, threads, shards);
    k = own_keys(store, T, c.kv_dim());
    v = own_values(store, T, c.kv_dim());
  } else {
    causal_attention(kept_probs, attn_out, q, AttentionKv{k, k, v, v}, T, c, arith, threads, shards);
  }
  project(block_out, s.weights.read(m.wo), attn_out, s.no_bias, T, arith, threads, shards);
  add_in_place(x, block_out, arith, threads);

  rms_norm(normed, x, w.ffn_norm, s.eps[0], T, arith, threads);
  project(gate, s.weights.read(m.w1), normed, s.no_bias, T, arith, threads, shards);
  project(up, s.weights.read(m.w3), normed, s.no_bias, T, arith, threads, shards);
  swiglu_in_place(gate, up, arith, threads);
  project(block_out, s.weights.read(m.w2), gate, s.no_bias, T, arith, threads, shards);
  add_in_place(x, block_out, arith, threads);

  // Only the wanted taps outlive their layer.
  std::map<std::string, MpArray> produced;
  auto keep = [&](const char* what, MpArray&& values) {
    if (taps.wants(tap_layer_name(l, what))) produced[tap_layer_name(l, what)] = std::move(values);
  };
  keep("q", std::move(q));
  keep("k", std::move(k));
  keep("v", std::move(v));
  keep("attn.probs", std::move(probs));
  keep("attn.out", std::move(attn_out));
  if (taps.wants(tap_layer_name(l, "out"))) produced[tap_layer_name(l, "out")] = copy_of(x);
  std::vector<MpTap> out;
  for (const TapSpec& spec : tap_specs(c, T, taps))
    if (auto it = produced.find(spec.name); it != produced.end()) out.push_back(MpTap{spec.name, spec.shape, std::move(it->second)});
  ++s.layer;
  if (s.options.progress) s.options.progress->advance();
  return out;
}

MpArray MpForwardRun::logits(int first, int count) {
  State& s = *s_;
  if (layers_left() != 0 || first < 0 || count < 1 || std::size_t(first) + std::size_t(count) > s.tokens_n)
    throw std::logic_error("MpForwardRun::logits: layers left or tokens out of range");
  ExponentRangeScope range;
  const ModelConfig& c = s.c;
  const MpArith& arith = s.options.arith;
  if (!s.final_normed) {
    rms_norm(s.normed, s.x, s.weights.final_norm, s.eps[0], int(s.tokens_n), arith, s.options.threads);
    s.final_normed = true;
  }
  const std::size_t dim = std::size_t(c.dim);
  MpArray rows(std::size_t(count) * dim, arith.precision());  // [count, dim] the block's normed rows
  for (std::size_t i = 0; i < rows.size(); ++i) mpfr_set(rows[i], s.normed[std::size_t(first) * dim + i], MPFR_RNDN);  // exact
  MpArray logits(std::size_t(count) * std::size_t(c.vocab), arith.precision());  // [count, vocab]
  project(logits, s.weights.read(s.weights.model->classifier), rows, s.no_bias, count, arith, s.options.threads,
          s.options.shards);
  if (s.options.progress) s.options.progress->advance();
  return logits;
}

std::vector<MpTap> mp_forward(const Model& model, const MpWeights& weights, const std::vector<int>& tokens,
                              const MpForwardOptions& options) {
  MpForwardRun run(model, weights, tokens, options);
  std::map<std::string, MpArray> produced;
  while (run.layers_left() > 0)
    for (MpTap& tap : run.run_layer()) produced[tap.name] = std::move(tap.values);
  produced["logits"] = run.logits(0, int(tokens.size()));
  std::vector<MpTap> taps;
  for (const TapSpec& spec : tap_specs(model.config, int(tokens.size()), options.taps))
    taps.push_back(MpTap{spec.name, spec.shape, std::move(produced.at(spec.name))});
  return taps;
}

}  // namespace kvfid::ref
