// The forward's pieces against closed forms.
#include <gtest/gtest.h>

#include "reference/mp/attention.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/rms_norm.h"
#include "reference/mp/rope.h"
#include "reference/mp/softmax.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

constexpr mpfr_prec_t kPrecision = 128;

TEST(MpKernels, RopeAtPositionZeroIsTheIdentity) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const MpArith arith = MpArith::exact(kPrecision);
  const MpArray theta = mp_constant(10000.0);
  const RopeTable table = make_rope_table(1, 8, theta[0], RopeScaling{}, arith);
  for (RopeStyle style : {RopeStyle::interleaved, RopeStyle::rotate_half}) {
    const MpArray original = test::random_mp_array(3 * 8, kPrecision, test::test_seed());
    MpArray x = test::random_mp_array(3 * 8, kPrecision, test::test_seed());
    apply_rope(x, table, 1, 3, style, arith, 2);
    EXPECT_TRUE(test::mp_identical(x, original)) << to_string(style);
  }
}

// A unit vector on the first dimension turns by one radian at position 1 (pair 0 has
// frequency theta^0 = 1), landing on dimension 1 (interleaved) or head_dim/2 (rotate_half).
TEST(MpKernels, RopePairsAndAngle) {
  ExponentRangeScope range;
  const MpArith arith = MpArith::exact(kPrecision);
  const MpArray theta = mp_constant(10000.0);
  const RopeTable table = make_rope_table(2, 8, theta[0], RopeScaling{}, arith);
  MpArray one(1, 53), cos1(1, 53), sin1(1, 53);
  mpfr_set_ui(one[0], 1, MPFR_RNDN);
  mpfr_cos(cos1[0], one[0], MPFR_RNDN);
  mpfr_sin(sin1[0], one[0], MPFR_RNDN);
  for (RopeStyle style : {RopeStyle::interleaved, RopeStyle::rotate_half}) {
    MpArray x(2 * 8, kPrecision);  // [2 positions, 1 head, 8]
    mpfr_set_ui(x[8], 1, MPFR_RNDN);
    apply_rope(x, table, 2, 1, style, arith, 1);
    const int partner = style == RopeStyle::interleaved ? 9 : 12;
    // At 128 bits the value differs from cos(1) by a few 2^-128; both round to the same
    // float64 unless cos(1) lay within 2^-120 of a float64 midpoint, which it does not.
    EXPECT_EQ(mpfr_get_d(x[8], MPFR_RNDN), mpfr_get_d(cos1[0], MPFR_RNDN)) << to_string(style);
    EXPECT_EQ(mpfr_get_d(x[partner], MPFR_RNDN), mpfr_get_d(sin1[0], MPFR_RNDN)) << to_string(style);
    for (int i = 0; i < 16; ++i)
      if (i != 8 && i != partner) {
        EXPECT_TRUE(mpfr_zero_p(x[i])) << to_string(style) << " index " << i;
      }
  }
}

TEST(MpKernels, SoftmaxOfEqualScoresIsUniform) {
  ExponentRangeScope range;
  for (const MpArith& arith : {MpArith::exact(kPrecision), MpArith::ieee(FloatFormat::f16)}) {
    constexpr int n = 7;
    MpArray scores(n, arith.precision()), scratch(2, arith.precision()), seventh(1, arith.precision());
    for (int j = 0; j < n; ++j) mpfr_set_d(scores[j], 3.25, MPFR_RNDN);
    softmax_in_place(scores[0], n, arith, scratch[0]);
    // exp(0) = 1 and the sum 7 are exact, so each probability is 1/7 rounded once.
    const MpArray seven = mp_constant(7);
    mpfr_ui_div(seventh[0], 1, seven[0], MPFR_RNDN);
    for (int j = 0; j < n; ++j) EXPECT_TRUE(mpfr_equal_p(scores[j], seventh[0])) << "j " << j;
  }
}

