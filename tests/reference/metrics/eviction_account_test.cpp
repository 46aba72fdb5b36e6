// StreamingLLM's exact account (reference/metrics/eviction_account.h): the bound
// 2 m max|v| holds on every step of a fixture's exact forward and is attained by two
// keys of opposite values; a window covering the prompt drops nothing.
#include "reference/metrics/eviction_account.h"

#include <cmath>

#include <gtest/gtest.h>

#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/mp/mp_weights.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

MpTap tap(const std::string& name, std::vector<std::int64_t> shape, const std::vector<double>& values) {
  MpTap t{name, std::move(shape), MpArray(values.size(), 128), {}};
  for (std::size_t i = 0; i < values.size(); ++i) mpfr_set_d(t.values[i], values[i], MPFR_RNDN);
  return t;
}

// Two keys, p = (1/4, 3/4), v = (+1, -1); streaming:0,1 drops key 0 at position 1:
// o = -1/2, o' = -1, |o - o'| = 1/2 = 2 (1/4) 1.
TEST(EvictionAccount, TheBoundIsAttainedByOppositeValues) {
  ModelConfig c;
  c.n_layers = 1, c.n_heads = 1, c.n_kv_heads = 1, c.head_dim = 1;
  std::vector<MpTap> taps;
  taps.push_back(tap("layers.0.attn.probs", {1, 2, 2}, {1, 0, 0.25, 0.75}));
  taps.push_back(tap("layers.0.v", {2, 1, 1}, {1, -1}));
  bool certified = false;
  const std::vector<EvictionStep> steps = eviction_account(taps, c, 2, {0, 1}, &certified);
  ASSERT_EQ(steps.size(), 2u);
  EXPECT_TRUE(certified);
  EXPECT_EQ(steps[0].mass, 0.0);
  EXPECT_EQ(steps[1].mass, 0.25);
  EXPECT_EQ(steps[1].observed, 0.5);
  EXPECT_EQ(steps[1].bound, 0.5);
}

// tiny-llama's exact forward over the 64-token prompt: streaming:2,8 drops keys from
// position 10 on (never before), every step stays within its bound, and a window of the
// whole prompt drops nothing.
TEST(EvictionAccount, EveryStepOfAFixtureForwardIsWithinTheBound) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-llama");
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  const int T = int(tokens.size());
  MpForwardOptions o;
  o.arith = MpArith::exact(128);
  o.threads = 2;
  const std::vector<MpTap> taps = mp_forward(model, to_mp_weights(model, 128), tokens, o);
  bool certified = false;
  const std::vector<EvictionStep> steps = eviction_account(taps, model.config, T, {2, 8}, &certified);
  EXPECT_TRUE(certified);
  ASSERT_EQ(steps.size(), std::size_t(model.config.n_layers) * model.config.n_heads * T);
  double worst = 0;
  for (const EvictionStep& s : steps) {
    EXPECT_EQ(s.mass > 0, s.position >= 10) << s.layer << " " << s.head << " " << s.position;
    EXPECT_LE(s.observed, s.bound) << s.layer << " " << s.head << " " << s.position;
    if (s.bound > 0) worst = std::max(worst, s.observed / s.bound);
  }
  EXPECT_GT(worst, 0.0);
  std::printf("[eviction] tiny-llama medium, streaming:2,8: worst observed / bound %.3f\n", worst);
  for (const EvictionStep& s : eviction_account(taps, model.config, T, {0, T}, &certified)) {
    EXPECT_EQ(s.mass, 0.0);
    EXPECT_EQ(s.observed, 0.0);
  }
}

// The StreamingLLM forward (mp_forward's eviction mask, sinks then window) at layer 0,
// where its inputs are the full cache's: each query's output is the full softmax
// renormalized over the kept keys, sum_kept p_j v_j / sum_kept p_j, computed here in long
// double from the full forward's 128-bit taps (agreeing to ~1e-15 relative); a window
// of the whole prompt is the full forward bit for bit.
TEST(EvictionAccount, TheStreamingForwardRenormalizesTheFullSoftmax) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-mqa");
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  const int T = int(tokens.size());
  const ModelConfig& c = model.config;
  const MpWeights w = to_mp_weights(model, 128);
  MpForwardOptions o;
  o.arith = MpArith::exact(128);
  o.threads = 2;
  o.taps = tap_selection_from_string("logits,layers.0.attn.probs,layers.0.v,layers.0.attn.out", "test");
  const std::vector<MpTap> full = mp_forward(model, w, tokens, o);
  const StreamingEviction policy{3, 9};
  o.eviction = AttentionMask{true, policy.window, policy.sinks};
  const std::vector<MpTap> evicted = mp_forward(model, w, tokens, o);
  auto find = [](const std::vector<MpTap>& taps, const std::string& name) -> const MpArray& {
    return mp_tap(taps, name).values;
  };
  const MpArray &probs = find(full, "layers.0.attn.probs"), &v = find(full, "layers.0.v");
  const MpArray& out = find(evicted, "layers.0.attn.out");
  double worst = 0;
  for (int h = 0; h < c.n_heads; ++h)
    for (int t = 0; t < T; ++t)
      for (int d = 0; d < c.head_dim; ++d) {
        long double num = 0, den = 0;
        for (int j = 0; j <= t; ++j)
          if (policy.keeps(j, t)) {
            const long double p = mpfr_get_ld(probs[(std::size_t(h) * T + t) * T + j], MPFR_RNDN);
            num += p * mpfr_get_ld(v[(std::size_t(j) * c.n_kv_heads + c.kv_head_of(h)) * c.head_dim + d], MPFR_RNDN);
            den += p;
          }
        const long double expected = num / den;
        const long double got = mpfr_get_ld(out[(std::size_t(t) * c.n_heads + h) * c.head_dim + d], MPFR_RNDN);
        worst = std::max(worst, double(std::fabs(got - expected) / (std::fabs(expected) + 1e-30L)));
      }
  EXPECT_LT(worst, 1e-12) << "largest relative difference";
  o.eviction = AttentionMask{true, T, 2};
  o.taps = TapSelection::logits;
  EXPECT_TRUE(test::mp_identical(find(full, "logits"), find(mp_forward(model, w, tokens, o), "logits")));
}

TEST(EvictionAccount, StreamingKeepsTheSinksAndTheWindow) {
  const StreamingEviction e{4, 1020};
  EXPECT_TRUE(e.keeps(3, 5000));
  EXPECT_FALSE(e.keeps(4, 5000));
  EXPECT_TRUE(e.keeps(3981, 5000));
  EXPECT_FALSE(e.keeps(3980, 5000));
}

}  // namespace
}  // namespace kvfid::ref
