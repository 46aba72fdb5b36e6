#include "reference/metrics/report_lines.h"

#include <cmath>
#include <cstdio>

namespace kvfid::ref {

namespace {

std::string printf_string(const char* format, double v) {
  char buffer[64];
  std::snprintf(buffer, sizeof buffer, format, v);
  return buffer;
}

std::string relation_to_baseline(const ReportRow& row) {
  if (std::isnan(row.bound)) return "(no bound: the baseline's error is not finite)";
  if (row.baseline == 0) return "(the baseline is exact; the bound is the rounding floor)";
  const double ratio = row.value / row.baseline;
  return "(" + printf_string(ratio >= 100 ? "%.0f" : "%.3g", ratio) + "x the baseline)";
}

}  // namespace

std::string format_value(double v, int digits_after_point) {
  if (std::isnan(v)) return "-";
  char format[16];
  std::snprintf(format, sizeof format, "%%.%de", digits_after_point);
  return printf_string(format, v);
}

std::string describe_failure(const ReportRow& row) {
  return "FAIL " + row.tap + " " + row.metric + " " + format_value(row.value, 1) + " > bound " +
         format_value(row.bound, 1) + " " + relation_to_baseline(row);
}

std::string describe_finding(const GrossFinding& finding) {
  return std::string(finding.fails ? "FAIL " : "note ") + (finding.subject == "candidate" ? "" : finding.subject + " ") +
         finding.tap + " " + to_string(finding.kind) + ": " + finding.detail;
}

}  // namespace kvfid::ref
