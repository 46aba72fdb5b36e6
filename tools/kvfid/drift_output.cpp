#include "tools/kvfid/drift_output.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>

namespace kvfid::cli::drift {

namespace {

// 17 significant digits: every double reads back to the same value.
std::string num(double v) {
  if (std::isnan(v)) return "nan";
  char buf[40];
  std::snprintf(buf, sizeof buf, "%.17g", v);
  return buf;
}

// Short form for the stdout table.
std::string brief(double v) {
  if (std::isnan(v)) return "nan";
  char buf[32];
  std::snprintf(buf, sizeof buf, "%.3e", v);
  return buf;
}

std::string csv_field(const std::string& s) {
  if (s.find_first_of(",\"\n") == std::string::npos) return s;
  std::string out = "\"";
  for (char c : s) out += c == '"' ? std::string("\"\"") : std::string(1, c);
  return out + "\"";
}

struct SeriesSummary {
  double kl_last = 0;
  double kl_max = 0;
  int kl_max_position = 0;
  double kl_mean = 0;
  double logit_error_max = 0;
  double top1_agreement = 0;
};

// Over the positions with finite metrics; NaN positions are counted in non_finite_positions.
SeriesSummary summarize(const Series& s) {
  SeriesSummary m;
  int measured = 0, agreeing = 0;
  for (const PositionRecord& r : s.positions) {
    const NextTokenDrift& d = r.next_token;
    if (std::isnan(d.kl)) continue;
    ++measured;
    m.kl_mean += d.kl;
    if (d.kl > m.kl_max || measured == 1) m.kl_max = d.kl, m.kl_max_position = r.position;
    m.logit_error_max = std::max(m.logit_error_max, d.max_abs_logit_error);
    agreeing += d.top1_agrees();
  }
  if (measured > 0) m.kl_mean /= measured, m.top1_agreement = double(agreeing) / measured;
  m.kl_last = s.positions.empty() ? 0 : s.positions.back().next_token.kl;
  return m;
}

nlohmann::json budget_json(const Budget& b) {
  nlohmann::json sources = nlohmann::json::array();
  for (const DriftBudgetShare& s : b.budget.sources)
    sources.push_back({{"source", s.entry.source},
                       {"kl", s.entry.kl},
                       {"kl_share", s.kl_share},
                       {"max_abs_logit_error", s.entry.logit_error},
                       {"logit_error_share", s.logit_error_share}});
  auto optional = [](const std::optional<double>& v) { return v ? nlohmann::json(*v) : nlohmann::json(nullptr); };
  return {{"kv", b.kv_spec},
          {"position", b.position},
          {"sources", sources},
          {"combined", {{"source", b.budget.combined.source}, {"kl", b.budget.combined.kl}, {"max_abs_logit_error", b.budget.combined.logit_error}}},
          {"floor", {{"source", b.floor.source}, {"kl", b.floor.kl}, {"max_abs_logit_error", b.floor.logit_error}}},
          {"kl_sum_over_combined", optional(b.budget.kl_sum_over_combined)},
          {"logit_error_sum_over_combined", optional(b.budget.logit_error_sum_over_combined)}};
}

// [n_layers][T] of one attention quantity.
template <class Get>
nlohmann::json per_layer(const std::vector<std::vector<AttentionSummary>>& by_position, int n_layers, Get get) {
  nlohmann::json layers = nlohmann::json::array();
  for (int l = 0; l < n_layers; ++l) {
    nlohmann::json values = nlohmann::json::array();
    for (const auto& at : by_position) values.push_back(get(at.at(l)));
    layers.push_back(values);
  }
  return layers;
}

// "512 positions", or "32 recomputed positions (every 16th and the last) of 512".
std::string compared(const Result& result) {
  const int T = int(result.tokens.size()), every = result.request.recompute_every;
  if (every == 1) return std::to_string(T) + " positions";
  int n = 0;
  for (int t = 0; t < T; ++t) n += recomputed_at(t, T, every);
  return std::to_string(n) + " recomputed positions (every " + std::to_string(every) + "th and the last) of " +
         std::to_string(T);
}

std::vector<std::string> spec_texts(const std::vector<quant::KvPolicySpec>& specs) {
  std::vector<std::string> texts;
  for (const quant::KvPolicySpec& s : specs) texts.push_back(s.text);
  return texts;
}

std::string kv_list(const std::vector<std::string>& specs) {
  std::string s;
  for (const std::string& k : specs) s += (s.empty() ? "" : ", ") + k;
  return s;
}

}  // namespace

std::string drift_csv(const Result& result, int n_layers) {
  std::ostringstream out;
  out << "configuration,kind,schedule,split,weights,kv,arithmetic,position,token,kl,max_abs_logit_error,golden_top1,top1,"
         "top1_agrees,uniform_weight";
  for (int l = 0; l < n_layers; ++l)
    out << ",entropy_" << l << ",golden_entropy_" << l << ",newest_weight_" << l << ",golden_newest_weight_" << l;
  out << ",evicted_mass,evict_error,evict_bound,min_kept\n";
  for (const Series& s : result.series)
    for (const PositionRecord& r : s.positions) {
      const int t = r.position;
      const NextTokenDrift& d = r.next_token;
      out << csv_field(s.name) << ',' << s.kind << ',' << s.schedule << ',' << s.split << ',' << csv_field(s.weights) << ','
          << csv_field(s.kv) << ',' << s.arithmetic << ',' << t << ',' << result.tokens[t] << ',' << num(d.kl) << ','
          << num(d.max_abs_logit_error) << ',' << d.golden_top1 << ',' << d.candidate_top1 << ',' << int(d.top1_agrees())
          << ',' << num(1.0 / double(t + 1));
      for (int l = 0; l < n_layers; ++l) {
        const AttentionSummary& g = result.golden.attention.at(t).at(l);
        if (r.attention.empty())
          out << ",," << num(g.entropy) << ",," << num(g.newest_weight);
        else
          out << ',' << num(r.attention[l].entropy) << ',' << num(g.entropy) << ',' << num(r.attention[l].newest_weight)
              << ',' << num(g.newest_weight);
      }
      if (r.eviction)
        out << ',' << num(r.eviction->mass) << ',' << num(r.eviction->observed) << ',' << num(r.eviction->bound) << ','
            << r.eviction->min_kept;
      else
        out << ",,,,";
      out << '\n';
    }
  return out.str();
}

std::string invariance_line(const Result& result) {
  std::vector<std::string> specs;
  for (const InvarianceVerdict& v : result.invariance)
    if (v.split == SplitMode::invariant) specs.push_back(v.kv_spec);
  if (result.invariant())
    return "invariance: cached decode and recompute logits are bitwise equal at all " + compared(result) +
           " (KV " + kv_list(specs) + "): drift exactly zero";
  std::string line = "invariance: FAILED:";
  for (const InvarianceVerdict& v : result.invariance)
    if (v.split == SplitMode::invariant && !v.bitwise_equal)
      line += " KV " + v.kv_spec + ": '" + v.cached + "' and '" + v.recompute + "' logits first differ at position " +
              std::to_string(v.first_position) + " (vocabulary index " + std::to_string(v.first_token) + ");";
  line.pop_back();
  return line;
}

std::string by_length_line(const Result& result) {
  std::string line = "by-length split (cached decode against recompute; differences expected, not a failure):";
  for (const InvarianceVerdict& v : result.invariance) {
    if (v.split != SplitMode::by_length) continue;
    line += " KV " + v.kv_spec + ": ";
    if (v.bitwise_equal)
      line += "bitwise equal at all " + compared(result) + ";";
    else
      line += "differs at " + std::to_string(v.differing_positions) + " of " + compared(result) + " (first " +
              std::to_string(v.first_position) + "), max |logit difference| " + brief(v.max_abs_logit_difference) + ";";
  }
  line.pop_back();
  return line;
}

nlohmann::json drift_json(const Result& result, const ReportContext& context) {
  const int n_layers = context.model_config.value("n_layers", 0);
  nlohmann::json series = nlohmann::json::array(), kl_last = nlohmann::json::object(), kl_max = nlohmann::json::object();
  for (const Series& s : result.series) {
    const SeriesSummary m = summarize(s);
    nlohmann::json at = nlohmann::json::array(), kl = nlohmann::json::array(), err = nlohmann::json::array(),
                   top1 = nlohmann::json::array();
    std::vector<std::vector<AttentionSummary>> attention;
    for (const PositionRecord& r : s.positions) {
      at.push_back(r.position);
      kl.push_back(r.next_token.kl);
      err.push_back(r.next_token.max_abs_logit_error);
      top1.push_back(r.next_token.candidate_top1);
      if (!r.attention.empty()) attention.push_back(r.attention);
    }
    nlohmann::json j = {{"name", s.name},
                        {"kind", s.kind},
                        {"schedule", s.schedule},
                        {"split", s.split},
                        {"weights", s.weights},
                        {"kv", s.kv},
                        {"arithmetic", s.arithmetic},
                        {"seconds", s.seconds},
                        {"non_finite_positions", s.non_finite_positions},
                        {"summary",
                         {{"kl_last", m.kl_last},
                          {"kl_max", m.kl_max},
                          {"kl_max_position", m.kl_max_position},
                          {"kl_mean", m.kl_mean},
                          {"max_abs_logit_error_max", m.logit_error_max},
                          {"top1_agreement", m.top1_agreement}}},
                        {"positions", at},
                        {"kl", kl},
                        {"max_abs_logit_error", err},
                        {"top1", top1}};
    if (s.kind == "account") {
      nlohmann::json mass = nlohmann::json::array(), error = nlohmann::json::array(), bound = nlohmann::json::array(),
                     kept = nlohmann::json::array();
      for (const PositionRecord& r : s.positions) {
        const EvictionAtPosition e = r.eviction.value_or(EvictionAtPosition{});
        mass.push_back(e.mass), error.push_back(e.observed), bound.push_back(e.bound), kept.push_back(e.min_kept);
      }
      j["evicted_mass"] = mass;
      j["evict_error"] = error;
      j["evict_bound"] = bound;
      j["min_kept"] = kept;
      j["bound_held"] = s.bound_held;
    }
    if (!attention.empty()) {
      j["attention_entropy"] = per_layer(attention, n_layers, [](const AttentionSummary& a) { return a.entropy; });
      j["newest_weight"] = per_layer(attention, n_layers, [](const AttentionSummary& a) { return a.newest_weight; });
    }
    series.push_back(j);
    kl_last[s.name] = m.kl_last;
    kl_max[s.name] = {{"kl", m.kl_max}, {"position", m.kl_max_position}};
  }

  nlohmann::json golden_top1 = nlohmann::json::array();
  for (const Series& s : result.series)
    if (s.positions.size() == result.tokens.size()) {  // a series measured at every position
      for (const PositionRecord& r : s.positions) golden_top1.push_back(r.next_token.golden_top1);
      break;
    }
  nlohmann::json invariance = nlohmann::json::array();
  for (const InvarianceVerdict& v : result.invariance)
    invariance.push_back({{"kv", v.kv_spec},
                          {"split", to_string(v.split)},
                          {"cached", v.cached},
                          {"recompute", v.recompute},
                          {"bitwise_equal", v.bitwise_equal},
                          {"first_position", v.first_position},
                          {"first_vocabulary_index", v.first_token},
                          {"compared_positions", v.compared_positions},
                          {"differing_positions", v.differing_positions},
                          {"max_abs_logit_difference", v.max_abs_logit_difference}});
  nlohmann::json budgets = nlohmann::json::array();
  for (const Budget& b : result.budgets) budgets.push_back(budget_json(b));

  return {{"command", "drift"},
          {"kvfid_version", KVFID_VERSION},
          {"model", context.model_path},
          {"model_sha256", context.model_sha256},
          {"config", context.model_config},
          {"engine", context.engine},
          {"weights", result.request.weights},
          {"kv", spec_texts(result.request.kv_specs)},
          {"mla", to_string(result.request.latent)},
          {"positions", result.tokens.size()},
          {"recompute_every", result.request.recompute_every},
          {"prompt_tokens", result.prompt_tokens},
          {"continuation", result.prompt_tokens < int(result.tokens.size())
                               ? nlohmann::json("greedy argmax on the " + context.engine + " engine, f32 weights, f32 KV cache")
                               : nlohmann::json(nullptr)},
          {"tokens", result.tokens},
          {"summary",
           {{"kl_last", kl_last},
            {"kl_max", kl_max},
            {"cached_recompute_bitwise_equal", result.invariant()},
            {"invariance", invariance_line(result)},
            {"by_length_split", by_length_line(result)},
            {"engine_non_finite_positions", result.engine_non_finite_positions()},
            {"timings_seconds", result.timings}}},
          {"invariance", invariance},
          {"error_budget", budgets},
          {"golden",
           {{"certification", result.golden.certification},
            {"top1", golden_top1},
            {"attention_entropy", per_layer(result.golden.attention, n_layers, [](const AttentionSummary& a) { return a.entropy; })},
            {"newest_weight",
             per_layer(result.golden.attention, n_layers, [](const AttentionSummary& a) { return a.newest_weight; })}}},
          {"series", series}};
}

LinePlot drift_plot(const Result& result, const ReportContext& context) {
  LinePlot plot;
  plot.title = "KL(golden || run) per position: " + context.model_name + ", weights " + result.request.weights + ", KV " +
               kv_list(spec_texts(result.request.kv_specs)) + " (" + context.engine + ")";
  plot.x_label = "position t (next-token distribution after tokens 0..t)";
  plot.y_label = "KL(golden || run), nats";
  plot.log_y = true;
  for (const Series& s : result.series) {
    PlotSeries p;
    p.label = s.name;
    // Solid for cached decode, dashed for recompute (drawn over it: in the invariant mode
    // the two coincide), dash-dotted for by-length cached decode (where it leaves them,
    // the split mode's non-invariance shows), dotted for the emulated budget runs.
    p.dash = s.split == "by-length"         ? "9 3 2 3"
             : s.schedule == "cached-decode" ? ""
             : s.schedule == "recompute"     ? "6 4"
             : s.schedule == "exact"         ? "12 4"
                                             : "2 3";
    for (const PositionRecord& r : s.positions) {
      p.x.push_back(r.position);
      p.y.push_back(r.next_token.kl);
    }
    plot.series.push_back(std::move(p));
  }
  return plot;
}

LinePlot eviction_plot(const Result& result, const ReportContext& context) {
  LinePlot plot;
  plot.title = "Eviction, exact account per position (worst layer and head): " + context.model_name;
  plot.x_label = "position t";
  plot.y_label = "dropped mass m; |o - o'|; bound 2 m max|v|";
  plot.log_y = true;
  for (const Series& s : result.series) {
    if (s.kind != "account") continue;
    for (int what = 0; what < 3; ++what) {
      PlotSeries p;
      p.label = s.kv + (what == 0 ? ": mass" : what == 1 ? ": |o - o'|" : ": bound");
      p.dash = what == 0 ? "" : what == 1 ? "6 4" : "2 3";
      for (const PositionRecord& r : s.positions) {
        if (!r.eviction) continue;
        const double v = what == 0 ? r.eviction->mass : what == 1 ? r.eviction->observed : r.eviction->bound;
        if (!(v > 0)) continue;  // nothing dropped yet: no point on a log scale
        p.x.push_back(r.position);
        p.y.push_back(v);
      }
      plot.series.push_back(std::move(p));
    }
  }
  return plot;
}

std::string drift_summary_text(const Result& result) {
  std::ostringstream out;
  std::size_t width = 14;
  for (const Series& s : result.series) width = std::max(width, s.name.size());
  auto pad = [&](const std::string& s) { return s + std::string(width + 2 - std::min(width, s.size()), ' '); };
  out << pad("configuration") << "KL last     KL max      at    max|dlogit|  top-1   seconds\n";
  for (const Series& s : result.series) {
    const SeriesSummary m = summarize(s);
    char buf[128];
    std::snprintf(buf, sizeof buf, "%-11s %-11s %-5d %-12s %6.2f%%  %.1f", brief(m.kl_last).c_str(), brief(m.kl_max).c_str(),
                  m.kl_max_position, brief(m.logit_error_max).c_str(), 100 * m.top1_agreement, s.seconds);
    out << pad(s.name) << buf;
    if (s.non_finite_positions > 0) out << "  (" << s.non_finite_positions << " positions with NaN/Inf logits)";
    out << '\n';
  }
  out << invariance_line(result) << '\n';
  out << by_length_line(result) << '\n';
  for (const Series& s : result.series) {
    if (s.kind != "account") continue;
    EvictionAtPosition worst;
    for (const PositionRecord& r : s.positions)
      if (r.eviction) {
        worst.mass = std::max(worst.mass, r.eviction->mass);
        worst.observed = std::max(worst.observed, r.eviction->observed);
        worst.bound = std::max(worst.bound, r.eviction->bound);
      }
    out << "eviction account, KV " << s.kv << ": max dropped mass " << brief(worst.mass) << ", max |o - o'| "
        << brief(worst.observed) << ", max bound " << brief(worst.bound) << "; bound 2 m max|v| " << (s.bound_held ? "held at every step" : "VIOLATED") << '\n';
  }
  for (const Budget& b : result.budgets) {
    out << "error budget at position " << b.position << ", KV " << b.kv_spec << " (share of the sum of single sources):\n";
    std::size_t name_width = b.floor.source.size();
    for (const DriftBudgetShare& s : b.budget.sources) name_width = std::max(name_width, s.entry.source.size());
    name_width = std::max(name_width, b.budget.combined.source.size());
    auto line = [&](const DriftBudgetEntry& e, const std::string& kl_share, const std::string& logit_share) {
      out << "  " << e.source << std::string(name_width + 2 - e.source.size(), ' ') << "KL " << brief(e.kl) << ' '
          << kl_share << "  max|dlogit| " << brief(e.logit_error) << (logit_share.empty() ? "" : " " + logit_share) << '\n';
    };
    auto percent = [](double share) {
      char buf[16];
      std::snprintf(buf, sizeof buf, "(%5.1f%%)", 100 * share);
      return std::string(buf);
    };
    for (const DriftBudgetShare& s : b.budget.sources) line(s.entry, percent(s.kl_share), percent(s.logit_error_share));
    line(b.budget.combined, "        ", "");
    line(b.floor, "        ", "");
  }
  return out.str();
}

}  // namespace kvfid::cli::drift
