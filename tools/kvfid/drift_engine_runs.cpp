#include "tools/kvfid/drift_engine_runs.h"

#include <algorithm>
#include <chrono>
#include <cmath>

#include "cuda/engine/engine.h"
#include "reference/metrics/drift_metrics.h"
#include "reference/util/progress.h"
#include "tools/kvfid/drift_formats.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine

namespace {

using Clock = std::chrono::steady_clock;

std::vector<double> to_double(const float* v, std::size_t n) { return std::vector<double>(v, v + n); }

// Under an eviction the summary of the probabilities the engine weighted by (row
// [n_heads, width] of LayerTaps::probs): its keys are not all in the cache any more.
AttentionSummary summary_from_engine_probs(const float* row, int width, int t, int n_heads) {
  std::vector<double> p(std::size_t(n_heads) * (t + 1));  // [n_heads, t + 1]
  for (int h = 0; h < n_heads; ++h) std::copy_n(row + std::size_t(h) * width, t + 1, p.begin() + std::ptrdiff_t(h) * (t + 1));
  return attention_summary_from_rows(p.data(), std::size_t(t) + 1, n_heads, t + 1);
}

// Measures position t from the engine's logits row [vocab], each layer's query row
// [n_heads, head_dim] and the layer's cached keys [t+1, n_kv_heads, head_dim], or under
// an eviction the step's taps `layers` (row `step_row` of their probabilities).
void record_position(EngineRun& run, const GoldenSeries& golden, int t, const float* logits,
                     const std::vector<const float*>& q_rows, const std::vector<const float*>& keys,
                     const ModelConfig& c, const std::vector<LayerTaps>& layers, int step_row) {
  const std::vector<double> row = to_double(logits, std::size_t(c.vocab));  // [vocab]
  bool non_finite = false;
  PositionRecord r;
  r.position = t;
  r.next_token = position_drift(golden, t, row.data(), c.vocab, non_finite);
  if (non_finite) ++run.series.non_finite_positions;
  for (int l = 0; l < c.n_layers; ++l) {
    if (const LayerTaps& lt = layers[std::size_t(l)]; !lt.probs.empty()) {
      r.attention.push_back(summary_from_engine_probs(
          lt.probs.data() + std::size_t(step_row) * c.n_heads * lt.probs_width, lt.probs_width, t, c.n_heads));
      continue;
    }
    const std::vector<double> q = to_double(q_rows[l], std::size_t(c.q_dim()));                 // [n_heads, head_dim]
    const std::vector<double> k = to_double(keys[l], std::size_t(t + 1) * std::size_t(c.kv_dim()));  // [t+1, n_kv_heads, head_dim]
    r.attention.push_back(attention_summary_from_qk(q.data(), k.data(), t + 1, c, l));
  }
  run.series.positions.push_back(std::move(r));
  run.logits.insert(run.logits.end(), logits, logits + c.vocab);
}

void run_cached_decode(EngineRun& run, const Model& model, const EngineOptions& options, const std::vector<int>& tokens,
                       const GoldenSeries& golden, Progress* progress) {
  const ModelConfig& c = model.config;
  const int T = int(tokens.size());
  Engine engine(model, options);
  const int seq = engine.add_sequence(T);
  std::vector<std::vector<float>> keys(c.n_layers, std::vector<float>(std::size_t(T) * c.kv_dim()));  // [n_layers][T, n_kv_heads, head_dim]
  std::vector<const float*> q_rows(c.n_layers), key_rows(c.n_layers);
  for (int t = 0; t < T; ++t) {
    const StepOutput& out = engine.step({{seq, {tokens[t]}}}, true);
    for (int l = 0; l < c.n_layers; ++l) {
      std::copy(out.layers[l].k.begin(), out.layers[l].k.end(), keys[l].begin() + std::size_t(t) * c.kv_dim());
      q_rows[l] = out.layers[l].q.data();
      key_rows[l] = keys[l].data();
    }
    record_position(run, golden, t, out.logits.data(), q_rows, key_rows, c, out.layers, 0);
    if (progress) progress->advance();
  }
}

void run_recompute(EngineRun& run, const Model& model, const EngineOptions& options, int every,
                   const std::vector<int>& tokens, const GoldenSeries& golden, Progress* progress) {
  const ModelConfig& c = model.config;
  std::vector<const float*> q_rows(c.n_layers), key_rows(c.n_layers);
  const int T = int(tokens.size());
  for (int t = 0; t < T; ++t) {
    if (!recomputed_at(t, T, every)) continue;
    Engine engine(model, options);  // fresh: nothing cached from an earlier position
    // The cached decode's capacity: an eviction budget in percent is of the capacity.
    const int seq = engine.add_sequence(T);
    const StepOutput& out = engine.step({{seq, std::vector<int>(tokens.begin(), tokens.begin() + t + 1)}}, true);
    for (int l = 0; l < c.n_layers; ++l) {
      q_rows[l] = out.layers[l].q.data() + std::size_t(t) * c.q_dim();
      key_rows[l] = out.layers[l].k.data();
    }
    record_position(run, golden, t, out.logits.data() + std::size_t(t) * c.vocab, q_rows, key_rows, c, out.layers, t);
    if (progress) progress->advance(t + 1);
  }
}

}  // namespace

std::string to_string(Schedule schedule) { return schedule == Schedule::cached_decode ? "cached-decode" : "recompute"; }

bool recomputed_at(int t, int T, int every) { return (t + 1) % every == 0 || t == T - 1; }

