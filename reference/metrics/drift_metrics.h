#pragma once
// How far one position's next-token distribution drifts from the golden's: the
// per-position quantities `kvfid drift` records along a long sequence, and the
// bitwise comparison behind its invariance verdict (cached decode = recompute).
#include <cstddef>
#include <optional>
#include <span>

namespace kvfid::ref {

struct NextTokenDrift {
  double kl = 0;                   // KL(softmax(golden) || softmax(candidate)), nats
  double max_abs_logit_error = 0;  // max over the vocabulary of |candidate - golden|
  int golden_top1 = 0;             // argmax of the golden's logits (first index on ties)
  int candidate_top1 = 0;          // argmax of the candidate's logits (first index on ties)

  bool top1_agrees() const { return golden_top1 == candidate_top1; }
};

// One position's logits, `vocab` values each, all finite (the gross checks come first).
NextTokenDrift next_token_drift(const double* golden, const double* candidate, std::size_t vocab);

// The first index at which `a` and `b` differ in any bit (so +0 and -0 differ, and a NaN
// equals only the same NaN); the shorter length when one is a prefix of the other;
// nullopt when they are bitwise equal.
std::optional<std::size_t> first_bit_difference(std::span<const float> a, std::span<const float> b);

}  // namespace kvfid::ref
