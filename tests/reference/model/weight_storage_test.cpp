// Weight formats: names, the block-fit check, and the stored model -- matrices
// quantized row-wise in blocks from their FP32 roundings and decoded exactly, norm
// weights and biases in FP32 under every format.
#include "reference/model/weight_storage.h"

#include <cmath>

#include <gtest/gtest.h>

#include "reference/util/input_error.h"
#include "reference/synth/synthetic_model.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

// A shape whose every matrix width (dim 64, q_dim 64, hidden 96) is a multiple of 32.
ModelConfig blockable_config() {
  ModelConfig c = test::tiny_config(2);
  c.dim = 64, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 16, c.hidden = 96, c.qkv_bias = true, c.arch = Arch::qwen2;
  return c;
}

TEST(WeightStorage, NamesPlainAndBlockFormats) {
  for (const auto& [name, canonical] : {std::pair{"f32", "f32"}, std::pair{"fp32", "f32"}, std::pair{"f16", "f16"},
                                        std::pair{"fp16", "f16"}, std::pair{"bf16", "bf16"}}) {
    const WeightFormat f = weight_format_from_string(name, "--weights");
    EXPECT_EQ(f.name, canonical);
    ASSERT_TRUE(f.plain.has_value()) << name;
    EXPECT_EQ(to_string(*f.plain), canonical);
  }
  const WeightFormat q = weight_format_from_string("q8_0", "--weights");
  EXPECT_EQ(q.name, "q8_0");
  EXPECT_FALSE(q.plain.has_value());
  EXPECT_EQ(quant::all_formats()[q.codec].name, std::string("q8_0"));
  try {
    weight_format_from_string("q3_k", "--weights");
    ADD_FAILURE() << "q3_k accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("--weights"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("q3_k"), std::string::npos) << e.what();
  }
}

TEST(WeightStorage, BlocksMustDivideEveryMatrixWidth) {
  const WeightFormat q = weight_format_from_string("q8_0", "--weights");
  EXPECT_NO_THROW(check_weight_format_fits(q, blockable_config()));
  ModelConfig stories_like = blockable_config();
  stories_like.hidden = 172;  // stories260K's
  try {
    check_weight_format_fits(q, stories_like);
    ADD_FAILURE() << "hidden 172 accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("172 columns of hidden (w2)"), std::string::npos) << e.what();
  }
  ModelConfig narrow = blockable_config();
  narrow.dim = 48;
  EXPECT_THROW(check_weight_format_fits(q, narrow), InputError);
  // Plain formats have no blocks.
  EXPECT_NO_THROW(check_weight_format_fits(weight_format_from_string("f16", "--weights"), stories_like));
}

TEST(WeightStorage, BlockFormatQuantizesEachRowFromItsFp32Rounding) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = make_synthetic_model(blockable_config(), test::test_seed());
  const WeightFormat q = weight_format_from_string("q8_0", "--weights");
  const quant::FormatInfo& f = quant::all_formats()[q.codec];
  const Model s = stored_model(m, q);
  // Row r of wq, block b, recomputed here from the codec alone.
  const Matrix& w = m.layers[1].wq;
  for (int r = 0; r < w.rows; ++r)
    for (int b = 0; b < w.cols / f.block; ++b) {
      std::vector<float> x(f.block);
      for (int i = 0; i < f.block; ++i) x[i] = float(w.at(r, b * f.block + i));
      std::vector<std::uint8_t> code(f.bytes);
      f.encode(x.data(), code.data(), {});
      for (int i = 0; i < f.block; ++i)
        ASSERT_EQ(s.layers[1].wq.at(r, b * f.block + i), f.decode_exact(code.data(), i, {})) << r << " " << b << " " << i;
    }
  // Quantization moved most weights: the comparison above is not of the identity.
  int moved = 0;
  const std::vector<double> before = w.values(), after = s.layers[1].wq.values();
  for (std::size_t i = 0; i < before.size(); ++i) moved += after[i] != before[i];
  EXPECT_GT(moved, int(before.size()) / 2);
}

TEST(WeightStorage, NormsAndBiasesStayFp32UnderEveryFormat) {
  SCOPED_TRACE(test::seed_trace());
  Model m = make_synthetic_model(blockable_config(), test::test_seed());
  m.layers[0].attn_norm[0] = 1.0 + 0x1p-40;  // not an FP32 value
  m.layers[0].bq[3] = 0.1;                   // nor this
  for (const char* name : {"f32", "f16", "bf16", "q8_0"}) {
    const Model s = stored_model(m, weight_format_from_string(name, "--weights"));
    EXPECT_EQ(s.layers[0].attn_norm[0], 1.0) << name;
    EXPECT_EQ(s.layers[0].bq[3], double(0.1f)) << name;
    for (std::size_t l = 0; l < m.layers.size(); ++l)
      for (auto v : {&LayerWeights::attn_norm, &LayerWeights::ffn_norm, &LayerWeights::bk, &LayerWeights::bv})
        for (std::size_t i = 0; i < (m.layers[l].*v).size(); ++i)
          ASSERT_EQ((s.layers[l].*v)[i], double(float((m.layers[l].*v)[i]))) << name;
    for (std::size_t i = 0; i < m.final_norm.size(); ++i) ASSERT_EQ(s.final_norm[i], double(float(m.final_norm[i])));
  }
  // Plain formats round each matrix element once from its exact value.
  const Model h = stored_model(m, weight_format_from_string("f16", "--weights"));
  const std::vector<double> stored = h.embedding.values(), exact = m.embedding.values();
  for (std::size_t i = 0; i < exact.size(); ++i) ASSERT_EQ(stored[i], round_to_format(exact[i], FloatFormat::f16));
}

}  // namespace
}  // namespace kvfid::ref
