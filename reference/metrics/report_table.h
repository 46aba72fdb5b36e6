#pragma once
// The report for a person at a terminal: gross findings, an aligned table of every
// row, one line per failure, and the verdict.
#include <string>

#include "reference/metrics/fidelity_report.h"

namespace kvfid::ref {

std::string format_report_table(const FidelityReport& report);

}  // namespace kvfid::ref
