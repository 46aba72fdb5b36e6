#pragma once
// What logit errors do to the next-token distribution: softmax per position, the
// golden's and the candidate's, compared as distributions.
#include <cstddef>
#include <cstdint>

#include "reference/golden/taps.h"

namespace kvfid::ref {

struct LogitMetrics {
  double kl_mean = 0;               // mean over positions of KL(golden || candidate), nats
  double kl_max = 0;                // max over positions
  std::int64_t kl_max_position = 0;
  double top1_agreement = 1;        // fraction of positions whose argmax agrees (first index on ties)
  double max_dp = 0;                // max |p_golden - p_candidate| over positions and vocab
  std::int64_t max_dp_at = 0;       // flat index [position, token]
};

// The top-1 index of a row of n values: the first largest, so a tie goes to the lowest
// index (every top-1 comparison of kvfid reads it so).
std::size_t argmax(const double* v, std::size_t n);

// KL(softmax(golden) || softmax(candidate)) for one position of n logits, in nats.
double kl_divergence_of_logits(const double* golden, const double* candidate, std::size_t n);

// Logits taps are [T, vocab], same shape, all finite (the gross checks come first);
// throws std::invalid_argument otherwise.
LogitMetrics logit_metrics(const TapTensor& golden, const TapTensor& candidate);

}  // namespace kvfid::ref
