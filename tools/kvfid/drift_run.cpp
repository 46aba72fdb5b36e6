#include "tools/kvfid/drift_run.h"

#include <chrono>
#include <iostream>
#include <optional>
#include <stdexcept>

#include "cuda/engine/engine.h"
#include "reference/util/progress.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine

namespace {

using Clock = std::chrono::steady_clock;

DriftBudgetEntry entry_at(const AttributionRun& run, const Series& series, int position) {
  const NextTokenDrift& d = series.positions.at(position).next_token;
  return {run.name, d.kl, d.max_abs_logit_error};
}

}  // namespace

bool Result::invariant() const {
  for (const InvarianceVerdict& v : invariance)
    if (v.split == SplitMode::invariant && !v.bitwise_equal) return false;
  return true;
}

bool Result::eviction_bounds_held() const {
  for (const Series& s : series)
    if (!s.bound_held) return false;
  return true;
}

int Result::engine_non_finite_positions() const {
  int n = 0;
  for (const Series& s : series)
    if (s.kind == "engine") n += s.non_finite_positions;
  return n;
}

std::vector<Budget> error_budgets(const std::vector<AttributionRun>& runs, const std::vector<Series>& series,
                                  const std::vector<quant::KvPolicySpec>& kv_specs, int position) {
  auto find = [&](const std::string& role, const std::string& kv_spec) -> DriftBudgetEntry {
    for (std::size_t i = 0; i < runs.size(); ++i)
      if (runs[i].role == role && runs[i].kv_spec == kv_spec) return entry_at(runs[i], series.at(i), position);
    throw std::logic_error("error_budgets: no attribution run '" + role + "' for KV '" + kv_spec + "'");
  };
  std::vector<Budget> budgets;
  for (const quant::KvPolicySpec& spec : kv_specs) {
    const std::string& kv = spec.text;
    budgets.push_back({kv, position,
                       attribute_error({find("weights", ""), find("kv", kv), find("arithmetic", "")}, find("all", kv)),
                       find("floor", "")});
  }
  return budgets;
}

Result run_drift(const Model& model, const std::vector<int>& tokens, int prompt_tokens, const Request& request) {
  const auto start = Clock::now();
  const int T = int(tokens.size());
  Result r;
  r.request = request;
  r.tokens = tokens;
  r.prompt_tokens = prompt_tokens;

  // Fail fast on an unavailable backend, before the long golden.
  const std::vector<EngineConfiguration> configurations =
      engine_configurations(request.backend, request.weights, request.weight_format, request.kv_specs, request.recompute_every,
                            request.threads, request.latent);
  { Engine probe(model, configurations.front().options); }

  std::optional<Progress> progress;
  if (request.progress) progress.emplace(Progress::on_stderr("kvfid drift: golden"));
  r.golden = golden_series(model, tokens, progress ? &*progress : nullptr);
  r.timings["golden"] = r.golden.seconds;

  if (request.progress) progress.emplace(Progress::on_stderr("kvfid drift: engine"));
  for (const EngineConfiguration& c : configurations)
    if (progress) progress->add_total(engine_work(c, T));
  std::vector<EngineRun> runs;
  for (const EngineConfiguration& c : configurations) {
    runs.push_back(run_engine_configuration(model, c, tokens, r.golden, progress ? &*progress : nullptr));
    r.timings[c.name] = runs.back().series.seconds;
  }
  if (progress) progress->finish();
  r.invariance = invariance_verdicts(configurations, runs, model.config.vocab);
  for (EngineRun& run : runs) r.series.push_back(std::move(run.series));

  const std::vector<AttributionRun> attribution = attribution_runs(request.weights, request.weight_format, request.kv_specs);
  if (request.progress) progress.emplace(Progress::on_stderr("kvfid drift: emulated attribution"));
  if (progress) progress->add_total(std::int64_t(attribution.size()));
  std::vector<Series> attribution_series_list;
  for (const AttributionRun& a : attribution) {
    if (progress) progress->set_stage(a.name);
    attribution_series_list.push_back(attribution_series(model, tokens, a, r.golden));
    r.timings[a.name] = attribution_series_list.back().seconds;
    if (progress) progress->advance();
  }
  if (progress) progress->finish();
  r.budgets = error_budgets(attribution, attribution_series_list, request.kv_specs, T - 1);
  for (Series& s : attribution_series_list) r.series.push_back(std::move(s));
  for (const quant::KvPolicySpec& spec : request.kv_specs) {
    if (!spec.evict) continue;
    if (request.progress) std::cerr << "kvfid drift: the exact account of " << spec.text << '\n';
    r.series.push_back(eviction_account_series(model, tokens, spec, r.golden));
    r.timings[r.series.back().name] = r.series.back().seconds;
  }
  r.timings["total"] = std::chrono::duration<double>(Clock::now() - start).count();
  return r;
}

}  // namespace kvfid::cli::drift
