#include <cmath>
#include <regex>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>
#include <nlohmann/json.hpp>

#include "reference/metrics/report_json.h"
#include "reference/metrics/report_junit.h"
#include "reference/metrics/report_table.h"
#include "tests/reference/metrics/tap_builders.h"

namespace kvfid::ref {
namespace {

using test::make_tap;

// Golden with logits and two layer taps; the candidate fails the gate on layers.0.out,
// misses layers.0.q (reported only) and has an odd-named extra golden tap with a NaN.
struct Fixture {
  TapSet golden, candidate, baseline;
  FidelityReport report;
};

Fixture failing_fixture() {
  Fixture f;
  const TapTensor logits = make_tap("logits", {2, 3}, {1, 2, 3, 3, 2, 1});
  const TapTensor out = make_tap("layers.0.out", {2}, {1.0, -1.0});
  const TapTensor q = make_tap("layers.0.q", {1}, {0.5});
  const TapTensor odd = make_tap("odd<&\"'>\x01", {1}, {2.0});
  f.golden = {logits, out, q, odd};
  f.baseline = {test::perturbed(logits, {1, -1}, 1e-6), test::perturbed(out, {1}, 1e-6), q, odd};
  f.candidate = {test::perturbed(logits, {1, -1}, 1e-6), test::perturbed(out, {1}, 1e-2),
                 make_tap(odd.name, {1}, {std::nan("")})};
  f.report = build_fidelity_report(f.golden, f.candidate, f.baseline, {});
  return f;
}

std::size_t count(const std::string& text, const std::string& what) {
  std::size_t n = 0;
  for (auto at = text.find(what); at != std::string::npos; at = text.find(what, at + 1)) ++n;
  return n;
}

// Well-formed for what we emit: one root, balanced tags, attribute values quoted,
// every '&' starting an entity, no raw '<' or control character inside text.
void expect_well_formed_xml(const std::string& xml) {
  std::vector<std::string> open;
  int roots = 0;
  for (std::size_t i = 0; i < xml.size(); ++i) {
    const unsigned char c = xml[i];
    ASSERT_FALSE(c < 0x20 && c != '\n' && c != '\t' && c != '\r') << "control character at " << i;
    if (c == '&') {
      const auto semicolon = xml.find(';', i);
      ASSERT_NE(semicolon, std::string::npos);
      const std::string entity = xml.substr(i, semicolon - i + 1);
      ASSERT_TRUE(entity == "&amp;" || entity == "&lt;" || entity == "&gt;" || entity == "&quot;" || entity == "&apos;")
          << entity;
    }
    if (c != '<') continue;
    const auto close = xml.find('>', i);
    ASSERT_NE(close, std::string::npos);
    std::string tag = xml.substr(i + 1, close - i - 1);
    ASSERT_EQ(tag.find('<'), std::string::npos) << tag;
    ASSERT_EQ(count(tag, "\"") % 2, 0u) << tag;
    i = close;
    if (tag[0] == '?') continue;
    if (tag[0] == '/') {
      ASSERT_FALSE(open.empty());
      ASSERT_EQ(open.back(), tag.substr(1));
      open.pop_back();
      continue;
    }
    const std::string name = tag.substr(0, tag.find_first_of(" /"));
    if (open.empty()) ++roots;
    if (tag.back() != '/') open.push_back(name);
  }
  EXPECT_TRUE(open.empty());
  EXPECT_EQ(roots, 1);
}

TEST(ReportOutput, FixtureHasTheIntendedVerdicts) {
  const Fixture f = failing_fixture();
  EXPECT_FALSE(f.report.pass());
  // layers.0.out: max_abs and sqrt_nmse over the bound; odd tap: NaN; layers.0.q missing (not failing).
  EXPECT_EQ(f.report.failures(), 3);
  EXPECT_EQ(f.report.findings.size(), 2u);
}

TEST(ReportOutput, GoldenSummaryCopiesOnlyTheNamedScalarsOfTheManifest) {
  // A manifest is user input: a 201 KB one copied whole into compare --json's report
  // (and indented at every level by dump(2)) once took 4.2 GB.
  nlohmann::json deep = 1;
  for (int i = 0; i < 60; ++i) deep = nlohmann::json::array({deep});
  const nlohmann::json manifest = {
      {"model", "m.bin"},
      {"model_sha256", "abc"},
      {"precision_bits", 128},
      {"tokens", {1, 2, 3}},
      {"padding", deep},
      {"taps", deep},
      {"config", {{"dim", 64}, {"nested", deep}}},
      {"certification", {{"min_margin_bits", 59}, {"method", "m"}, {"extra", {1, 2}}}}};
  const nlohmann::json expected = {{"model", "m.bin"},
                                   {"model_sha256", "abc"},
                                   {"precision_bits", 128},
                                   {"n_tokens", 3},
                                   {"config", {{"dim", 64}}},
                                   {"certification", {{"min_margin_bits", 59}, {"method", "m"}}}};
  EXPECT_EQ(golden_manifest_summary(manifest), expected);
  EXPECT_EQ(golden_manifest_summary(deep), nlohmann::json::object());
}

TEST(ReportOutput, JsonParsesBackWithEveryRowAndTheVerdict) {
  const Fixture f = failing_fixture();
  const nlohmann::json manifest = {{"model", "m.bin"}, {"model_sha256", "abc"}, {"tokens", {1, 2}}};
  const nlohmann::json options = {{"kv", "f16"}};
  const std::string text = report_to_json(f.report, "compare", options, golden_manifest_summary(manifest)).dump(2);
  const nlohmann::json back = nlohmann::json::parse(text);
  EXPECT_EQ(back.at("pass"), false);
  EXPECT_EQ(back.at("failures"), 3);
  EXPECT_EQ(back.at("command"), "compare");
  EXPECT_EQ(back.at("options").at("kv"), "f16");
  EXPECT_EQ(back.at("golden").at("model_sha256"), "abc");
  EXPECT_EQ(back.at("golden").at("n_tokens"), 2);
  EXPECT_FALSE(back.at("golden").contains("tokens"));
  ASSERT_EQ(back.at("rows").size(), f.report.rows.size());
  ASSERT_EQ(back.at("findings").size(), f.report.findings.size());
  for (std::size_t i = 0; i < f.report.rows.size(); ++i) {
    const auto& row = back.at("rows")[i];
    EXPECT_EQ(row.at("tap"), f.report.rows[i].tap);
    EXPECT_EQ(row.at("metric"), f.report.rows[i].metric);
    EXPECT_EQ(row.at("pass"), f.report.rows[i].pass);
    EXPECT_EQ(row.at("value").get<double>(), f.report.rows[i].value);
    // Reported-only rows have no bound: null, not a number.
    EXPECT_EQ(row.at("bound").is_null(), !f.report.rows[i].gated);
  }
  EXPECT_EQ(back.at("findings")[1].at("tap"), "odd<&\"'>\x01");
}

TEST(ReportOutput, JunitHasOneTestcasePerRowAndFindingAndOneFailurePerFailure) {
  const Fixture f = failing_fixture();
  const std::string xml = report_to_junit(f.report, "kvfid.compare");
  expect_well_formed_xml(xml);
  const std::size_t cases = f.report.rows.size() + f.report.findings.size();
  EXPECT_EQ(count(xml, "<testcase "), cases);
  EXPECT_EQ(count(xml, "<failure "), 3u);
  EXPECT_EQ(count(xml, "<skipped "), 1u);
  EXPECT_EQ(count(xml, "<testsuite "), 1u);
  EXPECT_EQ(count(xml, " tests=\"" + std::to_string(cases) + "\" failures=\"3\""), 2u);  // suites and suite
  EXPECT_NE(xml.find("classname=\"odd&lt;&amp;&quot;&apos;&gt;\xEF\xBF\xBD\""), std::string::npos);
}

TEST(ReportOutput, TableAlignsColumnsAndPrintsOneLinePerFailure) {
  const Fixture f = failing_fixture();
  const std::string table = format_report_table(f.report);
  std::istringstream in(table);
  std::string line;
  std::size_t metric_column = std::string::npos;
  int table_lines = 0;
  while (std::getline(in, line)) {
    if (line.rfind("tap ", 0) == 0) metric_column = line.find("metric");
    const bool row_line = line.rfind("logits ", 0) == 0 || line.rfind("layers.0.out ", 0) == 0;
    if (!row_line) continue;
    ++table_lines;
    ASSERT_NE(metric_column, std::string::npos);
    EXPECT_EQ(line[metric_column - 1], ' ') << line;
    EXPECT_NE(line[metric_column], ' ') << line;
  }
  EXPECT_EQ(table_lines, int(f.report.rows.size()));
  const std::regex failure_line(
      R"(\nFAIL layers\.0\.out max_abs \d\.\de-\d\d > bound \d\.\de-\d\d \(\d+x the baseline\)\n)");
  EXPECT_TRUE(std::regex_search(table, failure_line)) << table;
  EXPECT_NE(table.find("note layers.0.q missing"), std::string::npos) << table;
  EXPECT_NE(table.find("overall: FAIL"), std::string::npos);
}

}  // namespace
}  // namespace kvfid::ref
