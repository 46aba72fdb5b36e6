// The tqp formats (turbo_prod.h) against the header's definition recomputed here: the
// sketch matrix S from its documented hash (every entry +-1, about half each, rows
// distinct), the layout (the MSE stage's bytes, the residual norm, every sketch bit
// from the residual's FP32 sums), decode as the documented FP32 evaluation on
// arbitrary blocks and at every sketch bit; and the claim the format exists for, on
// random unit keys: the MSE quantizer's inner products are biased (shrunk by its
// distortion), and the prod quantizer removes most of that bias -- not all of it with
// this fixed +-1 sketch (see MseInnerProductsShrinkByTheDistortionProdRemovesMostOfIt).
#include <algorithm>
#include <bit>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <numbers>
#include <random>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/turbo_prod.h"
#include "reference/numeric/convert.h"
#include "tests/common/test_env.h"
#include "tests/reference/formats/quant/codec_subset.h"
#include "tests/reference/formats/quant/sphere_moments.h"

namespace kvfid::ref {
namespace {

// ---- The sketch matrix, recomputed from the header's comment ----

std::uint64_t splitmix64(std::uint64_t z) {
  z += 0x9E3779B97F4A7C15ull;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

constexpr std::uint64_t kSketchSeed = 0x243F6A8885A308D3ull;  // pi's fraction, as documented

// S [j][i] = +-1: -1 when bit j % 64 of splitmix64(seed + i W + j / 64) is set, W =
// ceil(B / 64).
std::vector<std::vector<int>> sketch_matrix(int block) {
  const int words = (block + 63) / 64;
  std::vector<std::vector<int>> s(block, std::vector<int>(block));
  for (int j = 0; j < block; ++j)
    for (int i = 0; i < block; ++i)
      s[j][i] = (splitmix64(kSketchSeed + std::uint64_t(i) * words + std::uint64_t(j / 64)) >> (j % 64)) & 1 ? -1 : 1;
  return s;
}

template <class C>
void expect_header_sketch(const std::vector<std::vector<int>>& s) {
  for (int j = 0; j < C::kBlock; ++j)
    for (int i = 0; i < C::kBlock; ++i)
      ASSERT_EQ(C::sketch_negative(j, i), s[j][i] < 0) << "S[" << j << "][" << i << "] of " << C::kName;
}

// A fixed matrix: these are checks of one matrix, not statistical tests. "About half":
// within 4 standard deviations of a fair coin's count, over the whole matrix and per
// row; a real hash of (i, j) passes with room, a constant or a broken bit selection
// (all rows equal, half the bits stuck) fails.
TEST(TurboProdSketch, TheMatrixIsTheDocumentedHashBalancedWithDistinctRows) {
  for (int block : {32, 128}) {
    SCOPED_TRACE(testing::Message() << "B = " << block);
    const auto s = sketch_matrix(block);
    if (block == 32) expect_header_sketch<quant::Tqp2_32>(s), expect_header_sketch<quant::Tqp4_32>(s);
    else expect_header_sketch<quant::Tqp2_128>(s), expect_header_sketch<quant::Tqp4_128>(s);
    long negative = 0;
    for (int j = 0; j < block; ++j) {
      int row = 0;
      for (int i = 0; i < block; ++i) {
        ASSERT_TRUE(s[j][i] == 1 || s[j][i] == -1);
        row += s[j][i] < 0;
      }
      EXPECT_NEAR(row, block / 2.0, 4 * std::sqrt(block / 4.0)) << "row " << j;
      negative += row;
      for (int k = 0; k < j; ++k) EXPECT_NE(s[j], s[k]) << "rows " << k << " and " << j;
    }
    const double entries = double(block) * block;
    EXPECT_NEAR(double(negative), entries / 2, 4 * std::sqrt(entries / 4));
    std::cout << "B = " << block << ": " << negative << " of " << entries << " entries -1\n";
  }
}

// ---- Per-format tests: every registered TurboProd format ----

// A TurboProd instance (the registered formats derive from one).
template <class C>
struct IsTurboProd : std::bool_constant<[] {
  if constexpr (requires { C::kBits; C::kSketchSeed; })
    return std::is_base_of_v<quant::TurboProd<C::kBits, C::kBlock>, C>;
  else
    return false;
}()> {};

TEST(TurboProdFormats, AllSixAreRegistered) { EXPECT_EQ(test::CodecsWhere<IsTurboProd>::count, 6); }

template <class C>
class TurboProd : public ::testing::Test {};
using TqpCodecs = test::CodecsWhere<IsTurboProd>::type;
TYPED_TEST_SUITE(TurboProd, TqpCodecs, test::CodecTypeName);

// b and B from the name tqp{b}_{B}.
template <class C>
int bits_of() {
  return std::stoi(std::string(C::kName).substr(3, 1));
}

// The layout's fields, read as the header's comment places them.
template <class C>
struct Fields {
  int b = bits_of<C>(), B = C::kBlock;
  int mse_bytes = (b - 1) * B / 8, sketch_offset = 4 + mse_bytes;
  std::uint16_t n16(const std::vector<std::uint8_t>& q) const { return std::uint16_t(q[0] | q[1] << 8); }
  std::uint16_t g16(const std::vector<std::uint8_t>& q) const { return std::uint16_t(q[2] | q[3] << 8); }
  // The (b-1)-bit MSE code of element i: bits [i (b-1), (i+1)(b-1)) of the string at byte 4.
  int code(const std::vector<std::uint8_t>& q, int i) const {
    int c = 0;
    for (int k = 0; k < b - 1; ++k) {
      const int bit = i * (b - 1) + k;
      c |= ((q[4 + bit / 8] >> (bit % 8)) & 1) << k;
    }
    return c;
  }
  // z_j = -1 when bit j of the sketch field is set.
  int z(const std::vector<std::uint8_t>& q, int j) const { return (q[sketch_offset + j / 8] >> (j % 8)) & 1 ? -1 : 1; }
};

// The (b-1)-bit level of a code (sign-magnitude, sphere_moments.h's FP32 levels).
float mse_level(int block, int bits, int code) {
  const std::vector<float> l = test::turbo_levels(block, bits);
  const int half = 1 << (bits - 1);
  return code & half ? -l[code & (half - 1)] : l[code & (half - 1)];
}

// kappa = fl32(sqrt(pi / 2) / B), from long double.
float kappa(int block) { return float(std::sqrt(std::numbers::pi_v<long double> / 2) / block); }

// Element i's value as the header defines it: fl32(m + fl32(g16 fl32(kappa n_i))),
// m = fl32(n16 L(code_i)), n_i = sum_j S_ji z_j.
template <class C>
float expected_value(const std::vector<std::uint8_t>& q, int i, const std::vector<std::vector<int>>& s) {
  const Fields<C> f;
  const float m = float(f16_to_double(f.n16(q))) * mse_level(f.B, f.b - 1, f.code(q, i));
  int n = 0;
  for (int j = 0; j < f.B; ++j) n += s[j][i] * f.z(q, j);
  const float g = float(f16_to_double(f.g16(q)));
  return m + g * (kappa(f.B) * float(n));
}

TYPED_TEST(TurboProd, SizeIsTwoNormsAndBBitsPerElement) {
  const int b = bits_of<TypeParam>(), B = TypeParam::kBlock;
  EXPECT_EQ(TypeParam::kBytes, 4 + b * B / 8);
  std::cout << TypeParam::kName << ": " << double(8 * TypeParam::kBytes) / B << " bits per element with the norms\n";
}

// Encoding random blocks: the norm and codes are the (b-1)-bit tq format's own bytes;
// g16 is fp16 of the FP32 norm of the residual x - m; sketch bit j is set exactly when
// the FP32 sum of S_ji r_i in i order is negative; and decode is the documented
// evaluation, bit for bit, as is decode_exact.
TYPED_TEST(TurboProd, EncodeIsTheMseStageTheResidualNormAndTheSketchSigns) {
  SCOPED_TRACE(test::seed_trace());
  const Fields<TypeParam> f;
  const auto s = sketch_matrix(f.B);
  const quant::FormatInfo& mse = quant::format_by_name("tq" + std::to_string(f.b - 1) + "_" + std::to_string(f.B), "test");
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal;
  std::uniform_real_distribution<double> log2_scale(-12, 8);
  int negative_signs = 0, signs = 0;
  for (int trial = 0; trial < 200; ++trial) {
    const float scale = float(std::exp2(log2_scale(rng)));
    std::vector<float> x(f.B);
    for (float& v : x) v = normal(rng) * scale;
    std::vector<std::uint8_t> q(TypeParam::kBytes), m_bytes(mse.bytes);
    TypeParam::encode(x.data(), q.data(), {});
    mse.encode(x.data(), m_bytes.data(), {});
    ASSERT_EQ(q[0], m_bytes[0]);
    ASSERT_EQ(q[1], m_bytes[1]);
    for (int k = 0; k < f.mse_bytes; ++k) ASSERT_EQ(q[4 + k], m_bytes[2 + k]) << "MSE code byte " << k;
    std::vector<float> r(f.B);
    float sum = 0;
    for (int i = 0; i < f.B; ++i) {
      r[i] = x[i] - mse.decode(m_bytes.data(), i, {});
      sum = std::fmaf(r[i], r[i], sum);
    }
    ASSERT_EQ(f.g16(q), num::f32_to_f16(std::sqrt(sum)));
    for (int j = 0; j < f.B; ++j) {
      float y = 0;
      for (int i = 0; i < f.B; ++i) y = s[j][i] > 0 ? y + r[i] : y - r[i];
      ASSERT_EQ(f.z(q, j), y < 0 ? -1 : 1) << "sketch bit " << j << ", y = " << y;
      negative_signs += y < 0;
      ++signs;
    }
    for (int i = 0; i < f.B; ++i) {
      const float v = expected_value<TypeParam>(q, i, s);
      ASSERT_EQ(num::bits_of(TypeParam::decode(q.data(), i, {})), num::bits_of(v)) << "element " << i;
      ASSERT_EQ(TypeParam::decode_exact(q.data(), i, {}), double(v)) << "element " << i;
    }
  }
  // The sketch's signs are not stuck: a residual's projections are symmetric.
  EXPECT_NEAR(negative_signs, signs / 2.0, 4 * std::sqrt(signs / 4.0));
}

// Arbitrary blocks (random bytes with finite norms): decode is the documented
// evaluation; and flipping sketch bit j alone moves every element's n_i by -2 S_ji z_j
// (each element then decodes as the evaluation says), at every bit position.
TYPED_TEST(TurboProd, DecodeIsTheDocumentedEvaluationAtEverySketchBit) {
  SCOPED_TRACE(test::seed_trace());
  const Fields<TypeParam> f;
  const auto s = sketch_matrix(f.B);
  std::mt19937_64 rng(test::test_seed() + 1);
  std::uniform_int_distribution<int> byte(0, 255);
  std::uniform_int_distribution<int> finite16(0, 0x7BFF);
  for (int trial = 0; trial < 4; ++trial) {
    std::vector<std::uint8_t> q(TypeParam::kBytes);
    for (auto& v : q) v = std::uint8_t(byte(rng));
    const int n16 = finite16(rng), g16 = finite16(rng);
    q[0] = std::uint8_t(n16), q[1] = std::uint8_t(n16 >> 8), q[2] = std::uint8_t(g16), q[3] = std::uint8_t(g16 >> 8);
    for (int j = -1; j < f.B; ++j) {  // -1: the block as drawn
      std::vector<std::uint8_t> flipped = q;
      if (j >= 0) flipped[f.sketch_offset + j / 8] ^= std::uint8_t(1u << (j % 8));
      for (int i = 0; i < f.B; ++i)
        ASSERT_EQ(num::bits_of(TypeParam::decode(flipped.data(), i, {})),
                  num::bits_of(expected_value<TypeParam>(flipped, i, s)))
            << "sketch bit " << j << " flipped, element " << i;
    }
  }
  // A zero block: all zero bytes, decoding to zeros.
  std::vector<float> zeros(f.B, 0.0f);
  std::vector<std::uint8_t> q(TypeParam::kBytes, 0xAB);
  TypeParam::encode(zeros.data(), q.data(), {});
  EXPECT_EQ(q, std::vector<std::uint8_t>(TypeParam::kBytes, 0));
}

// ---- The inner-product bias: MSE (tq{b}_B) against prod (tqp{b}_B) ----

// Pairs per format, 640000 / B: the standard error of the relative bias is then at most
// ~0.11% for both quantizers at every b and B (printed), so 4 of them stay below 0.5%:
// a bias of 0.5% is detected (asserted below: the test checks its own sensitivity).
// About 0.1 s per format pair.
constexpr int pairs_for(int block) { return 640000 / block; }
constexpr double kRho = 0.8;  // <q, x> for unit q and x
constexpr double kDetectable = 0.005;  // relative bias the test must be able to see

struct BiasEstimate {
  double relative_bias, standard_error;  // of E[<q, x^> - <q, x>] / E[<q, x>]
  double error_variance;                 // Var(<q, x^> - <q, x>)
  double error_mean_square;              // E[(<q, x^> - <q, x>)^2]
};

// pairs_for(B) pairs (x, q): x uniform on the unit sphere of R^B (a normalized
// Gaussian, rounded to FP32: what the codec quantizes), q = rho x + sqrt(1 - rho^2) w
// with w a unit vector uniform on x's orthogonal complement (a Gaussian with its x
// component removed, normalized), so <q, x> = rho up to the FP32 rounding of x. The
// same seed for every format: paired samples.
BiasEstimate inner_product_bias(const quant::FormatInfo& f) {
  std::mt19937_64 rng(test::test_seed() + 11);
  std::normal_distribution<double> normal;
  const int B = f.block, pairs = pairs_for(B);
  std::vector<double> g(B), h(B), q(B);
  std::vector<float> x(B);
  std::vector<std::uint8_t> bytes(f.bytes);
  double sum = 0, sum_squares = 0, sum_true = 0;
  for (int pair = 0; pair < pairs; ++pair) {
    double gg = 0, hg = 0, hh = 0;
    for (double& v : g) {
      v = normal(rng);
      gg += v * v;
    }
    for (double& v : g) v /= std::sqrt(gg);
    for (int i = 0; i < B; ++i) {
      h[i] = normal(rng);
      hg += h[i] * g[i];
    }
    for (int i = 0; i < B; ++i) {
      h[i] -= hg * g[i];
      hh += h[i] * h[i];
    }
    for (int i = 0; i < B; ++i) {
      q[i] = kRho * g[i] + std::sqrt(1 - kRho * kRho) * h[i] / std::sqrt(hh);
      x[i] = float(g[i]);
    }
    f.encode(x.data(), bytes.data(), {});
    double exact = 0, estimate = 0;
    for (int i = 0; i < B; ++i) {
      exact += q[i] * double(x[i]);
      estimate += q[i] * f.decode_exact(bytes.data(), i, {});
    }
    const double d = estimate - exact;
    sum += d;
    sum_squares += d * d;
    sum_true += exact;
  }
  const double mean = sum / pairs, mean_true = sum_true / pairs;
  const double variance = (sum_squares / pairs - mean * mean) * pairs / (pairs - 1);
  return {mean / mean_true, std::sqrt(variance / pairs) / mean_true, variance, sum_squares / pairs};
}

std::ostream& operator<<(std::ostream& os, const BiasEstimate& e) {
  return os << "relative bias " << e.relative_bias << " +- " << e.standard_error << ", Var " << e.error_variance
            << ", mean square " << e.error_mean_square;
}

// For the MSE quantizer (n16 = 1 exactly for these unit blocks) E<q, x^> = rho E<x, x^>
// (E<w, x^> = 0: given x, w and -w are equally likely), and E<x, x^> is the
// per-coordinate moment `cross` of sphere_moments.h: the relative bias is cross - 1 =
// -D + (power - cross), D the distortion. The model "-D" (TurboQuant's: E<x, x^> =
// E||x^||^2 = 1 - D for an MSE-optimal quantizer) holds up to the centroid condition's
// failure power - cross, which the exact density gives (O(1/B): the Gaussian Lloyd-Max
// levels are not the sphere coordinate's conditional means); that is the model
// tolerance, computed, not fitted.
//
// The prod quantizer's bias is asserted here only to be smaller in magnitude than the
// MSE quantizer's, by more than 4 standard errors of the difference: it removes most
// of the shrinkage. Not all of it: with this format's fixed +-1 sketch a small positive
// bias remains (turbo_prod.h, "Bias": measured +0.86 +- 0.03 % at B = 32 and
// +0.18 +- 0.04 % at B = 128 for b = 2, over 200,000 and 40,000 pairs), which a Gaussian
// sketch removes; so the test claims the reduction, which holds, not unbiasedness.
TYPED_TEST(TurboProd, MseInnerProductsShrinkByTheDistortionProdRemovesMostOfIt) {
  SCOPED_TRACE(test::seed_trace());
  const int b = bits_of<TypeParam>(), B = TypeParam::kBlock;
  const quant::FormatInfo& mse = quant::format_by_name("tq" + std::to_string(b) + "_" + std::to_string(B), "test");
  const quant::FormatInfo& prod = quant::format_by_name(TypeParam::kName, "test");
  const test::CoordinateMoments moments = test::sphere_coordinate_moments(B, test::turbo_levels(B, b));
  const double model = -moments.distortion, model_tolerance = std::fabs(moments.power - moments.cross);
  const BiasEstimate m = inner_product_bias(mse), p = inner_product_bias(prod);
  std::cout << mse.name << ": " << m << " (-D = " << model << ", exact " << moments.cross - 1 << ")\n"
            << prod.name << ": " << p << "\n";
  EXPECT_LE(test::kStandardErrors * m.standard_error, kDetectable) << "too few pairs to see a bias of " << kDetectable;
  EXPECT_LE(test::kStandardErrors * p.standard_error, kDetectable) << "too few pairs to see a bias of " << kDetectable;
  EXPECT_LT(m.relative_bias, -test::kStandardErrors * m.standard_error) << mse.name << " is not measurably shrunk";
  EXPECT_NEAR(m.relative_bias, model, test::kStandardErrors * m.standard_error + model_tolerance) << mse.name;
  // Conservative for the paired samples' difference (its SE is at most the sum).
  EXPECT_LT(std::fabs(p.relative_bias), std::fabs(m.relative_bias) - test::kStandardErrors * (m.standard_error + p.standard_error))
      << prod.name << " does not reduce " << mse.name << "'s bias";
}

// The claim of QJL and TurboQuant-prod: <q, x^> is unbiased. It holds in expectation
// over a Gaussian sketch matrix; with this format's fixed +-1 matrix it does not, and
// this test fails at B = 32 (every b; at B = 128 pairs_for(128) pairs cannot see a
// bias this small: the test is sized for 0.5%). The relative bias is positive,
// measured (2e5 pairs at B = 32, 4e4 at B = 128, +- one standard error) at
//   tqp2_32 +0.86% +- 0.03%, tqp3_32 +0.59% +- 0.02%, tqp4_32 +0.23% +- 0.01%,
//   tqp2_128 +0.18% +- 0.04%, tqp3_128 +0.17% +- 0.02%, tqp4_128 +0.10% +- 0.01%.
// The same pipeline with a fresh random +-1 matrix per pair gives the same bias, and
// with a fresh Gaussian matrix per pair none (|bias| < 3e-4, within 2.5 standard
// errors): the cause is the +-1 entries, for which E[s_i sign(<s, r>)] is not
// proportional to r_i (it is sign(r_i) P(|sum_(k != i) s_k r_k| < |r_i|), an O(r_i^2 /
// ||r||^2) departure), not this matrix or the code. Disabled pending a decision on
// what the format should claim (run with --gtest_also_run_disabled_tests); no
// tolerance is fitted to the measurement.

}  // namespace
}  // namespace kvfid::ref
