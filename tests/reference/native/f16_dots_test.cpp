// accumulate_f16 (the F16C kernel) against FormatArith<f16>'s scalar loop, which the
// format_arith tests prove against MPFR: the same bits in every lane (NaN: a NaN) for
// seeded random operands of every kind the kernel accepts -- all binary16 codes (zeros of
// both signs, subnormals, values near 65504, Inf, NaN), on the other side BF16 codes of
// any exponent (binary32 products that overflow or underflow), binary16 values, 13-bit
// significands, binary32 subnormals, and few-bit values whose products are exact
// midpoints; any binary32 value and values whose products lie next to a midpoint through
// the binary32-products kernel -- in both operand orders, at widths that take every tail
// of the kernel's 64-lane block, continuing from nonzero sums.
#include "reference/native/f16_dots.h"

#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <random>
#include <sstream>
#include <vector>

#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"
#include "reference/native/format_arith.h"
#include "tests/common/test_env.h"
#include "tests/reference/native/same_bits.h"

namespace kvfid::ref::native {
namespace {

using A = FormatArith<FloatFormat::f16>;

// Magnitudes of the binary16 side: binary16 exponent fields drawn from [lo, hi].
struct Scene {
  const char* name;
  int lo, hi;
};
constexpr Scene kScenes[] = {
    {"every code", 0, 31},    // Inf and NaN (field 31) included
    {"subnormal", 0, 2},      // sums and products in binary16's subnormal range
    {"moderate", 12, 18},     // long finite sums, many ties
    {"near 65504", 27, 30},   // sums that overflow to Inf, Inf - Inf
};

float f16_value(const Scene& s, std::mt19937_64& rng) {
  std::uint32_t field = std::uint32_t(s.lo + int(rng() % std::uint64_t(s.hi - s.lo + 1)));
  if (field == 31 && rng() % 8) field = 15;  // Inf and NaN rarer (1 in 256): they swallow whole sums
  const std::uint32_t code = std::uint32_t(rng() & 0x83FFu) | (field << 10);  // sign, exponent field, significand
  return float(minifloat_decode(code, kFp16));
}

// The other operand: at most kF16DotOperandBits significant bits (F16Products::narrow),
// then any binary32 (F16Products::binary32): every code, 24-bit significands of moderate
// size, and quotients m / a that put the exact product within binary32's rounding of a
// binary16 midpoint m (where only the rounding to odd keeps the tie from being broken
// the wrong way).
enum class Kind { bf16_code, f16_code, bits13, few_bits, f32_subnormal, f32_code, bits24, near_midpoint, count };
constexpr Kind kFirstWide = Kind::f32_code;

float narrow_value(Kind k, std::mt19937_64& rng) {
  // Drawn in a fixed order (an expression's operands are not): the same values from every compiler.
  const double sign = rng() % 2 ? -1.0 : 1.0;
  const std::uint64_t r1 = rng(), r2 = rng();
  switch (k) {
    case Kind::bf16_code: {  // any code (2^-133 .. Inf, NaN) or exponents -24 .. 8, where sums stay finite
      const std::uint32_t code = std::uint32_t(r1 & 0xFFFFu);
      return float(minifloat_decode(r2 % 4 ? (code & 0x807Fu) | ((103u + code % 33u) << 7) : code, kBf16));
    }
    case Kind::f16_code: return float(minifloat_decode(std::uint32_t(r1 & 0xFFFFu), kFp16));
    case Kind::bits13: return float(sign * std::ldexp(double(4096 + r1 % 4096), -12 + int(r2 % 9) - 4));
    case Kind::few_bits: return float(sign * std::ldexp(double(2 * (r1 % 8) + 1), -int(r2 % 4)));  // 1 to 15, odd
    case Kind::f32_subnormal: return float(sign * std::ldexp(double(r1 % 4096), -138));  // k 2^-138 < 2^-126
    case Kind::f32_code: {
      const std::uint32_t u = std::uint32_t(r1);
      float x;
      std::memcpy(&x, &u, 4);
      return x;
    }
    case Kind::bits24: return float(sign * std::ldexp(double((1 << 23) + r1 % (1 << 23)), -23 + int(r2 % 9) - 4));
    case Kind::near_midpoint:  // filled in beside its binary16 operand
    case Kind::count: break;
  }
  return 0.0f;
}

// A product of binary16 and narrow operands that is exactly halfway between two binary16
// values in their normal range (the ties the kernel must break to even).
bool product_is_tie(float a, float b) {
  const double p = double(a) * double(b);  // exact
  if (!(std::fabs(p) >= 0x1p-14 && std::fabs(p) < 65504.0)) return false;
  const std::uint64_t tail = bits_of(p) & ((std::uint64_t(1) << 42) - 1);  // bits past binary16's 11
  return tail == std::uint64_t(1) << 41;
}

// A product that is not a binary16 midpoint but rounds to one in binary32 (round to
// nearest): the case where rounding first to binary32 and then to binary16 goes wrong.
bool product_is_near_tie(float a, float b) {
  const double p = double(a) * double(b);
  return !product_is_tie(a, b) && double(float(p)) != p && product_is_tie(float(p), 1.0f);
}

TEST(F16Dots, OperandClass) {
  const float fit[] = {0.0f, -0.0f, INFINITY, 1.0f + 0x1p-12f, 65504.0f, 0x1p-138f, 4095 * 0x1p-138f, 0x1p-133f};
  const float wide[] = {1.0f + 0x1p-13f, 0x1p-149f, 0x1p-139f, 1.0f / 3.0f};  // subnormals: the test is conservative
  for (float v : fit) EXPECT_TRUE(f16_dot_operands(&v, 1)) << v;
  for (float v : wide) EXPECT_FALSE(f16_dot_operands(&v, 1)) << v;
  std::vector<float> row(100, 1.5f);
  EXPECT_TRUE(f16_dot_operands(row.data(), row.size()));
  row[99] = 1.0f / 3.0f;
  EXPECT_FALSE(f16_dot_operands(row.data(), row.size()));
}

TEST(F16Dots, MatchesTheScalarFormatArith) {
  if (!f16_dots_available()) GTEST_SKIP() << "this CPU has no AVX2 + F16C";
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  long ties = 0, near = 0, subnormal = 0, overflow = 0, nan = 0, zero = 0, checked = 0;
  for (int round = 0; round < 3000; ++round) {
    const Scene& scene = kScenes[rng() % std::size(kScenes)];
    const Kind kind = Kind(rng() % std::uint64_t(Kind::count));
    const F16Products products = kind >= kFirstWide || rng() % 2 ? F16Products::binary32 : F16Products::narrow;
    // a = the other operands (a projection's weights), b = binary16; or the reverse
    const bool narrow_first = kind != Kind::near_midpoint && rng() % 2;
    const int n0 = int(rng() % 41);
    const int n = n0 + (rng() % 4 == 0 ? 0 : 1);
    const int width = kF16DotLanes * (1 + int(rng() % 20));  // 8 .. 160: every tail of a 64-lane block
    const std::size_t stride = std::size_t(width) + rng() % 5;
    std::vector<float> a(static_cast<std::size_t>(n)), b(static_cast<std::size_t>(n) * stride);
    std::vector<float> acc(static_cast<std::size_t>(width));
    auto f16 = [&] { return f16_value(scene, rng); };
    auto other = [&] { return narrow_value(kind, rng); };
    for (float& v : a) v = narrow_first ? other() : f16();
    for (float& v : b) v = narrow_first ? f16() : other();
    if (kind == Kind::near_midpoint)
      for (std::size_t i = 0; i < b.size(); ++i) {
        const float ai = a[i / stride];
        // a binary16 midpoint: 12 significant bits, the last one set
        const double sign = rng() % 2 ? -1.0 : 1.0;
        const std::uint64_t r1 = rng(), r2 = rng();
        const float m = float(sign * std::ldexp(double(2048 + 2 * (r1 % 1024) + 1), -11 + int(r2 % 7) - 3));
        b[i] = std::isfinite(ai) && ai != 0 ? float(double(m) / ai) : m;
      }
    for (float& v : acc) v = rng() % 2 ? 0.0f : f16_value(kScenes[2], rng);  // fresh sums and continued ones
    if (products == F16Products::narrow) {
      ASSERT_TRUE(f16_dot_operands(narrow_first ? a.data() : b.data(), narrow_first ? a.size() : b.size()));
    }

    std::vector<float> want = acc;
    for (int l = 0; l < width; ++l)
      for (int i = 0; i < n; ++i) {
        const float ai = a[std::size_t(i)], bi = b[std::size_t(i) * stride + std::size_t(l)];
        ties += product_is_tie(ai, bi);
        near += product_is_near_tie(ai, bi);
        want[std::size_t(l)] = A::add(want[std::size_t(l)], A::mul(ai, bi));
      }
    accumulate_f16(acc.data(), a.data(), n, b.data(), stride, width, products);
    for (int l = 0; l < width; ++l) {
      const float got = acc[std::size_t(l)], w = want[std::size_t(l)];
      std::ostringstream where;
      where << scene.name << ", kind " << int(kind)
            << (products == F16Products::narrow ? ", narrow products" : ", binary32 products")
            << (narrow_first ? ", binary16 b" : ", binary16 a") << ", n " << n
            << ", width " << width << ", lane " << l;
      ASSERT_TRUE(test::same_bits(got, w)) << where.str() << ": kernel " << got << ", FormatArith " << w;
      ++checked;
      subnormal += w != 0 && std::fabs(w) < 0x1p-14f;
      overflow += std::isinf(w);
      nan += w != w;
      zero += w == 0 && n > 0;
    }
  }
  // The cases that matter occurred (a test of only tame sums would prove little).
  EXPECT_GT(ties, 1000);
  EXPECT_GT(near, 1000);
  EXPECT_GT(subnormal, 100);
  EXPECT_GT(overflow, 100);
  EXPECT_GT(nan, 100);
  EXPECT_GT(zero, 100);
  std::printf("F16Dots: %ld sums, %ld tie products, %ld next to a tie, %ld subnormal, %ld Inf, %ld NaN, %ld zero\n",
              checked, ties, near, subnormal, overflow, nan, zero);
}

}  // namespace
}  // namespace kvfid::ref::native
