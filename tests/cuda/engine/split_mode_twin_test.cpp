// The by-length split mode on the twin is really not invariant: the same row gets other
// bits when decoded token by token than when prefilled at once, and when decoded alone
// than in a large batch, because the step's shape picks its split size
// (cuda/engine/split_keys.h). The invariant mode on the same inputs gives the same bits.
// (That by-length logits are still the right function: twin_reference_test.)
#include <gtest/gtest.h>

#include "reference/numeric/ieee.h"
#include "cuda/engine/engine.h"
#include "cuda/engine/engine_forward.h"
#include "cuda/engine/split_keys.h"
#include "tests/common/test_env.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

EngineOptions twin(SplitMode split, int chunk) {
  EngineOptions o;
  o.split = split;
  o.chunk = chunk;
  return o;
}

// Rows whose logits differ in at least one bit, of logits [T, vocab].
std::vector<int> differing_rows(const TapSet& a, const TapSet& b, int vocab) {
  const TapTensor& x = *find_tap(a, "logits");
  const TapTensor& y = *find_tap(b, "logits");
  std::vector<int> rows;
  for (std::size_t t = 0; t < x.values.size() / vocab; ++t)
    for (int i = 0; i < vocab; ++i)
      if (num::bits_of(float(x.values[t * vocab + i])) != num::bits_of(float(y.values[t * vocab + i]))) {
        rows.push_back(int(t));
        break;
      }
  return rows;
}

// 2 KV heads, 100 tokens. Token-by-token decode: 2 blocks per split, so the by-length
// mode cuts each row into ceil(132 / 2) = 66 splits' worth -> one warp (32 keys). The
// one-shot prefill has 200 blocks per split: the fixed 256. Rows of at most 32 keys are
// one split either way and must agree; past them the split count differs (up to 4 vs 1).
TEST(SplitModeTwin, ByLengthDecodeDiffersFromPrefillWhereTheSplitsDo) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true), test::test_seed());
  const auto tokens = test::prompt_tokens(100, m.config.vocab, test::test_seed());
  const int vocab = m.config.vocab;
  ASSERT_EQ(split_keys(SplitMode::by_length, m.config.n_kv_heads, int(tokens.size())), kSplitGranule);
  ASSERT_EQ(split_keys(SplitMode::by_length, int(tokens.size()) * m.config.n_kv_heads, int(tokens.size())), num::kSplit);

  const TapSet invariant_prefill = engine_forward(m, tokens, twin(SplitMode::invariant, 0));
  ASSERT_EQ(test::gross_failure(invariant_prefill), "");
  EXPECT_EQ(test::bitwise_difference(invariant_prefill, engine_forward(m, tokens, twin(SplitMode::invariant, 1))), "");

  const TapSet prefill = engine_forward(m, tokens, twin(SplitMode::by_length, 0));
  const TapSet decode = engine_forward(m, tokens, twin(SplitMode::by_length, 1));
  ASSERT_EQ(test::gross_failure(decode), "");
  EXPECT_EQ(test::bitwise_difference(prefill, invariant_prefill), "") << "a 100-row prefill takes the fixed split";
  const std::vector<int> rows = differing_rows(prefill, decode, vocab);
  ASSERT_FALSE(rows.empty()) << "by-length decode equals prefill bit for bit: the mode changed nothing";
  EXPECT_GE(rows.front(), kSplitGranule) << "a row of at most 32 keys is one split in both schedules";
  std::printf("by-length decode vs prefill: %zu of %zu rows differ, the first at %d\n", rows.size(), tokens.size(),
              rows.front());
}

// The same decode row of a 100-token sequence, alone (2 blocks per split: 32-key
// splits) and in a step with 66 other one-row sequences (134 blocks: the fixed split).
TEST(SplitModeTwin, ByLengthDecodeDependsOnTheBatch) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::interleaved, false), test::test_seed());
  const int vocab = m.config.vocab, others = 66;
  const auto prompt = test::prompt_tokens(100, vocab, test::test_seed() + 1);
  ASSERT_GE((others + 1) * m.config.n_kv_heads, kSplitTargetBlocks);
  for (SplitMode mode : {SplitMode::invariant, SplitMode::by_length}) {
    SCOPED_TRACE(to_string(mode));
    Engine alone(m, twin(mode, 0)), batched(m, twin(mode, 0));
    const int a = alone.add_sequence(101);
    alone.step({{a, prompt}});
    const std::vector<float> single = alone.step({{a, {7}}}).logits;  // [vocab]
    std::vector<SequenceInput> step;
    const int b = batched.add_sequence(101);
    batched.step({{b, prompt}});
    step.push_back({b, {7}});
    for (int i = 0; i < others; ++i) {
      const int s = batched.add_sequence(2);
      batched.step({{s, {i % vocab}}});
      step.push_back({s, {(i + 3) % vocab}});
    }
    const std::vector<float>& out = batched.step(step).logits;  // [1 + others, vocab]; row 0 is b's
    int differing = 0;
    for (int i = 0; i < vocab; ++i) differing += num::bits_of(out[i]) != num::bits_of(single[i]);
    if (mode == SplitMode::invariant)
      EXPECT_EQ(differing, 0) << "the invariant mode is batch-invariant";
    else
      EXPECT_GT(differing, 0) << "by-length: 4 splits alone, 1 in the batch, yet the same bits";
  }
}

}  // namespace
}  // namespace kvfid::engine
