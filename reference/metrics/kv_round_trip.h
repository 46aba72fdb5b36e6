#pragma once
// How far the K or V values a cache holds (its cold form, decoded) are from the
// golden's exact K or V, per KV head. What it measures is everything between the
// exact value and what a query reads back: the storage format's rounding plus any
// error the engine's value already had before it was stored (its arithmetic, and
// errors carried in from earlier layers). Compare with the unquantized configuration
// to see the storage's own part.
#include <span>
#include <vector>

#include "reference/metrics/attention_shape.h"

namespace kvfid::ref {

struct RoundTripError {
  double rmse = 0;        // sqrt(mean (stored - golden)^2) over the head's T * head_dim values
  double max_abs = 0;     // max |stored - golden|
  double rms_golden = 0;  // sqrt(mean golden^2): the scale to read rmse against

  // rmse / rms_golden; 0 when both are 0, +Inf when only the golden is all zero.
  double relative_rmse() const;
};

// golden, stored: one layer's K or V, [T, n_kv_heads, head_dim]. Returns [n_kv_heads].
// Throws std::invalid_argument when a size does not match the shape or a value is not
// finite.
std::vector<RoundTripError> round_trip_error_per_head(std::span<const double> golden, std::span<const double> stored,
                                                      const AttentionShape& shape);

}  // namespace kvfid::ref
