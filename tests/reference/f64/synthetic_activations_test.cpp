// The synthetic fixtures, measured with the float64 forward over the long prompt: they
// must carry the features they are built for (K outlier channels, massive residual
// dimensions) and keep every activation far inside FP16's range.
#include <algorithm>
#include <cmath>
#include <iostream>

#include <gtest/gtest.h>

#include "reference/f64/forward_trace.h"
#include "reference/io/prompt.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

// Any activation's square must still fit FP16 (max 65504), so even an engine squaring
// in FP16 before RMSNorm cannot overflow: 240^2 = 57600. Measured max over all
// intermediates and logits with the default seed: 49.3 (tiny-mqa logits).
constexpr double kActivationCeiling = 240;
// The outlier rows of wk are scaled 8x (SynthOptions); mixed through RMSNorm they
// measured 4.7x to 10x the median channel's mean |k|. 3x still marks them as outliers.
constexpr double kOutlierRatio = 3;
// Massive dimensions are drawn 16x larger; measured 9x to 14x the median dimension's
// mean |x| after each layer. 5x still marks them as massive.
constexpr double kMassiveRatio = 5;

using Mat = RowMatrix<double>;

double median(std::vector<double> v) {
  std::nth_element(v.begin(), v.begin() + v.size() / 2, v.end());
  return v[v.size() / 2];
}

class Fixture : public ::testing::TestWithParam<std::string> {
 protected:
  void SetUp() override {
    config = synthetic_shape(GetParam());
    model = make_synthetic_model(config, test::test_seed());
    trace = trace_forward<double>(model, read_prompt_file(test::fixtures_dir() + "/prompts/long.tokens"));
  }
  ModelConfig config;
  Model model;
  ForwardTrace<double> trace;
};

TEST_P(Fixture, ActivationsStayFarInsideFp16) {
  SCOPED_TRACE(test::seed_trace());
  double worst = 0;
  auto check = [&](const std::string& name, const Mat& m) {
    ASSERT_TRUE(m.allFinite()) << name;
    const double max_abs = m.cwiseAbs().maxCoeff();
    std::cout << GetParam() << " max|" << name << "| " << max_abs << "\n";
    EXPECT_LE(max_abs, kActivationCeiling) << name;
    worst = std::max(worst, max_abs);
  };
  for (std::size_t l = 0; l < trace.layers.size(); ++l) {
    const LayerTrace<double>& L = trace.layers[l];
    const std::string p = tap_layer_name(int(l), "");
    for (const auto& [name, m] : std::vector<std::pair<std::string, const Mat*>>{
             {"h", &L.h}, {"q", &L.q}, {"k", &L.k}, {"v", &L.v}, {"attn.out", &L.attn_out}, {"x_mid", &L.x_mid},
             {"h2", &L.h2}, {"gate", &L.gate}, {"up", &L.up}, {"mix", &L.mix}, {"out", &L.out}})
      check(p + name, *m);
    for (const Mat& s : L.scores) check(p + "scores", s);
  }
  check("logits", trace.logits);
  EXPECT_GT(worst, 1) << "activations collapsed";
}

// The two channels make_synthetic_model scales in each KV head are that head's largest.
TEST_P(Fixture, KeysHaveOutlierChannels) {
  SCOPED_TRACE(test::seed_trace());
  // make_synthetic_model scales rows of wk, or under latent attention the key rows of
  // wkv_b, which make the nope part of each key (a channel in the rope part has none).
  const SynthOptions options;
  int checked = 0;
  for (std::size_t l = 0; l < trace.layers.size(); ++l)
    for (int kv = 0; kv < config.n_kv_heads; ++kv) {
      std::vector<double> channel(config.head_dim);  // mean |k| over positions, before RoPE
      for (int d = 0; d < config.head_dim; ++d)
        channel[d] = trace.layers[l].k_lin.col(kv * config.head_dim + d).cwiseAbs().mean();
      const double typical = median(channel);
      for (int j = 0; j < options.k_outlier_channels; ++j) {
        const int d = (j * 5 + 3 + int(l)) % config.head_dim;  // as chosen by make_synthetic_model
        if (config.mla.active() && d >= config.nope_dim()) continue;
        ++checked;
        std::cout << GetParam() << " layer " << l << " kv head " << kv << " channel " << d << " mean|k| "
                  << channel[d] << " median " << typical << "\n";
        EXPECT_GE(channel[d], kOutlierRatio * typical) << "layer " << l << " kv head " << kv << " channel " << d;
      }
    }
  EXPECT_GT(checked, 0) << "no outlier channel to check";
}

TEST_P(Fixture, ResidualStreamHasMassiveDimensions) {
  SCOPED_TRACE(test::seed_trace());
  const SynthOptions options;
  for (std::size_t l = 0; l < trace.layers.size(); ++l) {
    std::vector<double> dim(config.dim);  // mean |x| over positions
    for (int d = 0; d < config.dim; ++d) dim[d] = trace.layers[l].out.col(d).cwiseAbs().mean();
    const double typical = median(dim);
    for (int j = 0; j < options.massive_dims; ++j) {
      const int d = (j * 37 + 5) % config.dim;  // as chosen by make_synthetic_model
      std::cout << GetParam() << " layer " << l << " dim " << d << " mean|x| " << dim[d] << " median " << typical << "\n";
      EXPECT_GE(dim[d], kMassiveRatio * typical) << "layer " << l << " dim " << d;
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Synthetic, Fixture, ::testing::ValuesIn(synthetic_shape_names()),
                         [](const auto& info) { return test::param_name(info.param); });

}  // namespace
}  // namespace kvfid::ref
