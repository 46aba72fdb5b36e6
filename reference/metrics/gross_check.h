#pragma once
// Gross failures, checked before any error metric: a tap that is missing, has the
// wrong shape, holds NaN or Inf, or is all zero where the golden is not. Such a tap
// has no meaningful error to measure, so it is reported on its own and not measured.
#include <string>
#include <vector>

#include "reference/golden/taps.h"

namespace kvfid::ref {

enum class GrossKind { missing, shape_mismatch, non_finite, all_zero };

std::string to_string(GrossKind kind);  // "missing", "shape", "nan_inf", "all_zero"

struct GrossFinding {
  std::string subject;  // "candidate" or "baseline": whose tap it is
  std::string tap;
  GrossKind kind;
  std::string detail;  // one line, e.g. "3 NaN and 1 Inf among 4096 values, first at [0, 5]"
  bool fails;          // true: the report fails; false: reported only
};

// The findings for one tap of `subject` (nullptr: absent) against its golden; empty
// when the tap can be measured value by value. A missing logits tap fails (nothing
// can be judged without it); a missing intermediate tap is only reported, since an
// engine may dump logits alone.
std::vector<GrossFinding> gross_check_tap(const std::string& subject, const TapTensor& golden,
                                          const TapTensor* tap);

}  // namespace kvfid::ref
