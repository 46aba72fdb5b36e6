// The native projection against the MPFR emulation's (reference/mp/projection.h with
// MpArith::ieee): random matrices (binary32 rows, BF16 and binary16 rows -- binary16
// arithmetic's F16C kernel -- and rows binary32 cannot hold), random activations of the
// format, float64 biases, token counts around the kernels' 32- and 64-token blocks,
// several thread counts: the same bits.
#include "reference/native/native_projection.h"

#include <cstring>
#include <random>

#include <gtest/gtest.h>

#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/projection.h"
#include "tests/common/test_env.h"

namespace kvfid::ref::native {
namespace {

template <FloatFormat F>
void check_projection(std::mt19937_64& rng) {
  ExponentRangeScope range;
  const MpArith arith = MpArith::ieee(F);
  auto value = [&] { return std::ldexp(double(std::int64_t(rng() >> 11) - (std::int64_t(1) << 52)), -52 - int(rng() % 6)); };
  for (int tokens : {1, 31, 32, 33, 70, 129}) {
    const int rows = 1 + int(rng() % 9), cols = 1 + int(rng() % 40);
    Matrix m(rows, cols);
    for (int r = 0; r < rows; ++r)
      for (int c = 0; c < cols; ++c)  // rows 0, 4, 8: float64; 1, 5: binary32; 2, 6: BF16; 3, 7: binary16
        m.element(r, c) = r % 4 == 0   ? value()
                          : r % 4 == 1 ? double(float(value()))
                                       : round_to_format(value() * 8, r % 4 == 2 ? FloatFormat::bf16 : FloatFormat::f16);
    std::vector<float> x(std::size_t(tokens) * cols);
    MpArray x_mp(x.size(), arith.precision());
    for (std::size_t i = 0; i < x.size(); ++i) {
      x[i] = float(round_to_format(value() * 8, F));
      mpfr_set_flt(x_mp[i], x[i], MPFR_RNDN);
    }
    std::vector<double> bias;
    if (rng() % 2)
      for (int r = 0; r < rows; ++r) bias.push_back(value());
    MpArray bias_mp(bias.size(), 53);
    for (std::size_t r = 0; r < bias.size(); ++r) mpfr_set_d(bias_mp[r], bias[r], MPFR_RNDN);
    MpArray expected(std::size_t(tokens) * rows, arith.precision());
    ref::project(expected, MpMatrixRef{m, 53}, x_mp, bias_mp, tokens, arith, 1);
    for (int threads : {1, 2, 3}) {
      std::vector<float> out(std::size_t(tokens) * rows);
      project<F>(out, m, x, bias, tokens, threads);
      for (std::size_t i = 0; i < out.size(); ++i) {
        const float want = mpfr_get_flt(expected[i], MPFR_RNDN);
        ASSERT_EQ(std::memcmp(&out[i], &want, 4), 0)
            << to_string(F) << " tokens " << tokens << " threads " << threads << " [" << i << "]: native " << out[i]
            << ", MPFR " << want;
      }
    }
  }
}

TEST(NativeProjection, MatchesTheMpfrEmulation) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  for (int round = 0; round < 20; ++round) {
    check_projection<FloatFormat::f32>(rng);
    check_projection<FloatFormat::f16>(rng);
    check_projection<FloatFormat::bf16>(rng);
  }
}

}  // namespace
}  // namespace kvfid::ref::native
