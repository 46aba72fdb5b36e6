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
