#include "cuda/engine/engine_forward.h"

#include <algorithm>

#include "cuda/common/attention_math.h"
#include "cuda/engine/engine.h"
#include "cuda/engine/kv_plan.h"
#include "cuda/engine/packed_model.h"
#include "reference/util/input_error.h"
#include "reference/io/prompt.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

// Copies step rows [rows, width] into tap rows starting at `first`.
void put_rows(TapTensor& tap, const std::vector<float>& rows, int first, int width) {
  std::copy(rows.begin(), rows.end(), tap.values.begin() + std::size_t(first) * width);
}

// attn.probs [n_heads, T, T] from the q tap, the cached keys and each row's final
// (m, l): p_j = exp(score_j - m) / l, score_j recomputed by the kernels' own score
// function on the key query t read (cold before cold_end, else hot: kv_plan.h), so the
// probabilities are those the attention weighted by. A key's cold and hot forms never
// change once its query has read them, so the cache after the last step serves every row.
void fill_probs(TapTensor& probs, const TapTensor& q, const CacheValues& cache, const std::vector<float>& stats,
                const ModelConfig& c, int layer, int hot_window, int k_group) {
  const int T = int(q.shape[0]), hd = c.head_dim;
  const float scale = attention_scale(c), cap = float(c.attn_softcap);
  std::vector<float> qf(hd);
  for (int h = 0; h < c.n_heads; ++h)
    for (int t = 0; t < T; ++t) {
      for (int d = 0; d < hd; ++d) qf[d] = float(q.values[(std::size_t(t) * c.n_heads + h) * hd + d]);
      const num::SoftmaxStats s{stats[(std::size_t(t) * c.n_heads + h) * 2], stats[(std::size_t(t) * c.n_heads + h) * 2 + 1]};
      const int cold_end = quant::cold_end(t, hot_window, k_group);
      for (int j = c.first_key(layer, t); j <= t; ++j) {  // a sliding window's earlier keys stay 0
        const std::vector<float>& keys = j < cold_end ? cache.k : cache.k_hot;  // [n_kv_heads, T, head_dim]
        const float* kj = keys.data() + (std::size_t(c.kv_head_of(h)) * T + j) * hd;
        const float score = num::capped_score(num::attn_score<FloatFormat::f32>(qf.data(), kj, hd, scale), cap);
        probs.values[(std::size_t(h) * T + t) * T + j] = num::attn_prob(score, s);
      }
    }
}

// Under an eviction: the step's probabilities [rows, n_heads, probs_width] (rows from
// position `first`) into attn.probs [n_heads, T, T].
void put_evicted_probs(TapTensor& probs, const LayerTaps& lt, int first, int n_heads) {
  const std::size_t T = std::size_t(probs.shape[1]), width = std::size_t(lt.probs_width);
  const std::size_t rows = lt.probs.size() / (std::size_t(n_heads) * width);
  for (std::size_t r = 0; r < rows; ++r)
    for (int h = 0; h < n_heads; ++h)
      for (std::size_t j = 0; j < T; ++j)
        probs.values[(std::size_t(h) * T + first + r) * T + j] = lt.probs[(r * n_heads + h) * width + j];
}

// The selection's taps and logprobs.
TapSet select_taps(TapSet taps, const TapSelection& selection) {
  TapSet wanted;
  for (TapTensor& t : taps)
    if (t.name == kLogprobsTap || selection.wants(t.name)) wanted.push_back(std::move(t));
  return wanted;
}

}  // namespace

std::vector<TapSpec> engine_tap_specs(const ModelConfig& config, int tokens, const TapSelection& selection) {
  std::vector<TapSpec> specs = tap_specs(config, tokens, selection);
  specs.push_back({kLogprobsTap, {tokens, config.vocab}});
  return specs;
}

