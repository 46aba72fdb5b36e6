// The tq formats (turbo_mse.h) against values recomputed here, independently of the
// header's tables: the Gaussian Lloyd-Max centroids (Lloyd's iteration), the FP32
// levels fl32(c / sqrt(B)) and the rounded-up midpoint thresholds, the bit layout with
// every code at every element position, and the distortion on random unit vectors
// against the exact distribution of a coordinate of one. Every registered tq format,
// uniform (tq{b}_B) and split (tq{b}.5_B: its code widths from its name), each per-
// element check at that element's width.
#include <algorithm>
#include <cmath>
#include <cstdint>
#include <iostream>
#include <numbers>
#include <random>
#include <regex>
#include <string>
#include <type_traits>
#include <vector>

#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/registry.h"
#include "reference/formats/quant/turbo_mse.h"
#include "reference/numeric/convert.h"
#include "tests/common/test_env.h"
#include "tests/reference/formats/quant/codec_subset.h"
#include "tests/reference/formats/quant/sphere_moments.h"

namespace kvfid::ref {
namespace {

using quant::kGaussianCentroids;

// ---- The centroids: a fixed point of Lloyd's iteration for N(0, 1) ----

// P(a < Z < b) and E[Z; a < Z < b] for 0 <= a < b <= inf, from erfc (no cancellation
// in the upper tail).
double normal_mass(double a, double b) { return (std::erfc(a / std::sqrt(2.0)) - std::erfc(b / std::sqrt(2.0))) / 2; }
double normal_density(double z) { return std::isinf(z) ? 0 : std::exp(-z * z / 2) / std::sqrt(2 * std::numbers::pi); }

// The positive centroids of the symmetric 2^b-level quantizer: Lloyd's iteration (each
// centroid the conditional mean of its cell, the cells split at the midpoints, the
// middle one at 0) from evenly spaced levels, until no centroid moves by 1e-15.
std::vector<double> lloyd_max_centroids(int bits) {
  const int half = 1 << (bits - 1);
  std::vector<double> c(half);
  for (int m = 0; m < half; ++m) c[m] = (m + 0.5) * 3.0 / half;
  for (int iteration = 0; iteration < 100000; ++iteration) {
    double moved = 0;
    std::vector<double> next(half);
    for (int m = 0; m < half; ++m) {
      const double a = m == 0 ? 0 : (c[m - 1] + c[m]) / 2;
      const double b = m + 1 == half ? INFINITY : (c[m] + c[m + 1]) / 2;
      next[m] = (normal_density(a) - normal_density(b)) / normal_mass(a, b);
      moved = std::max(moved, std::fabs(next[m] - c[m]));
    }
    c = next;
    if (moved < 1e-15) return c;
  }
  ADD_FAILURE() << "Lloyd's iteration did not converge for b = " << bits;
  return c;
}

// The header's centroids are the 10-decimal roundings of the fixed point (within
// 5e-11); 1e-9 leaves room for the iteration's own convergence error (~1e-13).
constexpr double kCentroidTolerance = 1e-9;

TEST(TurboMseCentroids, AreTheFixedPointOfLloydsIteration) {
  for (int bits = 1; bits <= 4; ++bits) {
    const std::vector<double> c = lloyd_max_centroids(bits);
    for (std::size_t m = 0; m < c.size(); ++m)
      EXPECT_NEAR(kGaussianCentroids[bits - 1][m], c[m], kCentroidTolerance) << "b = " << bits << ", centroid " << m;
  }
  EXPECT_NEAR(kGaussianCentroids[0][0], std::sqrt(2 / std::numbers::pi), 1e-10);  // b = 1: E|Z|
}

// ---- Per-format tests ----

// Every registered TurboMse format (registry.h's Codecs filtered to the instantiations
// of quant::TurboMse), so a tq format added there is tested here without a line more.
// A TurboMse instance (the registered formats derive from one).
template <class C>
struct IsTurboMse : std::bool_constant<[] {
  if constexpr (requires { C::kBitsHi; C::kBitsLo; C::kHi; })
    return std::is_base_of_v<quant::TurboMse<C::kBitsHi, C::kBitsLo, C::kHi, C::kBlock>, C>;
  else
    return false;
}()> {};

template <class C>
class TurboMse : public ::testing::Test {};
using TqCodecs = test::CodecsWhere<IsTurboMse>::type;
TYPED_TEST_SUITE(TurboMse, TqCodecs, test::CodecTypeName);

// The filter keeps every registered tq format: each name tq{b}_{B} or tq{b}.5_{B}.
TEST(TurboMseFormats, TheFilterKeepsEveryRegisteredTqFormat) {
  const std::regex name("tq[1-4](\\.5)?_[0-9]+");
  int named = 0;
  for (const quant::FormatInfo& f : quant::all_formats()) named += std::regex_match(f.name, name);
  EXPECT_EQ(named, test::CodecsWhere<IsTurboMse>::count);
  EXPECT_EQ(named, 12);
}

// The code width of element i: the first kHi elements at kBitsHi, the rest at kBitsLo.
template <class C>
int width_at(int i) {
  return i < C::kHi ? C::kBitsHi : C::kBitsLo;
}

// The name says the layout: tq{b}_{B} has every element at b bits; tq{b}.5_{B} has the
// first B/2 at b + 1 bits and the rest at b. The block's bytes: the FP16 norm and the
// codes' bits.
TYPED_TEST(TurboMse, TheNameGivesTheWidthsAndTheSize) {
  const std::string name = TypeParam::kName;
  const std::smatch m = [&] {
    std::smatch r;
    EXPECT_TRUE(std::regex_match(name, r, std::regex("tq([1-4])(\\.5)?_([0-9]+)"))) << name;
    return r;
  }();
  ASSERT_EQ(m.size(), 4u);
  const int b = std::stoi(m[1]), block = std::stoi(m[3]);
  const bool split = m[2].matched;
  EXPECT_EQ(TypeParam::kBlock, block);
  int bits = 0;
  for (int i = 0; i < block; ++i) {
    const int expected = split && i < block / 2 ? b + 1 : b;
    EXPECT_EQ(width_at<TypeParam>(i), expected) << "element " << i;
    bits += expected;
  }
  EXPECT_EQ(TypeParam::kBytes * 8, 16 + bits);
  std::cout << name << ": " << double(16 + bits) / block << " bits per element with the norm\n";
}

// The level of a code of `bits` bits as the header's comment defines it:
// sign-magnitude (bit bits-1 the sign), L_m = fl32(c_m / sqrt(B)), computed in long
// double and rounded once to FP32.
template <class C>
float expected_level(int bits, int code) {
  const int half = 1 << (bits - 1);
  const float l =
      float((long double)kGaussianCentroids[bits - 1][code & (half - 1)] / std::sqrt((long double)C::kBlock));
  return code & half ? -l : l;
}
template <class C>
float expected_level_at(int i, int code) {
  return expected_level<C>(width_at<C>(i), code);
}

// Code i of a block as the layout comment defines it: bits [o_i, o_i + w_i) of the bit
// string after the norm, o_i = i w_hi before kHi and kHi w_hi + (i - kHi) w_lo after,
// bit k in bit k % 8 of byte k / 8.
template <class C>
int code_at(const std::vector<std::uint8_t>& bytes, int i) {
  const int offset = i < C::kHi ? i * C::kBitsHi : C::kHi * C::kBitsHi + (i - C::kHi) * C::kBitsLo;
  int code = 0;
  for (int k = 0; k < width_at<C>(i); ++k) {
    const int bit = offset + k;
    code |= ((bytes[2 + bit / 8] >> (bit % 8)) & 1) << k;
  }
  return code;
}

// One element position inside each run of equal widths ([0, kHi) and [kHi, kBlock),
// the nonempty ones): its middle plus one.
template <class C>
std::vector<int> probe_positions() {
  std::vector<int> at;
  if (C::kHi > 0) at.push_back(C::kHi / 2 + 1);
  if (C::kHi < C::kBlock) at.push_back(C::kHi + (C::kBlock - C::kHi) / 2 + 1);
  return at;
}

// The least float >= (a + b) / 2 for floats 0 <= a < b (the sum is exact in float64).
float midpoint_up(float a, float b) {
  const double mid = (double(a) + double(b)) / 2;
  float t = float(mid);
  if (double(t) < mid) t = std::nextafter(t, INFINITY);
  return t;
}

// Norms the blocks below store exactly: FP16 normal (1, 2^-10, 2^15) and subnormal
// (2^-20) values, powers of two so that x_i / n16 is exact.
constexpr float kNorms[] = {1.0f, 0x1p-10f, 0x1p15f, 0x1p-20f};

// A block of norm `norm` (to FP32 accuracy: it stores n16 = norm) whose element `at` is
// x_at: the other elements share the remaining norm, alternating in sign and in
// magnitude (1 and 1/2, so that neighbours get different codes).
template <class C>
std::vector<float> block_with(int at, float x_at, float norm) {
  std::vector<double> w(C::kBlock);
  double weights = 0;
  for (int j = 0; j < C::kBlock; ++j) {
    if (j == at) continue;
    w[j] = (j % 2 ? -1.0 : 1.0) * (j % 4 < 2 ? 1.0 : 0.5);
    weights += w[j] * w[j];
  }
  const double fill = std::sqrt((double(norm) * norm - double(x_at) * x_at) / weights);
  std::vector<float> x(C::kBlock);
  for (int j = 0; j < C::kBlock; ++j) x[j] = j == at ? x_at : float(fill * w[j]);
  return x;
}

// Encodes x, checks the stored norm is `norm` and that every element decodes to
// norm * expected_level(its code in the layout); returns the bytes.
template <class C>
std::vector<std::uint8_t> encode_checked(const std::vector<float>& x, float norm) {
  std::vector<std::uint8_t> bytes(C::kBytes);
  C::encode(x.data(), bytes.data(), {});
  EXPECT_EQ(f16_to_double(quant::load_u16(bytes.data())), double(norm));
  for (int j = 0; j < C::kBlock; ++j) {
    EXPECT_EQ(C::decode_exact(bytes.data(), j, {}), double(norm) * double(expected_level_at<C>(j, code_at<C>(bytes, j))))
        << "element " << j;
    if (::testing::Test::HasFailure()) break;
  }
  return bytes;
}

// Every code at every element position: an element put exactly on a level (t = x / n16
// exact) gets that level's code, at its place in the bit string, and decodes to
// n16 * L exactly; the other elements, whatever their codes, decode as the layout and
// the levels say (encode_checked).
TYPED_TEST(TurboMse, EveryCodeAtEveryPositionRoundTrips) {
  for (float norm : kNorms)
    for (int at = 0; at < TypeParam::kBlock; ++at)
      for (int code = 0; code < 1 << width_at<TypeParam>(at); ++code) {
        SCOPED_TRACE(testing::Message() << "norm " << norm << ", element " << at << ", code " << code);
        const float level = expected_level_at<TypeParam>(at, code);
        const auto bytes = encode_checked<TypeParam>(block_with<TypeParam>(at, norm * level, norm), norm);
        ASSERT_EQ(code_at<TypeParam>(bytes, at), code);
        ASSERT_EQ(TypeParam::decode(bytes.data(), at, {}), norm * level);  // exact: a power of two
      }
}

// The thresholds: x / n16 exactly at the least float >= the midpoint of two adjacent
// magnitudes takes the larger one, the float just below it the smaller, on both sides
// of zero; +-0 takes code 0 (+L_0), and values beyond the last level its code. At
// one element of each code width.
TYPED_TEST(TurboMse, ThresholdsAreTheMidpointsRoundedUp) {
  for (int at : probe_positions<TypeParam>()) {
    const int half = 1 << (width_at<TypeParam>(at) - 1);
    const auto code_for = [&](float t, float norm) {
      return code_at<TypeParam>(encode_checked<TypeParam>(block_with<TypeParam>(at, norm * t, norm), norm), at);
    };
    for (float norm : kNorms) {
      SCOPED_TRACE(testing::Message() << "norm " << norm << ", element " << at);
      for (int m = 0; m + 1 < half; ++m) {
        const float threshold =
            midpoint_up(expected_level_at<TypeParam>(at, m), expected_level_at<TypeParam>(at, m + 1));
        const float below = std::nextafter(threshold, 0.0f);
        EXPECT_EQ(code_for(threshold, norm), m + 1) << "at the threshold " << threshold;
        EXPECT_EQ(code_for(below, norm), m) << "below the threshold " << threshold;
        EXPECT_EQ(code_for(-threshold, norm), half + m + 1);
        EXPECT_EQ(code_for(-below, norm), half + m);
      }
      EXPECT_EQ(code_for(0.0f, norm), 0);
      EXPECT_EQ(code_for(-0.0f, norm), 0);
      EXPECT_EQ(code_for(0.9f, norm), half - 1);
      EXPECT_EQ(code_for(-0.9f, norm), 2 * half - 1);
    }
  }
}

// Where the bound's slack is needed: t* = x / n16 just below a midpoint whose FP32
// quotient rounds up to the threshold, so encode takes the farther level. Norms that
// are not powers of two (the division is inexact) and elements within a few ulps of
// n16 times each midpoint find such cases for every threshold; the error then exceeds
// the distance to the nearest level, and stays within the bound (the 2^-23 |x| term).
constexpr float kInexactNorms[] = {3.0f, 5.0f, 7.0f, 0.75f, 11.0f, 13.0f, 1.25f, 0.875f};

TYPED_TEST(TurboMse, DivisionRoundingTowardAFartherLevelStaysWithinTheBound) {
  if (TypeParam::kBitsHi == 1 && TypeParam::kBitsLo == 1)
    GTEST_SKIP() << "one magnitude: the code is the sign of x, which the division keeps";
  for (int at : probe_positions<TypeParam>()) {
    SCOPED_TRACE(testing::Message() << "element " << at);
    const int half = 1 << (width_at<TypeParam>(at) - 1);
    int found = 0;
    for (int m = 0; m + 1 < half; ++m) {
      const double lo = expected_level_at<TypeParam>(at, m), hi = expected_level_at<TypeParam>(at, m + 1),
                   mid = (lo + hi) / 2;
      for (float norm : kInexactNorms) {
        float x = float(norm * mid);
        for (int k = 0; k < 8; ++k) x = std::nextafter(x, 0.0f);
        for (int k = 0; k < 16; ++k, x = std::nextafter(x, INFINITY)) {
          if (!(double(x) < norm * mid)) break;  // norm * mid: exact in float64
          const std::vector<float> block = block_with<TypeParam>(at, x, norm);
          const auto bytes = encode_checked<TypeParam>(block, norm);
          if (code_at<TypeParam>(bytes, at) != m + 1) continue;
          ++found;
          const double error = std::fabs(double(x) - TypeParam::decode_exact(bytes.data(), at, {}));
          const double nearest = std::fabs(double(x) - norm * lo);
          EXPECT_GT(error, nearest);
          EXPECT_LE(error, TypeParam::error_bound(block.data(), at, {})) << "x = " << std::hexfloat << x << ", norm " << norm;
        }
      }
    }
    EXPECT_GE(found, half - 1) << "too few elements where the rounding picks the farther level";
  }
}

// ---- Distortion on random unit vectors ----

// The expected ||x - x^||^2 over uniform random unit vectors x (sphere_moments.h): each
// element's E[(x_i - x^_i)^2] is its width's per-coordinate distortion on the u = sqrt(B)
// x_i scale divided by B, so the block's is the mean of the two widths' distortions
// weighted by their channel counts (the uniform formats: the one width's).
template <class C>
double expected_distortion() {
  const auto distortion = [](int bits) {
    return test::sphere_coordinate_moments(C::kBlock, test::turbo_levels(C::kBlock, bits)).distortion;
  };
  return (C::kHi * distortion(C::kBitsHi) + (C::kBlock - C::kHi) * distortion(C::kBitsLo)) / C::kBlock;
}

// Vectors per format: the standard error of the mean distortion is then 0.3% to 0.8%
// of it, in well under a second per format.
constexpr int kVectors = 20000;
// The sample mean against the integral: within kStandardErrors (sphere_moments.h), a false
// alarm rate of 8e-4 for all twelve formats.

// TurboQuant's (Zandieh et al. 2025) distortion figures for b = 1..4, the Gaussian
// Lloyd-Max MSE rounded to 1 to 3 significant digits (0.03 stands for 0.0345).
constexpr double kPublishedDistortion[] = {0.36, 0.117, 0.03, 0.009};
constexpr double kPublishedUnit[] = {0.01, 0.001, 0.01, 0.001};  // of each figure's last digit

TYPED_TEST(TurboMse, DistortionOnRandomUnitVectorsMatchesTheExactDensity) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> normal;
  constexpr int B = TypeParam::kBlock;
  std::vector<double> g(B);
  std::vector<float> x(B);
  std::vector<std::uint8_t> bytes(TypeParam::kBytes);
  double sum = 0, sum_squares = 0;
  for (int v = 0; v < kVectors; ++v) {
    double norm = 0;
    for (double& e : g) {
      e = normal(rng);
      norm += e * e;
    }
    norm = std::sqrt(norm);
    for (int i = 0; i < B; ++i) x[i] = float(g[i] / norm);
    TypeParam::encode(x.data(), bytes.data(), {});
    double d = 0;
    for (int i = 0; i < B; ++i) {
      const double e = double(x[i]) - TypeParam::decode_exact(bytes.data(), i, {});
      d += e * e;
    }
    sum += d;
    sum_squares += d * d;
  }
  const double mean = sum / kVectors;
  const double standard_error = std::sqrt((sum_squares / kVectors - mean * mean) / (kVectors - 1));
  const double expected = expected_distortion<TypeParam>();
  std::cout << TypeParam::kName << ": distortion " << mean << " +- " << standard_error << " (expected " << expected
            << ")\n";
  EXPECT_NEAR(mean, expected, test::kStandardErrors * standard_error);
  // A sanity check of the asymptotics (B = 128 is close to the Gaussian limit): the
  // published figure up to its rounding, half a unit of its last digit, and 5%. For
  // the uniform formats (TurboQuant publishes no figure for its split rates).
  constexpr int b = TypeParam::kBitsLo;
  if (B == 128 && TypeParam::kBitsHi == b) {
    EXPECT_NEAR(mean, kPublishedDistortion[b - 1], kPublishedUnit[b - 1] / 2 + 0.05 * kPublishedDistortion[b - 1]);
  }
}

}  // namespace
}  // namespace kvfid::ref
