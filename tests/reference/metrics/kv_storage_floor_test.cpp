#include "reference/metrics/kv_storage_floor.h"

#include <cmath>

#include <gtest/gtest.h>

#include "reference/metrics/fidelity_report.h"
#include "reference/metrics/gate.h"
#include "tests/reference/metrics/tap_builders.h"

namespace kvfid::ref {
namespace {

using test::make_tap;

quant::KvPolicy policy(const std::string& spec) { return quant::kv_policy_for(quant::parse_kv_policy_spec(spec, "test"), 2, 1); }

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

// Per-head static scales (FP8, one scale per KV head): the floor is one step at the
// head whose scale gives the largest step, whichever head that is. FP8 E4M3's
// round-trip bound (fp8.h) at |x| = 1.5 is scale * (2^-23 t + 2^-149 + half_ulp(t)),
// t = 1.5 / scale: at scale 1 half_ulp(1.5) = 2^-4; at scale 1024 t falls below the
// smallest normal 2^-6, where the subnormal ulp 2^-9 makes half_ulp = 2^-10. Steps are
// twice the bound and floors kGateFactor steps (2^-149 vanishes in float64).
constexpr double kE4m3FloorAt1p5Scale1 = kGateFactor * 2 * (0x1p-4 + 1.5 * 0x1p-23);
constexpr double kE4m3FloorAt1p5Scale1024 = kGateFactor * 2 * 1024 * (0x1p-10 + 1.5 * 0x1p-33);

TEST(KvStorageFloor, PerHeadScalesGiveTheLargestStepOfAnyHead) {
  constexpr int kLayers = 2, kHeads = 3;
  const TapTensor k = make_tap("layers.1.k", {2, kHeads}, {0.25, -1.5, 1, 0.5, 0.75, -0.125});
  for (int coarse = 0; coarse < kHeads; ++coarse) {
    SCOPED_TRACE(testing::Message() << "scale 1024 at head " << coarse);
    quant::KvPolicy p = quant::kv_policy_for(quant::parse_kv_policy_spec("fp8_e4m3", "test"), kLayers, kHeads);
    for (quant::KvSlot& slot : p.k) slot.scales = {1, 1, 1};
    p.k[1].scales[coarse] = 1024;
    EXPECT_DOUBLE_EQ(kv_storage_floor(k, p)->max_abs, kE4m3FloorAt1p5Scale1024);
    EXPECT_DOUBLE_EQ(kv_storage_floor(make_tap("layers.0.k", {1}, {1.5}), p)->max_abs, kE4m3FloorAt1p5Scale1);
  }
}

// K and V of one layer carry their own scales, and so does every layer.
TEST(KvStorageFloor, EachSlotUsesItsOwnScales) {
  constexpr int kLayers = 2, kHeads = 2;
  quant::KvPolicy p = quant::kv_policy_for(quant::parse_kv_policy_spec("fp8_e4m3", "test"), kLayers, kHeads);
  p.k = {{p.k[0].format, {1, 1}}, {p.k[1].format, {1, 1}}};
  p.v = {{p.v[0].format, {1, 1}}, {p.v[1].format, {1, 1024}}};
  for (const char* name : {"layers.0.k", "layers.0.v", "layers.1.k"})
    EXPECT_DOUBLE_EQ(kv_storage_floor(make_tap(name, {1}, {1.5}), p)->max_abs, kE4m3FloorAt1p5Scale1) << name;
  EXPECT_DOUBLE_EQ(kv_storage_floor(make_tap("layers.1.v", {1}, {1.5}), p)->max_abs, kE4m3FloorAt1p5Scale1024);
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
