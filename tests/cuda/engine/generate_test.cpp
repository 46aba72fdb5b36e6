// Sampled generation (cuda/engine/generate.h): greedy follows the logits' argmax through
// the cache, draws do not depend on chunking or on the other sequences of the batch, and
// the seed and temperature reach the draw.
#include <set>

#include <gtest/gtest.h>

#include "cuda/engine/engine_forward.h"
#include "cuda/engine/generate.h"
#include "reference/util/input_error.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

EngineOptions f16_twin(int chunk = 0) {
  EngineOptions o;
  o.backend = Backend::twin;
  o.weights = test::weight_format("f16");
  o.kv = test::kv_spec("f16");
  o.chunk = chunk;
  return o;
}

Model model() { return test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true), test::test_seed()); }

// Lowest id among the largest logits: the sampler's greedy rule.
int argmax_row(const TapTensor& logits, int row) {
  const int vocab = int(logits.shape[1]);
  int best = 0;
  for (int i = 1; i < vocab; ++i)
    if (logits.values[std::size_t(row) * vocab + i] > logits.values[std::size_t(row) * vocab + best]) best = i;
  return best;
}

// Greedy tokens are the argmax of the recomputed forward over prompt + the tokens before
// them: the decode steps read the right cache at the right positions.
TEST(EngineGenerate, GreedyFollowsTheRecomputedArgmax) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = model();
  const std::vector<int> prompt = test::prompt_tokens(9, m.config.vocab, test::test_seed());
  const std::vector<int> got = generate_tokens(m, {prompt}, f16_twin(), SamplingParams{}, 6).front();
  ASSERT_EQ(got.size(), 6u);
  std::vector<int> all = prompt;
  all.insert(all.end(), got.begin(), got.end() - 1);
  EngineOptions o = f16_twin();
  o.taps = TapSelection::logits;
  const TapSet taps = engine_forward(m, all, o);
  const TapTensor& logits = *find_tap(taps, "logits");
  for (std::size_t i = 0; i < got.size(); ++i)
    EXPECT_EQ(got[i], argmax_row(logits, int(prompt.size() + i) - 1)) << "token " << i;
}

TEST(EngineGenerate, SameTokensAloneOrBatchedAndWhateverTheChunk) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = model();
  const std::vector<int> a = test::prompt_tokens(13, m.config.vocab, test::test_seed());
  const std::vector<int> b = test::prompt_tokens(5, m.config.vocab, test::test_seed() + 1);
  const SamplingParams p{1.0f, 0, 0.9f, 77};
  const std::vector<int> alone = generate_tokens(m, {a}, f16_twin(), p, 8).front();
  EXPECT_EQ(generate_tokens(m, {a, b}, f16_twin(), p, 8).front(), alone);
  EXPECT_EQ(generate_tokens(m, {a, b}, f16_twin(3), p, 8).front(), alone);
  EXPECT_EQ(generate_tokens(m, {a}, f16_twin(1), p, 8).front(), alone);
}

// With T = 1 on a 256-token vocabulary, eight seeds drawing the same eight tokens would
// mean the seed never reached the draw; under greedy every seed agrees.
TEST(EngineGenerate, SeedAndTemperatureReachTheDraw) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = model();
  const std::vector<int> prompt = test::prompt_tokens(7, m.config.vocab, test::test_seed());
  std::set<std::vector<int>> sampled, greedy;
  for (std::uint64_t seed = 1; seed <= 8; ++seed) {
    sampled.insert(generate_tokens(m, {prompt}, f16_twin(), SamplingParams{1.0f, 0, 1.0f, seed}, 8).front());
    greedy.insert(generate_tokens(m, {prompt}, f16_twin(), SamplingParams{0.0f, 0, 1.0f, seed}, 8).front());
  }
  EXPECT_GT(sampled.size(), 1u);
  EXPECT_EQ(greedy.size(), 1u);
}

TEST(EngineGenerate, RefusesEmptyPromptsAndNegativeCounts) {
  const Model m = model();
  const std::vector<int> empty, ok = {1, 2}, too_large = {1, m.config.vocab};
  EXPECT_THROW(generate_tokens(m, {empty}, f16_twin(), SamplingParams{}, 2), InputError);
  EXPECT_THROW(generate_tokens(m, {ok}, f16_twin(), SamplingParams{}, -1), InputError);
  EXPECT_THROW(generate_tokens(m, {too_large}, f16_twin(), SamplingParams{}, 1), InputError);
}

}  // namespace
}  // namespace kvfid::engine
