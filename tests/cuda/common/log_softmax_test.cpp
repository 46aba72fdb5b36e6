// The engine's log-softmax (num::log_softmax_host, which the GPU kernel matches bit for
// bit) against float64 within the bound derived in log_softmax_reference.h, on rows of
// many widths (fewer elements than threads, one per thread, several per thread, a
// Qwen-sized vocabulary) and spreads.
#include "cuda/common/log_softmax.h"

#include <cmath>
#include <random>
#include <string>
#include <vector>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/cuda/common/log_softmax_reference.h"

namespace kvfid::engine {
namespace {

// Empty when every value is within its bound and exp of the values sums to 1 within
// the sum bound; else the first violation. Also reports the largest error / bound.
std::string check_row(const std::vector<float>& x, double& worst_ratio) {
  const int n = int(x.size());
  std::vector<float> lp(n);
  num::log_softmax_host(x.data(), n, lp.data());
  bool below_zero = false;
  for (float v : lp) {
    if (!std::isfinite(v)) return "non-finite log-probability";
    below_zero |= v < 0;
  }
  if (n > 1 && !below_zero) return "no log-probability below zero";
  const test::LogSoftmaxReference ref = test::log_softmax_reference(x.data(), n);
  double sum = 0;
  for (int k = 0; k < n; ++k) {
    const double err = std::fabs(double(lp[k]) - ref.exact[k]);
    if (!(err <= ref.bound[k]))
      return "element " + std::to_string(k) + ": error " + std::to_string(err) + " > bound " + std::to_string(ref.bound[k]);
    worst_ratio = std::max(worst_ratio, err / ref.bound[k]);
    sum += std::exp(double(lp[k]));
  }
  if (!(std::fabs(sum - 1) <= ref.sum_bound))
    return "sum of exp = 1 + " + std::to_string(sum - 1) + ", bound " + std::to_string(ref.sum_bound);
  return "";
}

TEST(EngineLogSoftmax, RandomRowsWithinTheDerivedBound) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  double worst_ratio = 0;
  for (int n : {2, 31, 96, 255, 256, 257, 1000, 4099, 151936})
    for (double spread : {0.5, 4.0, 30.0}) {
      SCOPED_TRACE("n " + std::to_string(n) + " spread " + std::to_string(spread));
      std::normal_distribution<float> d(float(spread) * 0.3f, float(spread));
      std::vector<float> x(n);
      for (float& v : x) v = d(rng);
      EXPECT_EQ(check_row(x, worst_ratio), "");
    }
  std::printf("log-softmax: largest error / bound %.3f\n", worst_ratio);
}

// One logit far above the rest: every other exp underflows, the sum is exactly 1 and
// the top log-probability exactly 0. Ties and a single element are exact too.
TEST(EngineLogSoftmax, DegenerateRows) {
  double worst_ratio = 0;
  std::vector<float> dominant(300, -1.0f);
  dominant[123] = 200.0f;
  EXPECT_EQ(check_row(dominant, worst_ratio), "");
  std::vector<float> lp(dominant.size());
  num::log_softmax_host(dominant.data(), int(dominant.size()), lp.data());
  EXPECT_EQ(lp[123], 0.0f);
  EXPECT_EQ(lp[0], -201.0f);

  float one = 3.5f, out = 1.0f;
  num::log_softmax_host(&one, 1, &out);
  EXPECT_EQ(out, 0.0f);

  const std::vector<float> ties(4, 7.25f);
  std::vector<float> tie_lp(4);
  num::log_softmax_host(ties.data(), 4, tie_lp.data());
  for (float v : tie_lp) EXPECT_EQ(v, num::log_portable(4.0f) * -1.0f);
  EXPECT_EQ(check_row(ties, worst_ratio), "");
}

}  // namespace
}  // namespace kvfid::engine
