#include "reference/mp/mp_forward.h"

#include <gtest/gtest.h>

#include "reference/synth/synthetic_model.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

// Each value is computed by one thread in a fixed order, so the MPFR results (not just
// their float64 roundings) are identical for any thread count, including uneven splits.
TEST(MpForward, ThreadCountDoesNotChangeABit) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(2);
  c.qkv_bias = true;
  c.rope = RopeStyle::rotate_half;
  const Model model = make_synthetic_model(c, test::test_seed());
  const MpWeights weights = to_mp_weights(model, 128);
  const std::vector<int> tokens = {5, 1, 30, 2, 2};
  for (const MpArith& arith : {MpArith::exact(128), MpArith::ieee(FloatFormat::f16)}) {
    MpForwardOptions o;
    o.arith = arith;
    o.threads = 1;
    const std::vector<MpTap> one = mp_forward(model, weights, tokens, o);
    for (int threads : {2, 3}) {
      o.threads = threads;
      const std::vector<MpTap> many = mp_forward(model, weights, tokens, o);
      ASSERT_EQ(one.size(), many.size());
      for (std::size_t i = 0; i < one.size(); ++i)
        EXPECT_TRUE(test::mp_identical(one[i].values, many[i].values)) << one[i].name << " with " << threads << " threads";
    }
  }
}

// Sliding windows, exactly: a window at least as long as the prompt is full attention,
// bit for bit; a shorter one changes the last queries' outputs and gives every key
// before a query's window a probability of exactly zero; a layer below
// full_attention_layers attends fully.
TEST(MpForward, SlidingWindowsReadOnlyTheirKeys) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(2);
  const Model full = make_synthetic_model(c, test::test_seed());
  const std::vector<int> tokens = {5, 1, 30, 2, 2, 17, 9};
  const int T = int(tokens.size());
  MpForwardOptions o;
  o.arith = MpArith::exact(128);
  auto run = [&](int window, int full_layers) {
    Model m = full;
    m.config.sliding_window = window, m.config.full_attention_layers = full_layers;
    return mp_forward(m, to_mp_weights(m, 128), tokens, o);
  };
  auto tap = [](const std::vector<MpTap>& taps, const std::string& name) -> const MpArray& {
    return mp_tap(taps, name).values;
  };
  const std::vector<MpTap> plain = run(0, 0), covering = run(T, 0), windowed = run(3, 0), first_full = run(3, 1);
  for (std::size_t i = 0; i < plain.size(); ++i)
    EXPECT_TRUE(test::mp_identical(plain[i].values, covering[i].values)) << plain[i].name;
  EXPECT_FALSE(test::mp_identical(tap(plain, "logits"), tap(windowed, "logits")));
  EXPECT_TRUE(test::mp_identical(tap(plain, "layers.0.out"), tap(first_full, "layers.0.out")));
  EXPECT_FALSE(test::mp_identical(tap(plain, "layers.1.out"), tap(first_full, "layers.1.out")));
  const MpArray& probs = tap(windowed, "layers.1.attn.probs");  // [n_heads, T, T]
  for (int h = 0; h < c.n_heads; ++h)
    for (int t = 0; t < T; ++t)
      for (int j = 0; j < T; ++j) {
        const bool read = j <= t && j > t - 3;
        EXPECT_EQ(mpfr_zero_p(probs[(std::size_t(h) * T + t) * T + j]) != 0, !read) << h << " " << t << " " << j;
      }
}

// A run a stage at a time gives mp_forward's taps bit for bit, whatever blocks its
// logits come in (one exact dot product rounded once per logit): one block, blocks of
// one token, uneven blocks; layer taps in tap_specs order, only the selected ones.
TEST(MpForward, StagedRunEqualsOneForwardForAnyLogitsBlocks) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(2);
  c.qkv_bias = true;
  const Model model = make_synthetic_model(c, test::test_seed());
  const MpWeights weights = to_mp_weights(model, 128);
  const std::vector<int> tokens = {5, 1, 30, 2, 2, 7, 11};
  const int T = int(tokens.size());
  for (const TapSelection& taps : {TapSelection::all, tap_selection_from_string("layers.1.*", "test")}) {
    MpForwardOptions o;
    o.threads = 2;
    o.taps = taps;
    const std::vector<MpTap> whole = mp_forward(model, weights, tokens, o);
    for (const std::vector<int>& blocks : std::vector<std::vector<int>>{{T}, {1, 1, 1, 1, 1, 1, 1}, {3, 1, 3}}) {
      MpForwardRun run(model, weights, tokens, o);
      std::vector<const MpTap*> expected_layer_taps;
      for (const MpTap& t : whole)
        if (t.name != "logits") expected_layer_taps.push_back(&t);
      std::size_t next = 0;
      while (run.layers_left() > 0)
        for (const MpTap& t : run.run_layer()) {
          ASSERT_LT(next, expected_layer_taps.size()) << t.name;
          EXPECT_EQ(t.name, expected_layer_taps[next]->name);
          EXPECT_TRUE(test::mp_identical(t.values, expected_layer_taps[next]->values)) << t.name;
          ++next;
        }
      EXPECT_EQ(next, expected_layer_taps.size());
      const MpArray& logits = whole[0].values;  // [T, vocab]
      int first = 0;
      for (int count : blocks) {
        const MpArray part = run.logits(first, count);
        ASSERT_EQ(part.size(), std::size_t(count) * std::size_t(c.vocab));
        for (std::size_t i = 0; i < part.size(); ++i)
          ASSERT_TRUE(mpfr_equal_p(part[i], logits[std::size_t(first) * std::size_t(c.vocab) + i]))
              << "logit " << i << " of the block at token " << first;
        first += count;
      }
    }
  }
}

TEST(MpForward, StagedRunRefusesStagesOutOfOrder) {
  const Model model = make_synthetic_model(test::tiny_config(1), test::test_seed());
  const MpWeights weights = to_mp_weights(model, 64);
  const std::vector<int> tokens = {1, 2};
  MpForwardOptions o;
  MpForwardRun run(model, weights, tokens, o);
  EXPECT_THROW(run.logits(0, 2), std::logic_error);  // a layer is left
  run.run_layer();
  EXPECT_THROW(run.run_layer(), std::logic_error);
  EXPECT_THROW(run.logits(1, 2), std::logic_error);  // past the last token
  EXPECT_NO_THROW(run.logits(0, 2));
}

}  // namespace
}  // namespace kvfid::ref
