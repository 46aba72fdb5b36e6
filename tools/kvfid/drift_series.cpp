#include "tools/kvfid/drift_series.h"

#include <algorithm>
#include <cmath>
#include <limits>

namespace kvfid::cli::drift {

NextTokenDrift position_drift(const GoldenSeries& golden, int t, const double* candidate, int vocab, bool& non_finite) {
  non_finite = false;
  for (int i = 0; i < vocab; ++i) non_finite = non_finite || !std::isfinite(candidate[i]);
  if (non_finite) {
    constexpr double nan = std::numeric_limits<double>::quiet_NaN();
    const double* g = golden.logits.data() + std::size_t(t) * vocab;  // [vocab]
    return {nan, nan, int(std::max_element(g, g + vocab) - g), -1};
  }
  return next_token_drift(golden.logits.data() + std::size_t(t) * vocab, candidate, std::size_t(vocab));
}

}  // namespace kvfid::cli::drift