std::vector<EngineConfiguration> engine_configurations(Backend backend, const std::string& weights,
                                                       const WeightFormat& weight_format,
                                                       const std::vector<quant::KvPolicySpec>& kv_specs,
                                                       int recompute_every, int threads, LatentPath latent) {
  std::vector<EngineConfiguration> configurations;
  for (const quant::KvPolicySpec& spec : kv_specs) {
    const std::string& kv = spec.text;
    const EngineOptions invariant = drift_engine_options(backend, weight_format, spec, threads, latent);
    for (Schedule s : {Schedule::cached_decode, Schedule::recompute})
      configurations.push_back({kv + " " + to_string(s), weights, kv, s, invariant, recompute_every});
    EngineOptions by_length = invariant;
    by_length.split = SplitMode::by_length;
    configurations.push_back(
        {kv + " " + to_string(Schedule::cached_decode) + " " + to_string(SplitMode::by_length), weights, kv,
         Schedule::cached_decode, by_length, recompute_every});
  }
  return configurations;
}

std::int64_t engine_work(const EngineConfiguration& configuration, int positions) {
  if (configuration.schedule == Schedule::cached_decode) return positions;
  std::int64_t rows = 0;
  for (int t = 0; t < positions; ++t)
    if (recomputed_at(t, positions, configuration.recompute_every)) rows += t + 1;
  return rows;
}

EngineRun run_engine_configuration(const Model& model, const EngineConfiguration& configuration,
                                   const std::vector<int>& tokens, const GoldenSeries& golden, Progress* progress) {
  const auto start = Clock::now();
  EngineRun run;
  run.series.name = configuration.name;
  run.series.kind = "engine";
  run.series.schedule = to_string(configuration.schedule);
  run.series.split = to_string(configuration.options.split);
  run.series.weights = configuration.weights;
  run.series.kv = configuration.kv_spec;
  run.series.arithmetic = "f32";
  if (progress) progress->set_stage(configuration.name);
  if (configuration.schedule == Schedule::cached_decode)
    run_cached_decode(run, model, configuration.options, tokens, golden, progress);
  else
    run_recompute(run, model, configuration.options, configuration.recompute_every, tokens, golden, progress);
  run.series.seconds = std::chrono::duration<double>(Clock::now() - start).count();
  return run;
}

InvarianceVerdict compare_logits_bitwise(const std::string& kv_spec, const EngineRun& cached, const EngineRun& recompute,
                                         int vocab) {
  InvarianceVerdict v;
  v.kv_spec = kv_spec;
  v.cached = cached.series.name;
  v.recompute = recompute.series.name;
  const std::size_t cached_rows = cached.logits.size() / std::size_t(vocab);
  for (std::size_t row = 0; row < recompute.series.positions.size(); ++row) {
    const std::size_t t = std::size_t(recompute.series.positions[row].position);
    if (t >= cached_rows) break;
    ++v.compared_positions;
    const float* a = cached.logits.data() + t * vocab;       // [vocab]
    const float* b = recompute.logits.data() + row * vocab;  // [vocab]
    const auto at = first_bit_difference({a, std::size_t(vocab)}, {b, std::size_t(vocab)});
    if (!at) continue;
    if (v.bitwise_equal) {
      v.bitwise_equal = false;
      v.first_position = int(t);
      v.first_token = int(*at);
    }
    ++v.differing_positions;
    for (int i = 0; i < vocab; ++i)
      v.max_abs_logit_difference = std::max(v.max_abs_logit_difference, std::fabs(double(a[i]) - double(b[i])));
  }
  return v;
}

std::vector<InvarianceVerdict> invariance_verdicts(const std::vector<EngineConfiguration>& configurations,
                                                   const std::vector<EngineRun>& runs, int vocab) {
  std::vector<InvarianceVerdict> verdicts;
  for (SplitMode mode : {SplitMode::invariant, SplitMode::by_length})
    for (std::size_t i = 0; i < configurations.size(); ++i) {
      const EngineConfiguration& a = configurations[i];
      if (a.options.split != mode || a.schedule != Schedule::cached_decode) continue;
      for (std::size_t j = 0; j < configurations.size(); ++j) {
        const EngineConfiguration& b = configurations[j];
        if (b.schedule == Schedule::recompute && b.kv_spec == a.kv_spec) {
          verdicts.push_back(compare_logits_bitwise(a.kv_spec, runs.at(i), runs.at(j), vocab));
          verdicts.back().split = mode;
        }
      }
    }
  return verdicts;
}

std::vector<int> drift_sequence(const Model& model, const std::vector<int>& prompt, int positions, Backend backend,
                                int threads) {
  if (positions <= int(prompt.size())) return std::vector<int>(prompt.begin(), prompt.begin() + positions);
  const int vocab = model.config.vocab;
  Engine engine(model, drift_engine_options(backend, kExactWeights, kExactKv, threads));
  const int seq = engine.add_sequence(positions);
  std::vector<int> tokens = prompt;
  const StepOutput* out = &engine.step({{seq, prompt}});
  const float* last = out->logits.data() + (prompt.size() - 1) * std::size_t(vocab);  // [vocab]
  while (true) {
    tokens.push_back(int(std::max_element(last, last + vocab) - last));
    if (int(tokens.size()) == positions) return tokens;
    out = &engine.step({{seq, {tokens.back()}}});
    last = out->logits.data();
  }
}

}  // namespace kvfid::cli::drift
