#pragma once
// The report as JUnit XML for CI dashboards: one testsuite, one testcase per tap and
// metric (and per gross finding), a <failure> where the gate or a gross check failed.
#include <string>
#include <string_view>

#include "reference/metrics/fidelity_report.h"

namespace kvfid {

// Text safe inside XML 1.0 content and quoted attributes: & < > " ' become entities;
// control characters XML 1.0 cannot carry at all become U+FFFD.
std::string xml_escape(std::string_view text);

std::string report_to_junit(const FidelityReport& report, const std::string& suite_name);

}  // namespace kvfid
