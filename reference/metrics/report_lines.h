#pragma once
// One-line descriptions of report entries, shared by the table, the failure list and
// the JUnit messages so they always read the same.
#include <string>

#include "reference/metrics/fidelity_report.h"

namespace kvfid::ref {

// "3.142e-02", or "-" for NaN (no value).
std::string format_value(double v, int digits_after_point = 3);

// "FAIL layers.1.attn.out max_abs 3.1e-02 > bound 4.2e-06 (7400x the baseline)"
std::string describe_failure(const ReportRow& row);

// "FAIL layers.0.q nan_inf: 3 NaN and 0 Inf among 96 values, first at [0, 1, 2]",
// "note layers.0.k missing: tap absent; not compared"; baseline findings say so.
std::string describe_finding(const GrossFinding& finding);

}  // namespace kvfid::ref
