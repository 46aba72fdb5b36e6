// resolve_kv_policy: any block fits the K/V row, and the scale override; kivi_group and
// uniform_plain_format, which decide the engine's KV path.
#include "reference/calibration/kv_policy_fit.h"

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"

namespace kvfid::ref::quant {
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
    resolve_kv_policy(parse_kv_policy_spec(spec, "--kv"), scales, c);
  } catch (const InputError& e) {
    return e.what();
  }
  return "accepted";
}

TEST(KvPolicyFit, AnyBlockFitsTheKvRow) {
  // A K/V row the block does not divide gets a padded last block (row_blocks.h): the
  // policies a kv_dim of 16 or 40 used to refuse now resolve, per layer and K|V.
  for (const ModelConfig& c : {config(2, 1, 16), config(2, 2, 20), config(3, 2, 16)})
    for (const char* spec : {"q8_0", "int8_64", "k=f16+v=q4_0", "int4a_64+edges=1:f16", "q8_0+kivi"}) {
      const KvPolicy p = resolve_kv_policy(parse_kv_policy_spec(spec, "--kv"), {}, c);
      EXPECT_EQ(int(p.k.size()), c.n_layers) << spec;
      EXPECT_EQ(int(p.v.size()), c.n_layers) << spec;
    }
  const KvPolicy p = resolve_kv_policy(parse_kv_policy_spec("k=int4_32+v=int8a_64", "--kv"), {}, config(2, 1, 16));
  EXPECT_EQ(all_formats()[p.k[1].format].name, std::string("int4_32"));
  EXPECT_EQ(all_formats()[p.v[1].format].name, std::string("int8a_64"));
  // A spec the grammar refuses still names the flag.
  EXPECT_NE(message("q9", {}, config(2, 1, 16)).find("--kv"), std::string::npos);
}

TEST(KvPolicyFit, ScalesReplaceTheSpecsPerLayerKvAndHead) {
  const ModelConfig c = config(2, 3, 16);
  std::vector<float> scales;  // [2, 2, 3]: layer * 100 + (K 0 | V 1) * 10 + head + 1
  for (int l = 0; l < 2; ++l)
    for (int kv = 0; kv < 2; ++kv)
      for (int h = 0; h < 3; ++h) scales.push_back(float(l * 100 + kv * 10 + h + 1));
  const KvPolicy p = resolve_kv_policy(parse_kv_policy_spec("f16+scale=7", "--kv"), scales, c);
  EXPECT_EQ(p.k[1].scales, (std::vector<float>{101, 102, 103}));
  EXPECT_EQ(p.v[0].scales, (std::vector<float>{11, 12, 13}));
  EXPECT_EQ(resolve_kv_policy(parse_kv_policy_spec("f16+scale=7", "--kv"), {}, c).v[1].scales, (std::vector<float>{7, 7, 7}));
  EXPECT_NE(message("f16", std::vector<float>(11, 1.0f), c).find("expected 12 values"), std::string::npos);
  std::vector<float> bad(12, 1.0f);
  bad[5] = 0.0f;
  EXPECT_NE(message("f16", bad, c).find("KV scale 5"), std::string::npos);
  bad[5] = -2.0f;
  EXPECT_NE(message("f16", bad, c).find("finite and positive"), std::string::npos);
}

TEST(KvPolicyFit, KiviGroupIsTheKeyBlockUnderKiviOnly) {
  const ModelConfig c = config(3, 2, 16);
  const KvPolicy kivi = resolve_kv_policy(parse_kv_policy_spec("k=q8_0+v=f16+edges=1:f16+kivi", "--kv"), {}, c);
  EXPECT_EQ(kivi_group(kivi, 0), 1);  // an FP16 edge layer: every token its own group
  EXPECT_EQ(kivi_group(kivi, 1), 32);
  EXPECT_EQ(kivi_group(resolve_kv_policy(parse_kv_policy_spec("q8_0", "--kv"), {}, c), 1), 0);
}

TEST(KvPolicyFit, UniformPlainFormatOnlyWithoutHotWindowOrKivi) {
  const ModelConfig c = config(3, 2, 16);
  auto plain = [&](const std::string& spec) { return uniform_plain_format(resolve_kv_policy(parse_kv_policy_spec(spec, "--kv"), {}, c)); };
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
}  // namespace kvfid::ref::quant
