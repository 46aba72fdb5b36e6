#include "reference/calibration/kv_calibration.h"

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"

namespace kvfid::ref::quant {
namespace {

// One layer, two KV heads of two dimensions, three tokens.
ModelConfig config() {
  ModelConfig c;
  c.n_layers = 1;
  c.n_kv_heads = c.n_heads = 2;
  c.head_dim = 2;
  return c;
}

// [T=3, n_kv_heads=2, head_dim=2]: head 0 holds `head0`, head 1 `head1`, each at one element.
TapTensor kv_tap(const std::string& name, double head0, double head1) {
  TapTensor t{name, {3, 2, 2}, std::vector<double>(12, 0.0)};
  t.values[4 * 2 + 1] = head0;  // token 2, head 0, d 1
  t.values[4 * 1 + 2] = head1;  // token 1, head 1, d 0
  return t;
}

TEST(KvCalibration, ScaledSlotsMapEachHeadsAmaxOntoTheLargestValue) {
  const ModelConfig c = config();
  const KvPolicy policy = kv_policy_for(parse_kv_policy_spec("k=fp8_e4m3+v=fp8_e5m2", "test"), 1, 2);
  // 896 = 2 * 448, 57344 / 8 and 57344 / 4: power-of-two scales, exact.
  const TapSet taps = {kv_tap("layers.0.k", -896.0, 0.0), kv_tap("layers.0.v", 7168.0, -14336.0)};
  const std::vector<float> s = amax_kv_scales(policy, c, taps, "test");
  ASSERT_EQ(s.size(), 4u);  // [n_layers, 2, n_kv_heads]
  EXPECT_EQ(s[0], 2.0f);    // K head 0
  EXPECT_EQ(s[1], 1.0f);    // K head 1: all zeros, no scale to find
  EXPECT_EQ(s[2], 0.125f);
  EXPECT_EQ(s[3], 0.25f);
}

TEST(KvCalibration, AnInexactScaleRoundsUpSoTheAmaxDoesNotSaturate) {
  const KvPolicy policy = kv_policy_for(parse_kv_policy_spec("fp8_e4m3", "test"), 1, 2);
  const TapSet taps = {kv_tap("layers.0.k", 1.0, 3.0), kv_tap("layers.0.v", 0.1, 7.0)};
  const std::vector<float> s = amax_kv_scales(policy, config(), taps, "test");
  for (std::size_t i = 0; i < s.size(); ++i) {
    const double amax = std::vector<double>{1.0, 3.0, 0.1, 7.0}[i];
    EXPECT_LE(amax / s[i], 448.0) << i;
    EXPECT_GT(amax / std::nextafter(s[i], 0.0f), 448.0) << i << ": not the smallest such float";
  }
}

TEST(KvCalibration, FormatsThatIgnoreTheScaleKeepOneAndNeedNoTaps) {
  const KvPolicy policy = kv_policy_for(parse_kv_policy_spec("k=q8_0+v=f16", "test"), 1, 2);
  EXPECT_EQ(amax_kv_scales(policy, config(), {}, "test"), std::vector<float>(4, 1.0f));
}

TEST(KvCalibration, AMissingOrMisshapenTapIsBadInput) {
  const KvPolicy policy = kv_policy_for(parse_kv_policy_spec("fp8_e4m3", "test"), 1, 2);
  EXPECT_THROW(amax_kv_scales(policy, config(), {kv_tap("layers.0.k", 1, 1)}, "test"), InputError);
  TapTensor odd{"layers.0.v", {5}, std::vector<double>(5, 1.0)};
  EXPECT_THROW(amax_kv_scales(policy, config(), {kv_tap("layers.0.k", 1, 1), odd}, "test"), InputError);
}

}  // namespace
}  // namespace kvfid::ref::quant
