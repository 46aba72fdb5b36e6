// Every native operation of format_arith.h against the emulation's own MpArith::ieee
// (the oracle): the same bits for random operands of every kind (all codes of the
// narrow formats, binary32 values outside them, float64 weights, tiny and huge values,
// zeros of both signs, Inf, NaN) and at every rounding boundary.
#include "reference/native/format_arith.h"

#include <cmath>
#include <cstring>
#include <cstdint>
#include <functional>
#include <random>

#include <gtest/gtest.h>

#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "tests/common/test_env.h"
#include "tests/reference/native/same_bits.h"

namespace kvfid::ref::native {
namespace {

constexpr int kSamples = 200000;  // per operation and format: ~1 s for the whole file

// A value of format f: any code (zeros, subnormals, Inf and NaN included) half the
// time, else one of moderate magnitude, where sums and products stay finite.
float random_in_format(FloatFormat f, std::mt19937_64& rng) {
  const std::uint64_t r = rng();
  if (r & 1) {
    if (f != FloatFormat::f32) return float(minifloat_decode(std::uint32_t(r >> 48), f == FloatFormat::f16 ? kFp16 : kBf16));
    const std::uint32_t u = std::uint32_t(r >> 32);
    float x;
    std::memcpy(&x, &u, 4);
    return x;
  }
  const double x = std::ldexp(double(std::int64_t(r >> 8) - (std::int64_t(1) << 55)), -55 + int((r >> 1) % 24) - 12);
  return float(round_to_format(x, f));
}

// A float64 operand as the forward meets it: a binary32 value, a float64 of 53 bits,
// a tiny one (products under kTinyResult), or a special.
double random_operand(std::mt19937_64& rng) {
  const std::uint64_t r = rng();
  const double m = double(std::int64_t(r >> 11) - (std::int64_t(1) << 52)) * 0x1p-52;  // 53 bits in (-1, 1)
  switch (r % 8) {
    case 0: return float(m * std::ldexp(1.0, int(r >> 4) % 60 - 30));
    case 1: return std::ldexp(m, -1000 + int(r >> 4) % 40);
    case 2: {
      const double specials[] = {0.0, -0.0, INFINITY, -INFINITY, NAN, 1.0, 0x1p-149, 65504.0};
      return specials[(r >> 4) % 8];
    }
    default: return std::ldexp(m, int(r >> 4) % 80 - 40);
  }
}

// An operand that puts a op b within a few float64 ulps of one of the format's
// midpoints (where a rounding twice goes wrong): v a random value of the format and
// m = v + ulp(v)/2, the operand is m - a, m / a or a / m nudged by 2^-k, k in [30, 80).
double near_midpoint(FloatFormat f, float a, char op, std::mt19937_64& rng) {
  const std::uint64_t r = rng();
  const double v = std::fabs(double(random_in_format(f, rng)));
  if (!std::isfinite(v) || !std::isfinite(a) || a == 0) return 1.0;
  const double m = v + ulp_of(v, f) / 2;
  const double nudge = 1 + ((r & 1) ? 1 : -1) * std::ldexp(1.0, -30 - int(r >> 1) % 50);
  const double x = op == '+' ? m - a : op == '*' ? m / a : a / m;
  return x * nudge;
}

using MpOp = std::function<void(const MpArith&, mpfr_ptr, mpfr_srcptr, mpfr_srcptr)>;

float oracle(FloatFormat f, double a, double b, const MpOp& op) {
  const MpArith arith = MpArith::ieee(f);
  MpArray in(2, 53), out(1, arith.precision());
  mpfr_set_d(in[0], a, MPFR_RNDN);  // exact
  mpfr_set_d(in[1], b, MPFR_RNDN);
  op(arith, out[0], in[0], in[1]);
  return mpfr_get_flt(out[0], MPFR_RNDN);  // exact: the format embeds in binary32
}

template <FloatFormat F>
void check_ops(std::mt19937_64& rng) {
  using A = FormatArith<F>;
  ExponentRangeScope range;
  const MpOp add = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) { m.add(r, a, b); };
  const MpOp sub = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) { m.sub(r, a, b); };
  const MpOp mul = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) { m.mul(r, a, b); };
  const MpOp div = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) { m.div(r, a, b); };
  const MpOp sqrt = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr) { m.sqrt(r, a); };
  const MpOp exp = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr) { m.exp(r, a); };
  const MpOp set = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr) { m.set(r, a); };
  int checked = 0;
  for (int i = 0; i < kSamples; ++i) {
    const float a = random_in_format(F, rng), b = random_in_format(F, rng);
    const float w32 = random_in_format(FloatFormat::f32, rng);  // a binary32 bias or norm weight
    const double d = random_operand(rng);
    const float soft = float(round_to_format(std::ldexp(double(std::int64_t(rng() >> 20)) * 0x1p-44, -4), F));  // |x| < 2^8: exp's interesting range
    auto expect = [&](float got, float want, const char* what, double x, double y) {
      ASSERT_TRUE(test::same_bits(got, want)) << to_string(F) << " " << what << "(" << x << ", " << y << "): native "
                                        << got << ", MPFR " << want;
      ++checked;
    };
    expect(A::add(a, b), oracle(F, a, b, add), "add", a, b);
    expect(A::sub(a, b), oracle(F, a, b, sub), "sub", a, b);
    expect(A::mul(a, b), oracle(F, a, b, mul), "mul", a, b);
    expect(A::mul(a, w32), oracle(F, a, w32, mul), "mul binary32", a, w32);
    expect(A::div(a, b), oracle(F, a, b, div), "div", a, b);
    expect(A::sqrt(a), oracle(F, a, 0, sqrt), "sqrt", a, 0);
    expect(A::add_any(a, w32), oracle(F, a, w32, add), "add_any binary32", a, w32);
    expect(A::add_any(a, d), oracle(F, a, d, add), "add_any", a, d);
    expect(A::mul_any(a, d), oracle(F, a, d, mul), "mul_any", a, d);
    expect(A::div_any(a, d), oracle(F, a, d, div), "div_any", a, d);
    expect(A::round(d), oracle(F, d, 0, set), "round", d, 0);
    const double to_add = near_midpoint(F, a, '+', rng), to_mul = near_midpoint(F, a, '*', rng);
    const double to_div = near_midpoint(F, a, '/', rng);
    expect(A::add_any(a, to_add), oracle(F, a, to_add, add), "add_any near a midpoint", a, to_add);
    expect(A::mul_any(a, to_mul), oracle(F, a, to_mul, mul), "mul_any near a midpoint", a, to_mul);
    expect(A::div_any(a, to_div), oracle(F, a, to_div, div), "div_any near a midpoint", a, to_div);
    expect(A::exp(a), oracle(F, a, 0, exp), "exp", a, 0);
    expect(A::exp(soft), oracle(F, soft, 0, exp), "exp", soft, 0);
  }
  EXPECT_EQ(checked, 16 * kSamples);
}

