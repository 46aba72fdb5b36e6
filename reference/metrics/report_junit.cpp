#include "reference/metrics/report_junit.h"

#include "reference/metrics/report_lines.h"
#include "reference/util/xml_escape.h"

namespace kvfid::ref {

namespace {

std::string testcase(const std::string& classname, const std::string& name, const std::string& child) {
  std::string out = "    <testcase classname=\"" + xml_escape(classname) + "\" name=\"" + xml_escape(name) + "\"";
  return out + (child.empty() ? "/>\n" : ">\n      " + child + "\n    </testcase>\n");
}

}  // namespace

std::string report_to_junit(const FidelityReport& report, const std::string& suite_name) {
  std::string cases;
  int skipped = 0;
  for (const auto& f : report.findings) {
    const std::string name = (f.subject == "candidate" ? "" : f.subject + ".") + to_string(f.kind);
    const std::string message = xml_escape(describe_finding(f));
    skipped += !f.fails;
    cases += testcase(f.tap, name,
                      f.fails ? "<failure type=\"gross\" message=\"" + message + "\"/>"
                              : "<skipped message=\"" + message + "\"/>");
  }
  for (const auto& r : report.rows)
    cases += testcase(r.tap, r.metric,
                      r.pass ? "" : "<failure type=\"gate\" message=\"" + xml_escape(describe_failure(r)) + "\"/>");
  const std::string counts = " tests=\"" + std::to_string(report.findings.size() + report.rows.size()) +
                             "\" failures=\"" + std::to_string(report.failures()) + "\" errors=\"0\" skipped=\"" +
                             std::to_string(skipped) + "\"";
  return "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n<testsuites name=\"kvfid\"" + counts + ">\n  <testsuite name=\"" +
         xml_escape(suite_name) + "\"" + counts + ">\n" + cases + "  </testsuite>\n</testsuites>\n";
}

}  // namespace kvfid::ref
