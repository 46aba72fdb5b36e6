#include "reference/metrics/quant_report_table.h"

#include <algorithm>
#include <cmath>
#include <cstdio>
#include <functional>
#include <stdexcept>
#include <vector>

#include "reference/metrics/text_table.h"

namespace kvfid::ref {

namespace {

// printf-style formats, one per kind of number, shared by every row of that kind.
constexpr const char* kFixed = "%.6f";       // perplexities and their ratio
constexpr const char* kSci = "%.4e";         // non-negative small quantities (KLD, RMS, relative errors)
constexpr const char* kSignedSci = "%+.4e";  // quantities of either sign (Δp, ln ratio, differences)
constexpr const char* kError = "%.2e";       // standard errors: two digits are all they carry
constexpr const char* kPercent = "%.3f";     // proportions in percent (same top p, correlation)
constexpr const char* kShare = "%.1f";       // budget shares in percent

std::string number(double v, const char* format) {
  if (std::isnan(v)) return "-";
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

std::string with_error(const Estimate& e, const char* format, const char* error_format, double scale = 1) {
  return number(scale * e.value, format) + " ± " + number(scale * e.standard_error, error_format);
}

std::string level_name(double level) { return level == 50 ? "Median" : number(level, "%.1f") + "%"; }

using Cell = std::function<std::string(const QuantColumn&)>;

struct Row {
  std::string statistic;
  std::string unit;
  Cell cell;
};

std::vector<Row> logit_rows() {
  std::vector<Row> rows = {
      {"PPL(test)", "", [](const QuantColumn& c) { return with_error(c.logits.ppl_test, kFixed, kError); }},
      {"PPL(base)", "", [](const QuantColumn& c) { return with_error(c.logits.ppl_base, kFixed, kError); }},
      {"Cor(ln PPL(test), ln PPL(base))", "%",
       [](const QuantColumn& c) { return number(100 * c.logits.ln_ppl_correlation, kPercent); }},
      {"ln(PPL(test)/PPL(base))", "",
       [](const QuantColumn& c) { return with_error(c.logits.ln_ppl_ratio, kSignedSci, kError); }},
      {"PPL(test)/PPL(base)", "", [](const QuantColumn& c) { return with_error(c.logits.ppl_ratio, kFixed, kError); }},
      {"PPL(test)-PPL(base)", "",
       [](const QuantColumn& c) { return with_error(c.logits.ppl_difference, kSignedSci, kError); }},
      {"Mean KLD", "nats", [](const QuantColumn& c) { return with_error(c.logits.kld, kSci, kError); }},
      {"Maximum KLD", "nats", [](const QuantColumn& c) { return number(c.logits.kld_max, kSci); }},
  };
  for (std::size_t i = 0; i < kKldPercentileLevels.size(); ++i)
    rows.push_back({level_name(kKldPercentileLevels[i]) + " KLD", "nats",
                    [i](const QuantColumn& c) { return number(c.logits.kld_percentiles[i].value, kSci); }});
  rows.push_back({"Minimum KLD", "nats", [](const QuantColumn& c) { return number(c.logits.kld_min, kSci); }});
  rows.push_back(
      {"Mean Δp", "%", [](const QuantColumn& c) { return with_error(c.logits.dp, kSignedSci, kError, 100); }});
  rows.push_back({"Maximum Δp", "%", [](const QuantColumn& c) { return number(100 * c.logits.dp_max, kSignedSci); }});
  for (std::size_t i = 0; i < kDpPercentileLevels.size(); ++i)
    rows.push_back({level_name(kDpPercentileLevels[i]) + " Δp", "%", [i](const QuantColumn& c) {
                      return number(100 * c.logits.dp_percentiles[i].value, kSignedSci);
                    }});
  rows.push_back({"Minimum Δp", "%", [](const QuantColumn& c) { return number(100 * c.logits.dp_min, kSignedSci); }});
  rows.push_back({"RMS Δp", "%", [](const QuantColumn& c) { return with_error(c.logits.dp_rms, kSci, kError, 100); }});
  rows.push_back(
      {"Same top p", "%", [](const QuantColumn& c) { return with_error(c.logits.same_top, kPercent, kPercent, 100); }});
  return rows;
}

// A KV summary figure, or "-" for a column without KV errors.
Cell kv_cell(double KvSummary::*field) {
  return [field](const QuantColumn& c) { return c.kv.empty() ? "-" : number(summarize_kv(c.kv).*field, kSci); };
}

std::vector<Row> kv_rows() {
  return {{"K relative RMSE, max", "", kv_cell(&KvSummary::k_relative_rmse_max)},
          {"V relative RMSE, max", "", kv_cell(&KvSummary::v_relative_rmse_max)},
          {"q·k relative error, mean", "", kv_cell(&KvSummary::qk_mean)},
          {"q·k relative error, max", "", kv_cell(&KvSummary::qk_max)},
          {"attention KL, mean", "nats", kv_cell(&KvSummary::attention_kl_mean)},
          {"attention KL, max", "nats", kv_cell(&KvSummary::attention_kl_max)}};
}

// A budget figure, or "-" for a column without a budget.
Cell budget_cell(std::function<std::string(const ErrorBudget&)> figure) {
  return [figure](const QuantColumn& c) { return c.budget ? figure(*c.budget) : "-"; };
}

std::vector<Row> budget_rows() {
  return {{"budget: mean KLD, weights only", "nats",
           budget_cell([](const ErrorBudget& b) { return with_error(b.weights.kld, kSci, kError); })},
          {"budget: mean KLD, KV only", "nats",
           budget_cell([](const ErrorBudget& b) { return with_error(b.kv.kld, kSci, kError); })},
          {"budget: mean KLD, both", "nats",
           budget_cell([](const ErrorBudget& b) { return with_error(b.both.kld, kSci, kError); })},
          {"budget: weights share", "%",
           budget_cell([](const ErrorBudget& b) { return number(100 * b.weights_share, kShare); })},
          {"budget: KV share", "%", budget_cell([](const ErrorBudget& b) { return number(100 * b.kv_share, kShare); })},
          {"budget: both / (weights + KV)", "",
           budget_cell([](const ErrorBudget& b) { return number(b.both_over_sum, "%.3f"); })}};
}

// An eviction figure, or "-" for a column without an eviction.
Cell eviction_cell(std::function<std::string(const EvictionSummary&)> figure) {
  return [figure](const QuantColumn& c) { return c.eviction ? figure(*c.eviction) : "-"; };
}

std::vector<Row> eviction_rows() {
  return {{"eviction: keys read", "%", eviction_cell([](const EvictionSummary& e) { return number(100 * e.kept_fraction, kPercent); })},
          {"eviction: dropped mass, max", "", eviction_cell([](const EvictionSummary& e) { return number(e.mass_max, kSci); })},
          {"eviction: dropped mass, mean", "", eviction_cell([](const EvictionSummary& e) { return number(e.mass_mean, kSci); })},
          {"eviction: |o - o'|, max", "", eviction_cell([](const EvictionSummary& e) { return number(e.error_max, kSci); })},
          {"eviction: bound 2 m max|v|, max", "", eviction_cell([](const EvictionSummary& e) { return number(e.bound_max, kSci); })},
          {"eviction: |o - o'| / bound, max", "", eviction_cell([](const EvictionSummary& e) { return number(e.ratio_max, kSci); })},
          {"eviction: bound held", "", eviction_cell([](const EvictionSummary& e) { return std::string(e.bound_held ? "yes" : "NO"); })},
          {"eviction: decision margin, min", "", eviction_cell([](const EvictionSummary& e) {
             return std::isfinite(e.margin_min) ? number(e.margin_min, kSci) : std::string("-");  // no scored choice (streaming)
           })},
          {"eviction: mean KLD, exact forward", "nats", eviction_cell([](const EvictionSummary& e) { return number(e.kld_mean, kSci); })}};
}

std::string where(int t, int j) { return "[" + std::to_string(t) + ", " + std::to_string(j) + "]"; }

}  // namespace

std::string format_error_budget_line(const ErrorBudget& b) {
  const double sum = b.weights.kld.value + b.kv.kld.value;
  return "mean KLD: weights only " + number(b.weights.kld.value, kSci) + " (" +
         number(100 * b.weights_share, kShare) + "%) + KV only " + number(b.kv.kld.value, kSci) + " (" +
         number(100 * b.kv_share, kShare) + "%) = " + number(sum, kSci) + "; both " +
         number(b.both.kld.value, kSci) + " (" + number(b.both_over_sum, "%.3f") + "x the sum)";
}

std::string format_quant_table(const QuantReport& report) {
  if (report.columns.empty()) throw std::invalid_argument("format_quant_table: no configuration");
  std::vector<Row> rows;
  const auto any = [&](auto has) { return std::any_of(report.columns.begin(), report.columns.end(), has); };
  if (any([](const QuantColumn& c) { return c.kv_bits_per_element.has_value(); }))
    rows.push_back({"KV bits per element", "bits", [](const QuantColumn& c) {
                      return c.kv_bits_per_element ? number(*c.kv_bits_per_element, "%.4g") : std::string("-");
                    }});
  for (Row& row : logit_rows()) rows.push_back(std::move(row));
  if (any([](const QuantColumn& c) { return !c.kv.empty(); }))
    for (Row& row : kv_rows()) rows.push_back(std::move(row));
  if (any([](const QuantColumn& c) { return c.budget.has_value(); }))
    for (Row& row : budget_rows()) rows.push_back(std::move(row));
  if (any([](const QuantColumn& c) { return c.eviction.has_value(); }))
    for (Row& row : eviction_rows()) rows.push_back(std::move(row));

  std::vector<std::vector<std::string>> cells = {{"statistic", "unit"}};
  std::vector<Align> align = {Align::left, Align::left};
  for (const QuantColumn& c : report.columns) {
    cells[0].push_back("kv " + c.label);
    align.push_back(Align::right);
  }
  for (const Row& row : rows) {
    std::vector<std::string> line = {row.statistic, row.unit};
    for (const QuantColumn& c : report.columns) line.push_back(row.cell(c));
    cells.push_back(std::move(line));
  }
  std::string out = "weights " + report.weights + ", " + std::to_string(report.columns.front().logits.positions) +
                    " predicted positions; base = the golden, test = the engine\n" + format_text_table(cells, align);
  for (const QuantColumn& c : report.columns)
    if (c.budget) out += "error budget, kv " + c.label + ": " + format_error_budget_line(*c.budget) + "\n";
  return out;
}

std::string format_kv_tables(const QuantColumn& column) {
  if (column.kv.empty()) return "";
  std::vector<std::vector<std::string>> round_trip = {
      {"layer", "kv head", "K RMSE", "K rel. RMSE", "K max |err|", "V RMSE", "V rel. RMSE", "V max |err|"}};
  std::vector<std::vector<std::string>> attention = {{"layer", "head", "kv head", "q·k rel. err mean",
                                                      "q·k rel. err max", "at [t, j]", "attn KL mean", "attn KL max",
                                                      "at t"}};
  for (std::size_t layer = 0; layer < column.kv.size(); ++layer) {
    const KvLayerError& e = column.kv[layer];
    for (std::size_t h = 0; h < e.k.size(); ++h)
      round_trip.push_back({std::to_string(layer), std::to_string(h), number(e.k[h].rmse, kSci),
                            number(e.k[h].relative_rmse(), kSci), number(e.k[h].max_abs, kSci),
                            number(e.v[h].rmse, kSci), number(e.v[h].relative_rmse(), kSci),
                            number(e.v[h].max_abs, kSci)});
    const int group = int(e.query_heads.size() / e.k.size());  // query heads per KV head
    for (std::size_t h = 0; h < e.query_heads.size(); ++h) {
      const KeyDistortion& d = e.query_heads[h];
      attention.push_back({std::to_string(layer), std::to_string(h), std::to_string(int(h) / group),
                           number(d.qk_mean, kSci), number(d.qk_max, kSci), where(d.qk_max_t, d.qk_max_j),
                           number(d.attention_kl_mean, kSci), number(d.attention_kl_max, kSci),
                           std::to_string(d.attention_kl_max_t)});
    }
  }
  const std::vector<Align> round_trip_align(8, Align::right);
  const std::vector<Align> attention_align(9, Align::right);
  return "KV round trip, kv " + column.label + ": the stored values against the golden's exact K and V\n" +
         format_text_table(round_trip, round_trip_align) + "\nAttention through the stored keys, kv " + column.label +
         ": the golden's queries with the stored keys against the golden's keys\n" +
         format_text_table(attention, attention_align);
}

std::string format_quant_report(const QuantReport& report) {
  std::string out = format_quant_table(report);
  for (const QuantColumn& c : report.columns)
    if (!c.kv.empty()) out += "\n" + format_kv_tables(c);
  return out;
}

}  // namespace kvfid::ref
