#include "tools/kvfid/drift_reference_runs.h"

#include <algorithm>
#include <chrono>
#include <stdexcept>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/mp/golden_forward.h"
#include "reference/mp/mp_forward.h"
#include "tools/kvfid/drift_formats.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

using Clock = std::chrono::steady_clock;

double seconds_since(Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); }

TapTensor& tap_named(TapSet& taps, const std::string& name) {
  for (TapTensor& t : taps)
    if (t.name == name) return t;
  throw std::logic_error("golden has no tap '" + name + "'");
}

}  // namespace

GoldenSeries golden_series(const Model& model, const std::vector<int>& tokens, Progress* progress) {
  const auto start = Clock::now();
  const ModelConfig& c = model.config;
  GoldenOptions options;
  options.taps = TapSelection::all;
  options.progress = progress;
  GoldenResult golden = compute_golden(model, tokens, options);
  GoldenSeries g;
  g.certification = std::move(golden.certification);
  g.logits = std::move(tap_named(golden.taps, "logits").values);
  g.attention.assign(tokens.size(), std::vector<AttentionSummary>(std::size_t(c.n_layers)));
  for (int l = 0; l < c.n_layers; ++l) {
    TapTensor& probs = tap_named(golden.taps, tap_layer_name(l, "attn.probs"));  // [n_heads, T, T]
    for (int t = 0; t < int(tokens.size()); ++t) g.attention[t][l] = attention_summary_from_probs(probs, t);
    std::vector<double>().swap(probs.values);  // no longer needed
  }
  g.seconds = seconds_since(start);
  return g;
}

std::vector<AttributionRun> attribution_runs(const std::string& weights, const WeightFormat& weight_format,
                                             const std::vector<quant::KvPolicySpec>& kv_specs) {
  const std::string exact = kExactStorage, narrow = to_string(kAttributionArithmetic);
  // w names wf in the reports, kv.text the KV spec (kExactKv's is kExactStorage).
  auto run = [&](std::string name, std::string role, std::string kv_spec, std::string w, const WeightFormat& wf,
                 const quant::KvPolicySpec& kv, FloatFormat a) {
    return AttributionRun{std::move(name), std::move(role), kv_spec, w, kv.text, to_string(a), drift_emulation(a, wf, kv)};
  };
  std::vector<AttributionRun> runs = {
      run("budget: floor (f32 arithmetic)", "floor", "", exact, kExactWeights, kExactKv, FloatFormat::f32),
      run("budget: weights " + weights, "weights", "", weights, weight_format, kExactKv, FloatFormat::f32),
      run("budget: arithmetic " + narrow, "arithmetic", "", exact, kExactWeights, kExactKv, kAttributionArithmetic),
  };
  for (const quant::KvPolicySpec& spec : kv_specs) {
    const std::string& kv = spec.text;
    runs.push_back(run("budget: kv " + kv, "kv", kv, exact, kExactWeights, spec, FloatFormat::f32));
    runs.push_back(run("budget: all (" + narrow + " arithmetic, weights " + weights + ", kv " + kv + ")", "all", kv,
                       weights, weight_format, spec, kAttributionArithmetic));
  }
  return runs;
}

Series attribution_series(const Model& model, const std::vector<int>& tokens, const AttributionRun& run,
                          const GoldenSeries& golden) {
  const auto start = Clock::now();
  const int vocab = model.config.vocab;
  const TapSet taps = emulated_forward(model, tokens, run.emulation, TapSelection::logits);
  const TapTensor& logits = *find_tap(taps, "logits");  // [T, vocab]
  Series s{run.name, "attribution", "emulated", "", run.weights, run.kv, run.arithmetic, {}, 0, 0};
  for (int t = 0; t < int(tokens.size()); ++t) {
    bool non_finite = false;
    s.positions.push_back({t, position_drift(golden, t, logits.values.data() + std::size_t(t) * vocab, vocab, non_finite), {}, std::nullopt});
    if (non_finite) ++s.non_finite_positions;
  }
  s.seconds = seconds_since(start);
  return s;
}

Series eviction_account_series(const Model& model, const std::vector<int>& tokens, const quant::KvPolicySpec& kv,
                               const GoldenSeries& golden) {
  const auto start = Clock::now();
  const int vocab = model.config.vocab, T = int(tokens.size());
  EvictionRecord record;
  const std::vector<double> logits =
      exact_evicting_logits(model, tokens, quant::resolve_kv_policy(kv, {}, model.config), &record);
  Series s{"account: exact " + kv.text, "account", "exact", "", "exact", kv.text, "exact", {}, 0, 0};
  std::vector<EvictionAtPosition> at(std::size_t(T), EvictionAtPosition{0, 0, 0, T + 1});
  for (const EvictionStep& step : record.steps) {
    EvictionAtPosition& a = at[std::size_t(step.position)];
    a.mass = std::max(a.mass, step.mass);
    a.observed = std::max(a.observed, step.observed);
    a.bound = std::max(a.bound, step.bound);
    a.min_kept = std::min(a.min_kept, step.kept);
  }
  for (int t = 0; t < T; ++t) {
    bool non_finite = false;
    s.positions.push_back({t, position_drift(golden, t, logits.data() + std::size_t(t) * vocab, vocab, non_finite), {},
                           at[std::size_t(t)]});
    if (non_finite) ++s.non_finite_positions;
  }
  s.bound_held = record.certified;
  s.seconds = seconds_since(start);
  return s;
}

}  // namespace kvfid::cli::drift
