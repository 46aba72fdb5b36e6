// row_dot_simd against row_dot_host, bit for bit: every row length up to four warp
// steps plus a partial one (all tail shapes), random FP32, FP16 and BF16 weights over a wide
// range of magnitudes and signs (cancellation makes a reordered sum show).
#include <cstring>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "reference/numeric/convert.h"
#include "cuda/common/row_dot.h"
#include "cuda/twin/row_dot_simd.h"
#include "tests/common/test_env.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using ref::FloatFormat;

constexpr int kMaxLength = 4 * num::kRowStep + num::kRowStep - 1;

float wide_value(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> mantissa(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exponent(-20, 20);
  return std::ldexp(mantissa(rng), exponent(rng));
}

template <FloatFormat F>
void expect_same_bits(std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  using T = typename num::Storage<F>::T;
  for (int n = 1; n <= kMaxLength; n += (n < 300 ? 1 : 7)) {
    std::vector<T> w(n);
    std::vector<float> x(n), xt(n);
    for (int k = 0; k < n; ++k) {
      w[k] = num::Storage<F>::store(wide_value(rng));
      x[k] = wide_value(rng);
    }
    twin::lane_major(x.data(), n, xt.data());
    const float want = num::row_dot_host<F>(w.data(), x.data(), n);
    const float got = twin::row_dot_simd<F>(w.data(), x.data(), xt.data(), n);
    ASSERT_EQ(num::bits_of(got), num::bits_of(want)) << "n " << n << ": " << got << " vs " << want;
  }
}

TEST(RowDotSimd, SameBitsAsRowDotHost) {
  if (!twin::row_dot_simd_available()) GTEST_SKIP() << "no AVX2 + FMA + F16C on this CPU: the twin uses row_dot_host";
  SCOPED_TRACE(test::seed_trace());
  const std::uint64_t seed = test::test_seed();
  expect_same_bits<FloatFormat::f32>(seed);
  expect_same_bits<FloatFormat::f16>(seed + 1);
  expect_same_bits<FloatFormat::bf16>(seed + 2);
}

TEST(RowDotSimd, LaneMajorOrder) {
  std::vector<float> x(2 * num::kRowStep + 5), xt(2 * num::kRowStep);
  for (std::size_t k = 0; k < x.size(); ++k) x[k] = float(k);
  twin::lane_major(x.data(), int(x.size()), xt.data());
  // Step 1, element t = 3 of lane 5: x[256 + 5*8 + 3].
  EXPECT_EQ(xt[(1 * num::kVec + 3) * num::kWarp + 5], float(num::kRowStep + 5 * num::kVec + 3));
}

}  // namespace
}  // namespace kvfid::engine
