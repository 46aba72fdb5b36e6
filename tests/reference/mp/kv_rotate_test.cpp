// The reference's rotations (kv_rotate.h): in exact arithmetic a rotation and its
// transpose compose to the identity -- exactly where R is orthogonal in FP32 (Hadamard
// on a power of 4), else within R^T R - I (kv_rotation.h's rotation_orthogonality_error);
// the plain (ieee) product is the column-order rounding the projections use.
#include "reference/mp/kv_rotate.h"

#include <cmath>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

constexpr mpfr_prec_t kExactBits = 256;  // holds every sum below exactly (53-bit values, 24-bit entries, <= 2^8 terms)

MpArray copy(const MpArray& a) {
  MpArray b(a.size(), a.precision());
  for (std::size_t i = 0; i < a.size(); ++i) mpfr_set(b[i], a[i], MPFR_RNDN);
  return b;
}

TEST(MpKvRotate, RotateThenBackIsTheIdentityExactlyWhereROrthogonal) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  for (int d : {4, 16, 64})
    for (auto seed : {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{5}}) {
      const quant::Rotation r = quant::make_rotation({quant::RotationKind::hadamard, seed}, d, "test");
      const int rows = 3;
      MpArray x = test::random_mp_array(std::size_t(rows) * d, 53, test::test_seed() + d);
      MpArray y(x.size(), kExactBits);
      for (std::size_t i = 0; i < x.size(); ++i) mpfr_set(y[i], x[i], MPFR_RNDN);
      rotate_rows(y, r, false, rows, MpArith::exact(kExactBits), 1);
      bool moved = false;
      for (std::size_t i = 0; i < x.size(); ++i) moved = moved || mpfr_cmp(y[i], x[i]) != 0;
      EXPECT_TRUE(moved) << "the rotation left x unchanged: the identity below would prove nothing";
      const MpArray back = to_model_basis(y, r, rows, 1);
      for (std::size_t i = 0; i < x.size(); ++i) ASSERT_EQ(mpfr_cmp(back[i], x[i]), 0) << "d " << d << " element " << i;
    }
}

// Elsewhere R^T R = I + E: |R^T R x - x|_i <= |E|_max sum_j |x_j|.
TEST(MpKvRotate, ElsewhereTheIdentityWithinROrthogonalityError) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  for (const quant::RotationSpec& spec : std::vector<quant::RotationSpec>{{quant::RotationKind::hadamard, 1},
                                                                           {quant::RotationKind::orthogonal, 2}})
    for (int d : {8, 24, 32}) {
      if (spec.kind == quant::RotationKind::hadamard && d == 24) continue;
      const quant::Rotation r = quant::make_rotation(spec, d, "test");
      const double e = quant::rotation_orthogonality_error(r);
      MpArray x = test::random_mp_array(std::size_t(d), 53, test::test_seed());
      MpArray y = copy(x);
      rotate_rows(y, r, false, 1, MpArith::exact(kExactBits), 1);
      const MpArray back = to_model_basis(y, r, 1, 1);
      double l1 = 0;
      for (int j = 0; j < d; ++j) l1 += std::fabs(mpfr_get_d(x[j], MPFR_RNDN));
      for (int i = 0; i < d; ++i)
        EXPECT_LE(std::fabs(mpfr_get_d(back[i], MPFR_RNDN) - mpfr_get_d(x[i], MPFR_RNDN)), e * l1 * (1 + 1e-9))
            << quant::to_string(spec) << " d " << d << " i " << i;
    }
}

// The plain product: output i = ((R_i0 x_0 + R_i1 x_1) + ...) in FP32, each product
// and sum rounded -- computed here with floats (no contraction, -ffp-contract=off).
TEST(MpKvRotate, IeeeArithmeticIsThePlainColumnOrderProduct) {
  ExponentRangeScope range;
  const quant::Rotation r = quant::make_rotation({quant::RotationKind::orthogonal, 9}, 8, "test");
  const std::vector<float> m = quant::dense_rotation(r);
  std::vector<float> x = {1.5f, -0.25f, 3.0e-3f, 7.0f, -2.5f, 0.125f, 9.75f, -1.0f / 3};
  MpArray y(8, 24);
  for (int j = 0; j < 8; ++j) mpfr_set_flt(y[j], x[j], MPFR_RNDN);
  rotate_rows(y, r, false, 1, MpArith::ieee(FloatFormat::f32), 1);
  for (int i = 0; i < 8; ++i) {
    float acc = 0.0f;
    for (int j = 0; j < 8; ++j) {
      const float p = m[std::size_t(i) * 8 + j] * x[j];
      acc = acc + p;
    }
    EXPECT_EQ(mpfr_get_flt(y[i], MPFR_RNDN), acc) << i;
  }
}

}  // namespace
}  // namespace kvfid::ref