TEST(FormatArith, F32MatchesMpfr) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  check_ops<FloatFormat::f32>(rng);
}

TEST(FormatArith, F16MatchesMpfr) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed() + 1);
  check_ops<FloatFormat::f16>(rng);
}

TEST(FormatArith, Bf16MatchesMpfr) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed() + 2);
  check_ops<FloatFormat::bf16>(rng);
}

// Rounding boundaries, where a wrong tie rule or a double rounding shows: for every
// code of the narrow formats (and random binary32 values), the midpoint to the next
// value up and the float64 values one step either side of it.
template <FloatFormat F>
void check_midpoints(const std::vector<float>& values) {
  ExponentRangeScope range;
  const MpOp set = [](const MpArith& m, mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr) { m.set(r, a); };
  for (float v : values) {
    if (!std::isfinite(v) || v < 0) continue;
    // The next value up; above the largest finite one, 2^(emax+1): their midpoint is
    // the overflow threshold.
    const double next = double(v) + ulp_of(double(v), F);
    const double mid = (double(v) + next) / 2;  // exact: at most p + 1 bits
    for (double x : {mid, std::nextafter(mid, -INFINITY), std::nextafter(mid, INFINITY), -mid}) {
      const float got = FormatArith<F>::round(x), want = oracle(F, x, 0, set);
      ASSERT_TRUE(test::same_bits(got, want)) << to_string(F) << " round(" << x << "): native " << got << ", MPFR " << want;
    }
  }
}

TEST(FormatArith, RoundsMidpointsAsMpfr) {
  SCOPED_TRACE(test::seed_trace());
  for (FloatFormat f : {FloatFormat::f16, FloatFormat::bf16}) {
    std::vector<float> codes;
    for (std::uint32_t c = 0; c < 0x8000u; ++c) codes.push_back(float(minifloat_decode(c, f == FloatFormat::f16 ? kFp16 : kBf16)));
    if (f == FloatFormat::f16) check_midpoints<FloatFormat::f16>(codes);
    else check_midpoints<FloatFormat::bf16>(codes);
  }
  std::mt19937_64 rng(test::test_seed());
  std::vector<float> f32;
  for (int i = 0; i < 100000; ++i) f32.push_back(random_in_format(FloatFormat::f32, rng));
  f32.push_back(0x1p-149f);
  f32.push_back(std::nextafter(INFINITY, 0.0f));
  check_midpoints<FloatFormat::f32>(f32);
}

// The round-to-odd step itself: exact values stay, inexact ones land on the odd
// neighbour towards the exact value.
TEST(FormatArith, ToOddPicksTheOddNeighbour) {
  EXPECT_EQ(to_odd(1.0, 0.0), 1.0);
  EXPECT_EQ(to_odd(1.0, 0x1p-60), 1.0 + 0x1p-52);
  EXPECT_EQ(to_odd(1.0, -0x1p-60), 1.0 - 0x1p-53);
  EXPECT_EQ(to_odd(-1.0, -0x1p-60), -1.0 - 0x1p-52);
  EXPECT_EQ(to_odd(1.0 + 0x1p-52, 0x1p-60), 1.0 + 0x1p-52);  // already odd
}

}  // namespace
}  // namespace kvfid::ref::native
