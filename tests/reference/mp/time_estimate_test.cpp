#include "reference/mp/time_estimate.h"

#include <gtest/gtest.h>

#include "reference/synth/synthetic_shapes.h"

namespace kvfid::ref {
namespace {

// The work counted from the config: every matrix element (the classifier's, once, and
// not the embedding lookup) times every token, and T (T + 1) / 2 query-key pairs per layer
// and head, head_dim products each for q.k and p.v.
TEST(TimeEstimate, CountsTheWorkOfTheShape) {
  ModelConfig c;
  c.vocab = 10, c.dim = 4, c.n_layers = 2, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 2, c.hidden = 6;
  const GoldenWork w = golden_work(c, 3);
  const double per_layer = 4.0 * (4 + 2 * 2) + 4 * 4 + 3 * 4 * 6;  // wq+wk+wv, wo, w1+w2+w3
  EXPECT_EQ(w.weight_tokens, (2 * per_layer + 10 * 4) * 3);
  EXPECT_EQ(w.attention_macs, 2.0 * 2 * 2 * 2 * 6);  // layers x heads x (q.k, p.v) x head_dim x 6 pairs
  EXPECT_DOUBLE_EQ(w.cpu_seconds, w.weight_tokens * kGoldenCpuSecondsPerWeightToken +
                                      w.attention_macs * kGoldenCpuSecondsPerAttentionMac);
}

// Against the measured whole golden the rates come from (README): the Qwen2.5-0.5B shape
// over 128 tokens with every tap took 1,217 CPU seconds.
TEST(TimeEstimate, PredictsTheMeasuredHalfBillionGolden) {
  const GoldenWork w = golden_work(synthetic_shape("qwen2.5-0.5b"), 128);
  constexpr double kMeasuredCpuSeconds = 1217;
  constexpr double kWithin = 0.10;  // the rates come from one kernel benchmark, rounded to 3 digits
  EXPECT_NEAR(w.cpu_seconds, kMeasuredCpuSeconds, kWithin * kMeasuredCpuSeconds);
  EXPECT_LT(w.attention_macs * kGoldenCpuSecondsPerAttentionMac, 0.02 * w.cpu_seconds);  // weights dominate at 128 tokens
}

}  // namespace
}  // namespace kvfid::ref
