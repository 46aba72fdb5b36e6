#pragma once
// A candidate's taps judged against the golden, with the baseline setting each bound:
// gross findings first, then one row per tap and metric.
#include <optional>
#include <string>
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/metrics/gross_check.h"

namespace kvfid::ref {

struct ReportRow {
  std::string tap;
  std::string metric;  // max_abs, sqrt_nmse, max_ulps, kl_mean, kl_max, top1_agreement, max_dp
  double value = 0;
  double baseline = 0;  // the same metric of the baseline against the golden
  double bound = 0;     // NaN for reported-only rows
  bool gated = false;
  bool pass = true;     // value <= bound; always true for reported-only rows
  std::string where;    // e.g. "[3, 0, 7]" for a max over values, "[5]" for a position; else empty
  std::string unit;     // e.g. "ULP f16", "nats"; empty for plain values
};

struct FidelityReport {
  std::vector<GrossFinding> findings;
  std::vector<ReportRow> rows;

  bool pass() const;    // no failing finding and no failing row
  int failures() const; // failing findings + failing rows
};

struct ReportOptions {
  FloatFormat kv_format = FloatFormat::f32;   // k and v taps count ULPs in the KV storage format
  // The bounds' rounding floors are ULPs of the arithmetic, never of a storage format:
  // the baseline already stores weights and K/V exactly as the engine does, so storage
  // rounding is inside the baseline's error and only the arithmetic's own last
  // roundings need a floor. (A floor in BF16 ULPs would let a K tap be 8x the baseline.)
  FloatFormat arithmetic = FloatFormat::f32;
  // The cache's policy: the k and v taps' value bounds are also held above one storage
  // step of their format (kv_storage_floor.h). Empty: no such floor.
  std::optional<quant::KvPolicy> kv_policy = std::nullopt;
};

// Every golden tap, in the golden's order. The baseline is produced by kvfid itself, so
// any gross finding in it (even a missing intermediate tap) fails: it leaves a bound
// undefined.
FidelityReport build_fidelity_report(const TapSet& golden, const TapSet& candidate, const TapSet& baseline,
                                     const ReportOptions& options);

}  // namespace kvfid::ref
