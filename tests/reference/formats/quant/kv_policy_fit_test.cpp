// resolve_kv_policy: the shape checks and the scale override; kivi_group and
// uniform_plain_format, which decide the engine's KV path.
#include "reference/formats/quant/kv_policy_fit.h"

#include <gtest/gtest.h>

#include "reference/io/input_error.h"

namespace kvfid::quant {
namespace {

ModelConfig config(int n_layers, int n_kv_heads, int head_dim) {
  ModelConfig c;
  c.n_layers = n_layers;
  c.n_kv_heads = n_kv_heads;
  c.n_heads = n_kv_heads;
  c.head_dim = head_dim;
  return c;
}

std::string message(const std::string& spec, const std::vector<float>& scales, const ModelConfig& c) {
  try {
    resolve_kv_policy(spec, scales, c, "--kv");
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(KvPolicyFit, BlocksMustTileTheKvRow) {
  // q8_0's 32-element blocks: a K/V row of 2 x 16 fits, 1 x 16 does not.
  EXPECT_NO_THROW(resolve_kv_policy("q8_0", {}, config(2, 2, 16), "--kv"));
  const std::string m = message("q8_0", {}, config(2, 1, 16));
  EXPECT_NE(m.find("--kv"), std::string::npos) << m;
  EXPECT_NE(m.find("layer 0 K format q8_0 has blocks of 32 elements"), std::string::npos) << m;
  EXPECT_NE(m.find("kv_dim=16"), std::string::npos) << m;
  EXPECT_NE(message("k=f16+v=q8_0", {}, config(2, 1, 16)).find("layer 0 V format q8_0"), std::string::npos);
  // Only the middle layer in q8_0: the error names it.
  EXPECT_NE(message("q8_0+edges=1:f16", {}, config(3, 1, 16)).find("layer 1 K"), std::string::npos);
}

TEST(KvPolicyFit, KiviKeysRunAlongTokensSoAnyRowFits) {
  EXPECT_NO_THROW(resolve_kv_policy("k=q8_0+v=f16+kivi", {}, config(2, 1, 16), "--kv"));
  // The values still run along the row.
  EXPECT_NE(message("q8_0+kivi", {}, config(2, 1, 16)).find("layer 0 V format q8_0"), std::string::npos);
}

TEST(KvPolicyFit, ScalesReplaceTheSpecsPerLayerKvAndHead) {
  const ModelConfig c = config(2, 3, 16);
  std::vector<float> scales;  // [2, 2, 3]: layer * 100 + (K 0 | V 1) * 10 + head + 1
  for (int l = 0; l < 2; ++l)
    for (int kv = 0; kv < 2; ++kv)
      for (int h = 0; h < 3; ++h) scales.push_back(float(l * 100 + kv * 10 + h + 1));
  const KvPolicy p = resolve_kv_policy("f16+scale=7", scales, c, "--kv");
  EXPECT_EQ(p.k[1].scales, (std::vector<float>{101, 102, 103}));
  EXPECT_EQ(p.v[0].scales, (std::vector<float>{11, 12, 13}));
  EXPECT_EQ(resolve_kv_policy("f16+scale=7", {}, c, "--kv").v[1].scales, (std::vector<float>{7, 7, 7}));
  EXPECT_NE(message("f16", std::vector<float>(11, 1.0f), c).find("expected 12 values"), std::string::npos);
  std::vector<float> bad(12, 1.0f);
  bad[5] = 0.0f;
  EXPECT_NE(message("f16", bad, c).find("KV scale 5"), std::string::npos);
  bad[5] = -2.0f;
  EXPECT_NE(message("f16", bad, c).find("finite and positive"), std::string::npos);
}

TEST(KvPolicyFit, KiviGroupIsTheKeyBlockUnderKiviOnly) {
  const ModelConfig c = config(3, 2, 16);
  const KvPolicy kivi = resolve_kv_policy("k=q8_0+v=f16+edges=1:f16+kivi", {}, c, "--kv");
  EXPECT_EQ(kivi_group(kivi, 0), 1);  // an FP16 edge layer: every token its own group
  EXPECT_EQ(kivi_group(kivi, 1), 32);
  EXPECT_EQ(kivi_group(resolve_kv_policy("q8_0", {}, c, "--kv"), 1), 0);
}

TEST(KvPolicyFit, UniformPlainFormatOnlyWithoutHotWindowOrKivi) {
  const ModelConfig c = config(3, 2, 16);
  auto plain = [&](const std::string& spec) { return uniform_plain_format(resolve_kv_policy(spec, {}, c, "--kv")); };
  EXPECT_EQ(plain("f32"), FloatFormat::f32);
  EXPECT_EQ(plain("f16"), FloatFormat::f16);
  EXPECT_EQ(plain("k=bf16+v=bf16"), FloatFormat::bf16);
  EXPECT_EQ(plain("f16+edges=1:f16"), FloatFormat::f16);
  EXPECT_EQ(plain("f16+scale=3"), FloatFormat::f16);  // plain formats ignore the scale
  EXPECT_EQ(plain("k=f16+v=bf16"), std::nullopt);
  EXPECT_EQ(plain("f16+edges=1:f32"), std::nullopt);
  EXPECT_EQ(plain("f16+hot=4"), std::nullopt);
  EXPECT_EQ(plain("q8_0"), std::nullopt);
  EXPECT_EQ(plain("k=q8_0+v=f16+kivi"), std::nullopt);
}

}  // namespace
}  // namespace kvfid::quant
