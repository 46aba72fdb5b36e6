#pragma once
// The report as JUnit XML for CI dashboards: one testsuite, one testcase per tap and
// metric (and per gross finding), a <failure> where the gate or a gross check failed.
#include <string>

#include "reference/metrics/fidelity_report.h"

namespace kvfid::ref {

std::string report_to_junit(const FidelityReport& report, const std::string& suite_name);

}  // namespace kvfid::ref
