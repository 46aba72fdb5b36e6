#pragma once
// The quantization report for a person at a terminal. Each row of a table has one
// number format across its columns (fixed digits after the point, or scientific with
// a fixed mantissa, signed where the value can be negative), so configurations read
// straight across; "-" marks a value that does not exist (a standard error from one
// position, a share of a zero total).
#include <string>

#include "reference/metrics/quant_report.h"

namespace kvfid::ref {

// One column per KV configuration: the logit statistics in llama.cpp's order, then the
// KV summary (when any column has KV errors) and the error budget (when any has one),
// then one error-budget line per column that has one. Throws std::invalid_argument
// when there is no column.
std::string format_quant_table(const QuantReport& report);

// One configuration's per-layer tables: K/V round trip per KV head, then q·k distortion
// and attention KL per query head. Empty when the column has no KV errors.
std::string format_kv_tables(const QuantColumn& column);

// "mean KLD: weights only 1.2340e-03 (31.2%) + KV only 2.7160e-03 (68.8%) = 3.9500e-03;
//  both 4.0120e-03 (1.016x the sum)"
std::string format_error_budget_line(const ErrorBudget& budget);

// format_quant_table, then format_kv_tables of every column.
std::string format_quant_report(const QuantReport& report);

}  // namespace kvfid::ref
