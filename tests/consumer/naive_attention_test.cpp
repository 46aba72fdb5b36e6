// Another engine's test of its own attention kernel, gated by kvfid: the kernel (naive,
// float32 arithmetic, written here) passes against the exact output in f32 and in a
// mixed f16 setting; a variant that forgets the 1/sqrt(head_dim) scale fails, and the
// explanation names the op, the metric, its value and its bound.
#include <cmath>
#include <random>
#include <vector>

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"
#include "reference/testing/gate_matchers.h"

namespace {

constexpr int kTokens = 5, kHeads = 7, kKvHeads = 1, kHeadDim = 128;  // GQA 7:1, head_dim 128

// The kernel under test: causal GQA attention in float; `scaled` false is the bug.
std::vector<float> my_attention(const std::vector<float>& q, const std::vector<float>& k, const std::vector<float>& v,
                                bool scaled = true) {
  std::vector<float> out(std::size_t(kTokens) * kHeads * kHeadDim, 0.0f);
  const float scale = scaled ? 1.0f / std::sqrt(float(kHeadDim)) : 1.0f;
  for (int t = 0; t < kTokens; ++t)
    for (int h = 0; h < kHeads; ++h) {
      const int g = h / (kHeads / kKvHeads);
      std::vector<float> p(std::size_t(t) + 1);
      float max = -INFINITY, sum = 0;
      for (int j = 0; j <= t; ++j) {
        float s = 0;
        for (int d = 0; d < kHeadDim; ++d) s += q[(t * kHeads + h) * kHeadDim + d] * k[(j * kKvHeads + g) * kHeadDim + d];
        p[j] = s * scale;
        max = std::max(max, p[j]);
      }
      for (float& x : p) sum += (x = std::exp(x - max));
      for (int d = 0; d < kHeadDim; ++d) {
        float o = 0;
        for (int j = 0; j <= t; ++j) o += p[j] / sum * v[(j * kKvHeads + g) * kHeadDim + d];
        out[(t * kHeads + h) * kHeadDim + d] = o;
      }
    }
  return out;
}

struct Inputs {
  std::vector<float> q, k, v;
};

Inputs draw(unsigned seed) {
  std::mt19937 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.0f);
  Inputs in{std::vector<float>(std::size_t(kTokens) * kHeads * kHeadDim),
            std::vector<float>(std::size_t(kTokens) * kKvHeads * kHeadDim),
            std::vector<float>(std::size_t(kTokens) * kKvHeads * kHeadDim)};
  for (auto* t : {&in.q, &in.k, &in.v})
    for (float& x : *t) x = normal(rng);
  return in;
}

kvfid::testing::GateReference reference(const Inputs& in, kvfid::ref::FloatFormat arithmetic) {
  return kvfid::testing::attention_reference(in.q.data(), in.k.data(), in.v.data(), kTokens, kHeads, kKvHeads, kHeadDim,
                                             arithmetic);
}

TEST(NaiveAttention, PassesTheGateInF32) {
  const Inputs in = draw(1);
  EXPECT_THAT(my_attention(in.q, in.k, in.v), kvfid::testing::PassesGate(reference(in, kvfid::ref::FloatFormat::f32)));
}

// f16 inputs and output, f32 inside: the mixed-precision kernel most engines ship.
TEST(NaiveAttention, MixedF16PassesTheF16Gate) {
  Inputs in = draw(2);
  for (auto* t : {&in.q, &in.k, &in.v})
    for (float& x : *t) x = float(kvfid::ref::minifloat_round(x, kvfid::ref::kFp16));
  std::vector<float> out = my_attention(in.q, in.k, in.v);
  for (float& x : out) x = float(kvfid::ref::minifloat_round(x, kvfid::ref::kFp16));
  EXPECT_THAT(out, kvfid::testing::PassesGate(reference(in, kvfid::ref::FloatFormat::f16)));
}

TEST(NaiveAttention, AMissingScaleFailsAndIsExplained) {
  const Inputs in = draw(3);
  const auto matcher = kvfid::testing::PassesGate(reference(in, kvfid::ref::FloatFormat::f32));
  const std::vector<float> wrong = my_attention(in.q, in.k, in.v, false);
  EXPECT_THAT(wrong, ::testing::Not(matcher));
  ::testing::StringMatchResultListener why;
  EXPECT_FALSE(::testing::ExplainMatchResult(matcher, wrong, &why));
  EXPECT_THAT(why.str(), ::testing::HasSubstr("FAIL attention max_abs"));
  EXPECT_THAT(why.str(), ::testing::HasSubstr("> bound"));
}

}  // namespace