TEST(MpKernels, RmsNormOfAConstantVector) {
  ExponentRangeScope range;
  const MpArith arith = MpArith::exact(kPrecision);
  constexpr int dim = 8;
  constexpr double c = -0.375, eps = 1e-5;
  const MpArray eps_mp = mp_constant(eps);
  MpArray x(dim, kPrecision), out(dim, kPrecision), weight(dim, 53);
  for (int i = 0; i < dim; ++i) {
    mpfr_set_d(x[i], c, MPFR_RNDN);
    mpfr_set_d(weight[i], 0.5 + 0.125 * i, MPFR_RNDN);
  }
  rms_norm(out, x, weight, eps_mp[0], 1, arith, 1);
  // Closed form c / sqrt(c^2 + eps) * w at 256 bits. The computed value carries a few
  // 2^-128 relative errors, so both round to the same float64 barring a midpoint within
  // 2^-120 (not the case for these inputs).
  MpArray expected(1, 256);
  for (int i = 0; i < dim; ++i) {
    mpfr_set_d(expected[0], c, MPFR_RNDN);
    mpfr_sqr(expected[0], expected[0], MPFR_RNDN);
    mpfr_add_d(expected[0], expected[0], eps, MPFR_RNDN);
    mpfr_sqrt(expected[0], expected[0], MPFR_RNDN);
    mpfr_d_div(expected[0], c, expected[0], MPFR_RNDN);
    mpfr_mul(expected[0], expected[0], weight[i], MPFR_RNDN);
    EXPECT_EQ(mpfr_get_d(out[i], MPFR_RNDN), mpfr_get_d(expected[0], MPFR_RNDN)) << "i " << i;
  }
}

TEST(MpKernels, AttentionOverOneTokenReturnsItsValue) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const ModelConfig c = test::tiny_config();
  for (const MpArith& arith : {MpArith::exact(kPrecision), MpArith::ieee(FloatFormat::bf16)}) {
    const MpArray q = test::random_mp_array(c.q_dim(), arith.precision(), test::test_seed());
    const MpArray k = test::random_mp_array(c.kv_dim(), arith.precision(), test::test_seed() + 1);
    MpArray v(c.kv_dim(), arith.precision());
    for (int i = 0; i < c.kv_dim(); ++i) mpfr_set_si_2exp(v[i], 3 * i - 11, -3, MPFR_RNDN);  // exact in bf16
    MpArray probs(c.n_heads, arith.precision()), out(c.q_dim(), arith.precision());
    causal_attention(probs, out, q, k, v, 1, c, arith, 2);
    for (int h = 0; h < c.n_heads; ++h) {
      EXPECT_EQ(mpfr_cmp_ui(probs[h], 1), 0) << "head " << h;
      for (int d = 0; d < c.head_dim; ++d)
        EXPECT_TRUE(mpfr_equal_p(out[h * c.head_dim + d], v[c.kv_head_of(h) * c.head_dim + d]))
            << "head " << h << " d " << d;
    }
  }
}

// Without the probabilities tap each thread reuses one row: the output is the same bits
// as with the [n_heads, T, T] buffer, for every arithmetic and thread count.
TEST(MpKernels, AttentionWithoutKeptProbabilitiesGivesTheSameOutput) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  const ModelConfig c = test::tiny_config();
  constexpr int T = 9;
  for (const MpArith& arith : {MpArith::exact(kPrecision), MpArith::ieee(FloatFormat::f16)}) {
    const MpArray q = test::random_mp_array(std::size_t(T) * c.q_dim(), arith.precision(), test::test_seed());
    const MpArray k = test::random_mp_array(std::size_t(T) * c.kv_dim(), arith.precision(), test::test_seed() + 1);
    const MpArray v = test::random_mp_array(std::size_t(T) * c.kv_dim(), arith.precision(), test::test_seed() + 2);
    MpArray probs(std::size_t(c.n_heads) * T * T, arith.precision()), kept(std::size_t(T) * c.q_dim(), arith.precision());
    causal_attention(probs, kept, q, k, v, T, c, arith, 1);
    for (int threads : {1, 2, 3}) {
      MpArray out(std::size_t(T) * c.q_dim(), arith.precision());
      causal_attention(nullptr, out, q, AttentionKv{k, k, v, v}, T, c, arith, threads);
      EXPECT_TRUE(test::mp_identical(out, kept)) << threads << " threads";
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