TapSet engine_forward(const Model& model, const std::vector<int>& tokens, const EngineOptions& options) {
  const ModelConfig& c = model.config;
  validate_tokens(tokens, c, "tokens");
  if (options.chunk < 0) throw InputError("engine", "chunk size " + std::to_string(options.chunk) + " is negative");
  const int T = int(tokens.size());
  const int chunk = options.chunk == 0 ? T : options.chunk;
  // The layer taps are collected whole (attn.probs is rebuilt from q) and cut to the
  // selection at the end.
  const bool all = options.taps.wants_layer_taps();

  TapSet taps;
  for (const TapSpec& s : engine_tap_specs(c, T, all ? TapSelection::all : TapSelection::logits)) {
    TapTensor t{s.name, s.shape, {}};
    t.values.assign(std::size_t(t.numel()), 0.0);
    taps.push_back(std::move(t));
  }
  auto tap = [&](const std::string& name) -> TapTensor& { return *const_cast<TapTensor*>(find_tap(taps, name)); };
  std::vector<std::vector<float>> stats(all ? c.n_layers : 0, std::vector<float>(std::size_t(T) * c.n_heads * 2));
  // Under a rotated policy the probabilities come from q and the keys as the kernels
  // multiplied them (LayerTaps::q_rotated, Basis::rotated), not from their model-basis
  // images, whose roundings the attention never saw.
  const bool rotated = options.kv.rot.kind != quant::RotationKind::none;
  std::vector<TapTensor> q_rotated(rotated && all ? c.n_layers : 0);
  for (int l = 0; l < int(q_rotated.size()); ++l)
    q_rotated[l] = {tap_layer_name(l, "q"), {T, c.q_dim()}, std::vector<double>(std::size_t(T) * c.q_dim())};

  Engine engine(model, options);
  const int seq = engine.add_sequence(T);
  for (int first = 0; first < T; first += chunk) {
    const int count = std::min(chunk, T - first);
    const StepOutput& out = engine.step({{seq, std::vector<int>(tokens.begin() + first, tokens.begin() + first + count)}}, all);
    put_rows(tap("logits"), out.logits, first, c.vocab);
    put_rows(tap(kLogprobsTap), engine.logprobs(), first, c.vocab);
    if (!all) continue;
    for (int l = 0; l < c.n_layers; ++l) {
      const LayerTaps& lt = out.layers[l];
      put_rows(tap(tap_layer_name(l, "q")), lt.q, first, c.q_dim());
      put_rows(tap(tap_layer_name(l, "k")), lt.k, first, c.kv_dim());
      put_rows(tap(tap_layer_name(l, "v")), lt.v, first, c.v_dim());
      put_rows(tap(tap_layer_name(l, "attn.out")), lt.attn_out, first, c.attn_out_dim());
      put_rows(tap(tap_layer_name(l, "out")), lt.out, first, c.dim);
      std::copy(lt.stats.begin(), lt.stats.end(), stats[l].begin() + std::size_t(first) * c.n_heads * 2);
      if (rotated) put_rows(q_rotated[l], lt.q_rotated, first, c.q_dim());
      if (!lt.probs.empty()) put_evicted_probs(tap(tap_layer_name(l, "attn.probs")), lt, first, c.n_heads);
    }
  }
  // Under an eviction the keys a query read may be gone from the cache by the end, and
  // latent attention's absorbed path scores against cached rows, not the k tap: the
  // backend gave each step's probabilities instead (LayerTaps::probs).
  if (!all || options.kv.evict || c.mla.active()) return select_taps(std::move(taps), options.taps);
  const KvPlan plan = make_kv_plan(options.kv, options.kv_scales, c);
  for (int l = 0; l < c.n_layers; ++l)
    fill_probs(tap(tap_layer_name(l, "attn.probs")), rotated ? q_rotated[l] : tap(tap_layer_name(l, "q")),
               engine.cache_values(seq, l, Engine::Basis::rotated), stats[l], c, l, plan.policy.hot_window,
               plan.k_group[l]);
  return select_taps(std::move(taps), options.taps);
}

}  // namespace kvfid::engine
