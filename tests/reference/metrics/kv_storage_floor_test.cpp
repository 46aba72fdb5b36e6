#include "reference/metrics/kv_storage_floor.h"

#include <cmath>

#include <gtest/gtest.h>

#include "reference/metrics/fidelity_report.h"
#include "reference/metrics/gate.h"
#include "tests/reference/metrics/tap_builders.h"

namespace kvfid::ref {
namespace {

using test::make_tap;

quant::KvPolicy policy(const std::string& spec) { return quant::parse_kv_policy(spec, 2, 1, "test"); }

// FP16's round-trip bound at |x| = 1.5 (normal range) is 1.5 * 2^-11 (half an ULP
// relative to the value, plain_float.h); a step is twice that, the floor kGateFactor
// steps.
constexpr double kF16FloorAt1p5 = kGateFactor * 2 * 1.5 * 0x1p-11;

TEST(KvStorageFloor, OnlyTheKAndVTapsOfAStoredLayerHaveOne) {
  const quant::KvPolicy p = policy("f16");
  for (const char* name : {"logits", "layers.0.q", "layers.0.attn_out", "layers.k", "layers.x.k", "layers.2.k"})
    EXPECT_FALSE(kv_storage_floor(make_tap(name, {1}, {1.5}), p)) << name;
  EXPECT_TRUE(kv_storage_floor(make_tap("layers.1.v", {1}, {1.5}), p));
}

TEST(KvStorageFloor, IsKTimesOneStepOfTheSlotsFormatAtTheLargestValue) {
  const std::optional<StorageFloor> f = kv_storage_floor(make_tap("layers.0.k", {2}, {-1.5, 0.5}), policy("f16"));
  ASSERT_TRUE(f);
  EXPECT_EQ(f->max_abs, kF16FloorAt1p5);
  EXPECT_DOUBLE_EQ(f->sqrt_nmse, kF16FloorAt1p5 / std::sqrt((1.5 * 1.5 + 0.5 * 0.5) / 2));
}

TEST(KvStorageFloor, ExactStorageHasNoneButAHotFormAddsFp16s) {
  const TapTensor k = make_tap("layers.0.k", {1}, {1.5});
  EXPECT_EQ(kv_storage_floor(k, policy("f32"))->max_abs, 0);
  EXPECT_EQ(kv_storage_floor(k, policy("f32+hot=4"))->max_abs, kF16FloorAt1p5);
  // Each slot is judged by its own format: k= applies to K only.
  EXPECT_EQ(kv_storage_floor(make_tap("layers.0.v", {1}, {1.5}), policy("k=f16+v=f32"))->max_abs, 0);
  EXPECT_GT(kv_storage_floor(k, policy("int4_32"))->max_abs, kF16FloorAt1p5);
}

// The report applies the floor: a K tap one FP16 step off where the baseline is exact
// fails the arithmetic's floor alone (4 FP32 ULPs) and passes with the FP16 cache's.
TEST(KvStorageFloor, TheReportHoldsKAndVBoundsAboveIt) {
  const TapTensor golden = make_tap("layers.0.k", {2}, {1.5, -0.75});
  const TapTensor one_step = make_tap("layers.0.k", {2}, {1.5 + 0x1p-10, -0.75});
  const FidelityReport without = build_fidelity_report({golden}, {one_step}, {golden}, {});
  const FidelityReport with =
      build_fidelity_report({golden}, {one_step}, {golden}, {FloatFormat::f16, FloatFormat::f32, policy("f16")});
  EXPECT_FALSE(without.pass());
  EXPECT_TRUE(with.pass());
  const TapTensor two_floors = make_tap("layers.0.k", {2}, {1.5 + 2 * kF16FloorAt1p5, -0.75});
  EXPECT_FALSE(
      build_fidelity_report({golden}, {two_floors}, {golden}, {FloatFormat::f16, FloatFormat::f32, policy("f16")})
          .pass());
}

}  // namespace
}  // namespace kvfid::ref
