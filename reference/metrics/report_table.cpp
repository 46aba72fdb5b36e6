#include "reference/metrics/report_table.h"

#include <algorithm>
#include <array>
#include <vector>

#include "reference/metrics/report_lines.h"

namespace kvfid::ref {

namespace {

using Line = std::array<std::string, 6>;  // tap, metric, value, baseline, bound, pass

Line table_line(const ReportRow& row) {
  const std::string value = format_value(row.value) + (row.unit.empty() ? "" : " " + row.unit) +
                            (row.where.empty() ? "" : " at " + row.where);
  return {row.tap, row.metric, value, format_value(row.baseline), format_value(row.bound),
          !row.gated ? "-" : row.pass ? "pass" : "FAIL"};
}

}  // namespace

std::string format_report_table(const FidelityReport& report) {
  std::string out;
  if (!report.findings.empty()) {
    out += "gross checks:\n";
    for (const auto& f : report.findings) out += "  " + describe_finding(f) + "\n";
    out += "\n";
  }
  std::vector<Line> lines = {{"tap", "metric", "value", "baseline", "bound", "pass"}};
  for (const auto& row : report.rows) lines.push_back(table_line(row));
  std::array<std::size_t, 6> width{};
  for (const auto& line : lines)
    for (std::size_t c = 0; c < line.size(); ++c) width[c] = std::max(width[c], line[c].size());
  for (const auto& line : lines) {
    std::string text;
    for (std::size_t c = 0; c < line.size(); ++c)
      text += line[c] + (c + 1 < line.size() ? std::string(width[c] - line[c].size() + 2, ' ') : "");
    out += text + "\n";
  }
  std::vector<std::string> failures;
  for (const auto& row : report.rows)
    if (!row.pass) failures.push_back(describe_failure(row));
  if (!failures.empty()) out += "\n";
  for (const auto& f : failures) out += f + "\n";
  const int failed = report.failures();
  out += "\noverall: " + std::string(failed ? "FAIL" : "PASS") + " (" + std::to_string(report.rows.size()) +
         " rows, " + std::to_string(report.findings.size()) + " gross findings, " + std::to_string(failed) +
         " failing)\n";
  return out;
}

}  // namespace kvfid::ref
