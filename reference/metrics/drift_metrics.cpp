#include "reference/metrics/drift_metrics.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>

#include "reference/metrics/logit_metrics.h"

namespace kvfid::ref {

NextTokenDrift next_token_drift(const double* golden, const double* candidate, std::size_t vocab) {
  NextTokenDrift d;
  d.kl = kl_divergence_of_logits(golden, candidate, vocab);
  for (std::size_t i = 0; i < vocab; ++i)
    d.max_abs_logit_error = std::max(d.max_abs_logit_error, std::fabs(candidate[i] - golden[i]));
  d.golden_top1 = int(argmax(golden, vocab));
  d.candidate_top1 = int(argmax(candidate, vocab));
  return d;
}

std::optional<std::size_t> first_bit_difference(std::span<const float> a, std::span<const float> b) {
  const std::size_t common = std::min(a.size(), b.size());
  for (std::size_t i = 0; i < common; ++i)
    if (std::bit_cast<std::uint32_t>(a[i]) != std::bit_cast<std::uint32_t>(b[i])) return i;
  if (a.size() != b.size()) return common;
  return std::nullopt;
}

}  // namespace kvfid::ref
