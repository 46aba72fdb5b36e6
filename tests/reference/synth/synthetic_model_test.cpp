// The synthetic generator: any slice of a tensor equals the same rows of the whole,
// a reduced variant is exactly a truncation of the full shape, and the real shapes
// carry the public models' configurations.
#include <gtest/gtest.h>

#include "reference/util/input_error.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

std::vector<double> rows_of(const SyntheticWeights& g, WeightRole r, int layer, std::int64_t begin, std::int64_t end,
                            std::int64_t cols) {
  std::vector<double> v(std::size_t((end - begin) * cols));
  g.rows(r, layer, begin, end, v.data());
  return v;
}

TEST(SyntheticWeights, SlicesEqualTheWholeTensor) {
  SCOPED_TRACE(test::seed_trace());
  const ModelConfig c = synthetic_shape("tiny-qwen2");
  const Model m = make_synthetic_model(c, test::test_seed(), {.precision = SynthPrecision::bf16});
  const SyntheticWeights g(c, test::test_seed(), {.precision = SynthPrecision::bf16});
  // Rows 5..9 of the embedding (massive dimensions) and of layer 1's wk (outlier rows).
  const std::vector<double> e = rows_of(g, WeightRole::embedding, 0, 5, 9, c.dim);
  const std::vector<double> embedding = m.embedding.values();
  EXPECT_EQ(e, std::vector<double>(embedding.begin() + 5 * c.dim, embedding.begin() + 9 * c.dim));
  for (std::int64_t r = 0; r < c.kv_dim(); ++r) {
    const std::vector<double> one = rows_of(g, WeightRole::wk, 1, r, r + 1, c.dim);
    std::vector<double> row(std::size_t(c.dim));
    m.layers[1].wk.decode_row(int(r), row.data());
    EXPECT_EQ(one, row) << r;
  }
}

TEST(SyntheticWeights, KeepsTheOutlierStructure) {
  const ModelConfig c = synthetic_shape("qwen2.5-0.5b");
  const SyntheticWeights g(c, 7, {.precision = SynthPrecision::bf16});
  // Massive residual dimensions: (d * 37 + 5) % dim for d = 0, 1 are 16x the others.
  const std::vector<double> e = rows_of(g, WeightRole::embedding, 0, 0, 64, c.dim);
  double massive = 0, other = 0;
  for (int t = 0; t < 64; ++t)
    for (int d = 0; d < c.dim; ++d)
      (d == 5 || d == 42 ? massive : other) += std::abs(e[std::size_t(t) * c.dim + d]);
  EXPECT_GT(massive / (2 * 64), 8 * other / ((c.dim - 2) * 64.0));
  // K outlier channels: layer 0, row (j * 5 + 3) % head_dim of each KV head, 8x.
  const std::vector<double> wk = rows_of(g, WeightRole::wk, 0, 0, c.kv_dim(), c.dim);
  auto row_mass = [&](int r) {
    double s = 0;
    for (int d = 0; d < c.dim; ++d) s += std::abs(wk[std::size_t(r) * c.dim + d]);
    return s;
  };
  EXPECT_GT(row_mass(3), 4 * row_mass(4));
  EXPECT_GT(row_mass(c.head_dim + 8), 4 * row_mass(c.head_dim + 9));
}

TEST(SyntheticWeights, AReducedVariantIsATruncationOfTheFullShape) {
  SCOPED_TRACE(test::seed_trace());
  const ModelConfig full = synthetic_shape("tiny-llama");
  const ModelConfig cut = reduced_shape(full, 1, 200, "test");
  const Model whole = make_synthetic_model(full, test::test_seed());
  const Model part = make_synthetic_model(cut, test::test_seed(), {.layout_layers = full.n_layers});
  ASSERT_EQ(part.layers.size(), 1u);
  const std::vector<double> embedding = whole.embedding.values(), classifier = whole.classifier.values();
  EXPECT_EQ(part.embedding.values(), std::vector<double>(embedding.begin(), embedding.begin() + 200 * full.dim));
  EXPECT_EQ(part.classifier.values(), std::vector<double>(classifier.begin(), classifier.begin() + 200 * full.dim));
  EXPECT_EQ(part.layers[0].wk.values(), whole.layers[0].wk.values());
  EXPECT_EQ(part.layers[0].w2.values(), whole.layers[0].w2.values());
  EXPECT_EQ(part.final_norm, whole.final_norm);
  // Without the full layout the final norm comes from another stream.
  EXPECT_NE(make_synthetic_model(cut, test::test_seed()).final_norm, whole.final_norm);
}

TEST(SyntheticShapes, RealShapesHaveThePublicConfigurations) {
  const ModelConfig q05 = synthetic_shape("qwen2.5-0.5b");
  EXPECT_EQ(q05.parameter_count(), 494032768);  // Qwen2.5-0.5B's published 0.49B
  EXPECT_TRUE(q05.tied_classifier && q05.qkv_bias);
  EXPECT_EQ(q05.head_dim, 64);
  const ModelConfig q7 = synthetic_shape("qwen2.5-7b");
  EXPECT_EQ(q7.parameter_count(), 7615616512);  // Qwen2.5-7B's published 7.61B
  EXPECT_EQ(q7.n_heads / q7.n_kv_heads, 7);
  EXPECT_EQ(q7.head_dim, 128);
  EXPECT_FALSE(q7.tied_classifier);
  const ModelConfig l1 = synthetic_shape("llama-3.2-1b");
  EXPECT_EQ(l1.parameter_count(), 1235814400);  // Llama 3.2 1B's published 1.24B
  EXPECT_FALSE(l1.qkv_bias);
  const ModelConfig l8 = synthetic_shape("llama-3.1-8b");
  EXPECT_EQ(l8.parameter_count(), 8030261248);  // Llama 3.1 8B's published 8.03B
  EXPECT_EQ(l8.rope_theta, 500000.0);
  for (const std::string& name : real_shape_names()) EXPECT_NO_THROW(synthetic_shape(name).validate(name));
}

TEST(SyntheticShapes, ReducedShapesAreValidated) {
  const ModelConfig full = synthetic_shape("qwen2.5-7b");
  EXPECT_EQ(reduced_shape(full, 1, 128, "s").n_layers, 1);
  EXPECT_EQ(reduced_shape(full, std::nullopt, 128, "s").n_layers, 28);
  EXPECT_EQ(reduced_shape(full, 28, std::nullopt, "s").vocab, 152064);
  EXPECT_THROW(reduced_shape(full, 0, std::nullopt, "s"), InputError);
  EXPECT_THROW(reduced_shape(full, 29, std::nullopt, "s"), InputError);
  EXPECT_THROW(reduced_shape(full, std::nullopt, kMinReducedVocab - 1, "s"), InputError);
  EXPECT_THROW(reduced_shape(full, std::nullopt, 152065, "s"), InputError);
  EXPECT_THROW(synthetic_shape("qwen2.5-1.5b"), InputError);
}

}  // namespace
}  // namespace kvfid::ref
