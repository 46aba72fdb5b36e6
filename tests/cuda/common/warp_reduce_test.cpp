// The host model of the warp butterfly and the matvec order.
#include "cuda/common/warp_reduce.h"

#include <random>

#include <gtest/gtest.h>

#include "cuda/common/row_dot.h"
#include "tests/common/test_env.h"

namespace kvfid::engine {
namespace {

// What the device does: all 32 lanes, each level reading the previous level's values.
template <class Op>
std::vector<float> full_butterfly(std::vector<float> lanes, Op op) {
  for (int offset = 16; offset >= 1; offset /= 2) {
    std::vector<float> next(32);
    for (int i = 0; i < 32; ++i) next[i] = op(lanes[i], lanes[i ^ offset]);
    lanes = next;
  }
  return lanes;
}

std::vector<float> random_lanes(std::mt19937_64& rng) {
  std::uniform_real_distribution<float> mag(-1.0f, 1.0f);
  std::uniform_int_distribution<int> exp(-20, 20);
  std::vector<float> v(32);
  for (float& x : v) x = std::ldexp(mag(rng), exp(rng));  // wide exponent range: order matters
  return v;
}

TEST(EngineWarpReduce, HostModelIsLaneZeroOfTheFullButterfly) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  for (int trial = 0; trial < 2000; ++trial) {
    const std::vector<float> v = random_lanes(rng);
    const std::vector<float> sum = full_butterfly(v, num::Add());
    const std::vector<float> mx = full_butterfly(v, num::Max());
    for (int i = 0; i < 32; ++i) {
      ASSERT_EQ(num::bits_of(sum[i]), num::bits_of(sum[0])) << "all lanes agree (IEEE + commutes)";
      ASSERT_EQ(num::bits_of(mx[i]), num::bits_of(mx[0]));
    }
    std::vector<float> a = v, b = v;
    ASSERT_EQ(num::bits_of(num::butterfly_host<num::Add>(a.data())), num::bits_of(sum[0]));
    ASSERT_EQ(num::bits_of(num::butterfly_host<num::Max>(b.data())), num::bits_of(mx[0]));
  }
}

// The butterfly is a specific tree: on wide-ranging data it differs from a left-to-right
// sum somewhere, so a change of tree would be caught by the bit-exact engine tests.
TEST(EngineWarpReduce, TreeDiffersFromSequentialSum) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  int differ = 0;
  for (int trial = 0; trial < 200; ++trial) {
    std::vector<float> v = random_lanes(rng);
    float seq = 0.0f;
    for (float x : v) seq = seq + x;
    differ += num::butterfly_host<num::Add>(v.data()) != seq;
  }
  EXPECT_GT(differ, 0);
}

// row_dot_host against the order written out element by element: element k goes to lane
// (k / 8) % 32, lanes accumulate by fma in increasing k, then the butterfly.
TEST(EngineWarpReduce, RowDotOrder) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::uniform_real_distribution<float> u(-1.0f, 1.0f);
  for (int n : {1, 7, 8, 9, 64, 172, 255, 256, 257, 1000}) {
    std::vector<float> w(n), x(n);
    for (int k = 0; k < n; ++k) w[k] = u(rng), x[k] = std::ldexp(u(rng), k % 13);
    float lanes[32] = {};
    for (int k = 0; k < n; ++k) lanes[(k / 8) % 32] = std::fmaf(w[k], x[k], lanes[(k / 8) % 32]);
    std::vector<float> l(lanes, lanes + 32);
    const float want = full_butterfly(l, num::Add())[0];
    EXPECT_EQ(num::bits_of(num::row_dot_host<ref::FloatFormat::f32>(w.data(), x.data(), n)), num::bits_of(want)) << "n=" << n;
  }
}

}  // namespace
}  // namespace kvfid::engine
