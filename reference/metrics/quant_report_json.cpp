#include "reference/metrics/quant_report_json.h"

#include <cmath>

namespace kvfid::ref {

namespace {

nlohmann::json number(double v) { return std::isfinite(v) ? nlohmann::json(v) : nlohmann::json(nullptr); }

nlohmann::json numbers(const std::vector<double>& values) {
  nlohmann::json out = nlohmann::json::array();
  for (double v : values) out.push_back(number(v));
  return out;
}

nlohmann::json estimate(const Estimate& e) { return {{"value", number(e.value)}, {"standard_error", number(e.standard_error)}}; }

nlohmann::json quantiles(const std::vector<Quantile>& qs) {
  nlohmann::json out = nlohmann::json::array();
  for (const Quantile& q : qs) out.push_back({{"level", q.level}, {"value", number(q.value)}});
  return out;
}

nlohmann::json round_trip(const std::vector<RoundTripError>& heads) {
  nlohmann::json out = nlohmann::json::array();
  for (const RoundTripError& e : heads)
    out.push_back({{"rmse", number(e.rmse)},
                   {"relative_rmse", number(e.relative_rmse())},
                   {"max_abs", number(e.max_abs)},
                   {"rms_golden", number(e.rms_golden)}});
  return out;
}

nlohmann::json query_heads(const std::vector<KeyDistortion>& heads) {
  nlohmann::json out = nlohmann::json::array();
  for (const KeyDistortion& d : heads)
    out.push_back({{"qk_mean", number(d.qk_mean)},
                   {"qk_max", number(d.qk_max)},
                   {"qk_max_at", {d.qk_max_t, d.qk_max_j}},
                   {"attention_kl_mean", number(d.attention_kl_mean)},
                   {"attention_kl_max", number(d.attention_kl_max)},
                   {"attention_kl_max_at", d.attention_kl_max_t}});
  return out;
}

nlohmann::json kv_errors(const std::vector<KvLayerError>& layers) {
  if (layers.empty()) return nullptr;
  const KvSummary s = summarize_kv(layers);
  nlohmann::json per_layer = nlohmann::json::array();
  for (std::size_t l = 0; l < layers.size(); ++l)
    per_layer.push_back({{"layer", l},
                         {"k", round_trip(layers[l].k)},
                         {"v", round_trip(layers[l].v)},
                         {"query_heads", query_heads(layers[l].query_heads)}});
  return {{"summary",
           {{"k_relative_rmse_max", number(s.k_relative_rmse_max)},
            {"v_relative_rmse_max", number(s.v_relative_rmse_max)},
            {"qk_mean", number(s.qk_mean)},
            {"qk_max", number(s.qk_max)},
            {"attention_kl_mean", number(s.attention_kl_mean)},
            {"attention_kl_max", number(s.attention_kl_max)}}},
          {"layers", per_layer}};
}

nlohmann::json budget_entry(const BudgetEntry& e) {
  return {{"kld", estimate(e.kld)},
          {"kld_max", number(e.kld_max)},
          {"ln_ppl_ratio", estimate(e.ln_ppl_ratio)},
          {"same_top", estimate(e.same_top)}};
}

nlohmann::json budget(const std::optional<ErrorBudget>& b) {
  if (!b) return nullptr;
  return {{"weights_only", budget_entry(b->weights)},
          {"kv_only", budget_entry(b->kv)},
          {"both", budget_entry(b->both)},
          {"weights_share", number(b->weights_share)},
          {"kv_share", number(b->kv_share)},
          {"both_over_sum", number(b->both_over_sum)}};
}

nlohmann::json eviction(const std::optional<EvictionSummary>& e) {
  if (!e) return nullptr;
  return {{"kept_fraction", e->kept_fraction}, {"mass_max", e->mass_max},   {"mass_mean", e->mass_mean},
          {"error_max", e->error_max},         {"bound_max", e->bound_max}, {"ratio_max", e->ratio_max},
          {"margin_min", number(e->margin_min)},       {"bound_held", e->bound_held}, {"kld_mean", e->kld_mean}};
}

}  // namespace

nlohmann::json logit_statistics_to_json(const LogitStatistics& s) {
  return {{"positions", s.positions},
          {"ppl_test", estimate(s.ppl_test)},
          {"ppl_base", estimate(s.ppl_base)},
          {"ln_ppl_correlation", number(s.ln_ppl_correlation)},
          {"ln_ppl_ratio", estimate(s.ln_ppl_ratio)},
          {"ppl_ratio", estimate(s.ppl_ratio)},
          {"ppl_difference", estimate(s.ppl_difference)},
          {"kld", estimate(s.kld)},
          {"kld_max", number(s.kld_max)},
          {"kld_min", number(s.kld_min)},
          {"kld_percentiles", quantiles(s.kld_percentiles)},
          {"dp", estimate(s.dp)},
          {"dp_max", number(s.dp_max)},
          {"dp_min", number(s.dp_min)},
          {"dp_percentiles", quantiles(s.dp_percentiles)},
          {"dp_rms", estimate(s.dp_rms)},
          {"same_top", estimate(s.same_top)},
          {"per_position",
           {{"kld", numbers(s.kld_at)},
            {"dp", numbers(s.dp_at)},
            {"nll_test", numbers(s.nll_test_at)},
            {"nll_base", numbers(s.nll_base_at)},
            {"same_top", s.same_top_at}}}};
}

nlohmann::json quant_report_to_json(const QuantReport& report, const std::string& command,
                                    const nlohmann::json& options, const nlohmann::json& golden_summary) {
  nlohmann::json columns = nlohmann::json::array();
  for (const QuantColumn& c : report.columns)
    columns.push_back({{"label", c.label},
                       {"logits", logit_statistics_to_json(c.logits)},
                       {"kv", kv_errors(c.kv)},
                       {"budget", budget(c.budget)},
                       {"kv_bits_per_element", c.kv_bits_per_element ? nlohmann::json(*c.kv_bits_per_element) : nlohmann::json()},
                       {"eviction", eviction(c.eviction)}});
  return {{"kvfid_version", KVFID_VERSION}, {"command", command}, {"options", options},
          {"golden", golden_summary},       {"weights", report.weights}, {"columns", columns}};
}

}  // namespace kvfid::ref
