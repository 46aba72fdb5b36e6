#include <algorithm>
#include <cmath>
#include <cstdio>
#include <sstream>
#include <stdexcept>
#include <string>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/metrics/quant_report_json.h"
#include "reference/metrics/quant_report_table.h"
#include "reference/metrics/text_table.h"

namespace kvfid::ref {
namespace {

// Column "f16": the two-token case of logit_statistics_test (KL at one of two
// positions, a NaN correlation), one layer with the hand-made key error of
// key_distortion_test, and a budget. Column "int4_32": a larger error, nothing else.
QuantReport fixture() {
  const double ln3 = std::log(3.0);
  const std::vector<double> base = {0, 0, 0, 0, 0, 0};
  const std::vector<double> small = {0, 0, 0, ln3, 0, 0};
  const std::vector<double> large = {0, 2, 0, 3 * ln3, 0, 0};
  const std::vector<int> tokens = {1, 0, 1};
  const AttentionShape shape{2, 1, 1, 2};
  const std::vector<double> q = {1, 0, 0, 2}, k = {1, 0, 0, 1}, stored = {1, 0.5, 0, 1};

  QuantReport report;
  report.weights = "q8_0";
  QuantColumn f16{"f16", logit_statistics(base, small, 2, tokens), {kv_layer_error(q, k, k, {stored}, k, shape)}, {}, {}, {}};
  f16.budget = error_budget(logit_statistics(base, small, 2, tokens), logit_statistics(base, small, 2, tokens),
                            logit_statistics(base, large, 2, tokens));
  report.columns.push_back(f16);
  report.columns.push_back({"int4_32", logit_statistics(base, large, 2, tokens), {}, {}, {}, {}});
  return report;
}

std::vector<std::string> lines_of(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

std::string printf_string(const char* format, double a, double b) {
  char buffer[128];
  std::snprintf(buffer, sizeof buffer, format, a, b);
  return buffer;
}

// An evicting column adds the eviction rows after the others ("-" in the other columns),
// and its summary to the JSON; a violated bound reads NO.
TEST(QuantReportTable, EvictionRowsComeWithAnEvictingColumn) {
  QuantReport report = fixture();
  EXPECT_EQ(format_quant_table(report).find("eviction:"), std::string::npos);
  EvictionSummary e;
  e.kept_fraction = 0.25, e.mass_max = 0.5, e.bound_held = false, e.margin_min = 0.125;
  report.columns[1].eviction = e;
  const std::string table = format_quant_table(report);
  for (const char* row : {"eviction: keys read", "eviction: dropped mass, max", "eviction: |o - o'| / bound, max",
                          "eviction: bound held", "eviction: decision margin, min", "eviction: mean KLD, exact forward"})
    EXPECT_NE(table.find(row), std::string::npos) << row;
  const std::vector<std::string> lines = lines_of(table);
  const auto held = std::find_if(lines.begin(), lines.end(), [](const std::string& l) { return l.rfind("eviction: bound held", 0) == 0; });
  ASSERT_NE(held, lines.end());
  EXPECT_EQ(held->substr(held->size() - 2), "NO");
  EXPECT_NE(held->find(" - "), std::string::npos);  // the f16 column has no eviction
  const nlohmann::json j = quant_report_to_json(report, "quant", {}, {});
  EXPECT_TRUE(j["columns"][0]["eviction"].is_null());
  EXPECT_EQ(j["columns"][1]["eviction"]["kept_fraction"], 0.25);
  EXPECT_EQ(j["columns"][1]["eviction"]["bound_held"], false);
}

TEST(TextTable, AlignsByCodePointsNotBytes) {
  EXPECT_EQ(display_width("Δp"), 2u);
  EXPECT_EQ(display_width("q·k ±"), 5u);
  const std::string table = format_text_table({{"a", "Δp"}, {"Δp x", "1"}}, {Align::left, Align::right});
  EXPECT_EQ(table, "a     Δp\nΔp x   1\n");
  EXPECT_THROW(format_text_table({{"a", "b"}, {"c"}}, {Align::left, Align::left}), std::invalid_argument);
}

TEST(QuantReportTable, OneRowPerStatisticInLlamaCppsOrderWithColumnsAligned) {
  const QuantReport report = fixture();
  const std::vector<std::string> lines = lines_of(format_quant_table(report));
  // Title, header, the rows, then one budget line (only f16 has a budget).
  const std::vector<std::string> statistics = {
      "PPL(test)", "PPL(base)", "Cor(ln PPL(test), ln PPL(base))", "ln(PPL(test)/PPL(base))", "PPL(test)/PPL(base)",
      "PPL(test)-PPL(base)", "Mean KLD", "Maximum KLD", "99.9% KLD", "99.0% KLD", "95.0% KLD", "90.0% KLD",
      "Median KLD", "10.0% KLD", "5.0% KLD", "1.0% KLD", "0.1% KLD", "Minimum KLD", "Mean Δp", "Maximum Δp",
      "99.9% Δp", "99.0% Δp", "95.0% Δp", "90.0% Δp", "75.0% Δp", "Median Δp", "25.0% Δp", "10.0% Δp", "5.0% Δp",
      "1.0% Δp", "0.1% Δp", "Minimum Δp", "RMS Δp", "Same top p", "K relative RMSE, max", "V relative RMSE, max",
      "q·k relative error, mean", "q·k relative error, max", "attention KL, mean", "attention KL, max",
      "budget: mean KLD, weights only", "budget: mean KLD, KV only", "budget: mean KLD, both",
      "budget: weights share", "budget: KV share", "budget: both / (weights + KV)"};
  ASSERT_EQ(lines.size(), 2 + statistics.size() + 1);
  EXPECT_EQ(lines[0], "weights q8_0, 2 predicted positions; base = the golden, test = the engine");
  EXPECT_EQ(lines[1].rfind("statistic", 0), 0u);
  EXPECT_NE(lines[1].find("kv f16"), std::string::npos);
  EXPECT_NE(lines[1].find("kv int4_32"), std::string::npos);
  // Right-aligned last column: every line of the table ends at the same width.
  for (std::size_t i = 0; i < statistics.size(); ++i) {
    const std::string& line = lines[2 + i];
    EXPECT_EQ(line.rfind(statistics[i] + " ", 0), 0u) << line;
    EXPECT_EQ(display_width(line), display_width(lines[1])) << line;
  }
  EXPECT_EQ(lines.back().rfind("error budget, kv f16: mean KLD: weights only ", 0), 0u) << lines.back();
}

TEST(QuantReportTable, CellsCarryTheValuesInTheirRowsFormat) {
  const QuantReport report = fixture();
  const std::string table = format_quant_table(report);
  const LogitStatistics& a = report.columns[0].logits;
  const LogitStatistics& b = report.columns[1].logits;
  const std::string kld_a = printf_string("%.4e ± %.2e", a.kld.value, a.kld.standard_error);
  const std::string kld_b = printf_string("%.4e ± %.2e", b.kld.value, b.kld.standard_error);
  std::string mean_kld_line, cor_line, k_line;
  for (const std::string& line : lines_of(table)) {
    if (line.rfind("Mean KLD", 0) == 0) mean_kld_line = line;
    if (line.rfind("Cor(", 0) == 0) cor_line = line;
    if (line.rfind("K relative RMSE", 0) == 0) k_line = line;
  }
  EXPECT_NE(mean_kld_line.find(kld_a + "  "), std::string::npos) << mean_kld_line;
  EXPECT_EQ(mean_kld_line.substr(mean_kld_line.size() - kld_b.size()), kld_b) << mean_kld_line;
  // No correlation exists (the base's nll is constant): "-" in both columns.
  EXPECT_EQ(cor_line.substr(cor_line.size() - 1), "-");
  // int4_32 has no KV errors: "-"; f16's K relative RMSE is that of its one head.
  EXPECT_EQ(k_line.substr(k_line.size() - 1), "-");
  char k_relative[32];
  std::snprintf(k_relative, sizeof k_relative, "%.4e", report.columns[0].kv[0].k[0].relative_rmse());
  EXPECT_NE(k_line.find(k_relative), std::string::npos) << k_line;
  EXPECT_THROW(format_quant_table(QuantReport{}), std::invalid_argument);
}

TEST(QuantReportTable, KvTablesHaveOneRowPerHead) {
  const QuantReport report = fixture();
  const std::string tables = format_kv_tables(report.columns[0]);
  const std::vector<std::string> lines = lines_of(tables);
  // Title, header, one KV head; blank; title, header, one query head.
  ASSERT_EQ(lines.size(), 7u) << tables;
  EXPECT_EQ(lines[0].rfind("KV round trip, kv f16", 0), 0u);
  EXPECT_EQ(lines[4].rfind("Attention through the stored keys, kv f16", 0), 0u);
  EXPECT_NE(lines[6].find("[1, 0]"), std::string::npos) << lines[6];  // where q·k is worst
  EXPECT_EQ(display_width(lines[2]), display_width(lines[1]));
  EXPECT_EQ(display_width(lines[6]), display_width(lines[5]));
  EXPECT_EQ(format_kv_tables(report.columns[1]), "");
  const std::string all = format_quant_report(report);
  EXPECT_NE(all.find(tables), std::string::npos);
}

TEST(QuantReportJson, ParsesBackWithEveryColumnAndNullsForMissingValues) {
  const QuantReport report = fixture();
  const nlohmann::json options = {{"kv", "f16,int4_32"}};
  const std::string text = quant_report_to_json(report, "quant", options, {{"model", "m.bin"}}).dump(2);
  const nlohmann::json back = nlohmann::json::parse(text);
  EXPECT_EQ(back.at("command"), "quant");
  EXPECT_EQ(back.at("weights"), "q8_0");
  EXPECT_EQ(back.at("options").at("kv"), "f16,int4_32");
  EXPECT_EQ(back.at("golden").at("model"), "m.bin");
  ASSERT_EQ(back.at("columns").size(), 2u);
  const nlohmann::json& f16 = back.at("columns")[0];
  const LogitStatistics& a = report.columns[0].logits;
  EXPECT_EQ(f16.at("label"), "f16");
  EXPECT_EQ(f16.at("logits").at("kld").at("value").get<double>(), a.kld.value);
  EXPECT_EQ(f16.at("logits").at("dp_rms").at("standard_error").get<double>(), a.dp_rms.standard_error);
  EXPECT_TRUE(f16.at("logits").at("ln_ppl_correlation").is_null());
  ASSERT_EQ(f16.at("logits").at("kld_percentiles").size(), kKldPercentileLevels.size());
  EXPECT_EQ(f16.at("logits").at("kld_percentiles")[4].at("level").get<double>(), 50.0);
  EXPECT_EQ(f16.at("logits").at("per_position").at("kld").size(), 2u);
  EXPECT_EQ(f16.at("logits").at("per_position").at("same_top"), nlohmann::json({true, false}));
  EXPECT_EQ(f16.at("kv").at("layers")[0].at("query_heads")[0].at("qk_max_at"), nlohmann::json({1, 0}));
  EXPECT_EQ(f16.at("kv").at("summary").at("qk_max").get<double>(), 0.5);
  EXPECT_EQ(f16.at("budget").at("weights_share").get<double>(), report.columns[0].budget->weights_share);
  const nlohmann::json& int4 = back.at("columns")[1];
  EXPECT_TRUE(int4.at("kv").is_null());
  EXPECT_TRUE(int4.at("budget").is_null());
}

}  // namespace
}  // namespace kvfid::ref
