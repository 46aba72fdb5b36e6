// The drift runner's engine side: cached decode equals recompute bit for bit on the
// tiny fixtures (the invariant mode) while the by-length split mode's cached decode
// differs where its splits do, the verdict notices a single flipped bit, the greedy
// continuation is the F32 engine's argmax, and the error budget picks its runs.
#include "tools/kvfid/drift_engine_runs.h"

#include <algorithm>
#include <cmath>
#include <limits>

#include <gtest/gtest.h>

#include "cuda/engine/engine_forward.h"
#include "cuda/engine/split_keys.h"
#include "reference/f64/forward_f64.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "tools/kvfid/drift_output.h"
#include "tools/kvfid/drift_reference_runs.h"
#include "tools/kvfid/drift_run.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine
namespace {

std::vector<int> prompt(const std::string& name, int count) {
  std::vector<int> t = read_prompt_file(test::fixtures_dir() + "/prompts/" + name);
  t.resize(std::min<std::size_t>(t.size(), std::size_t(count)));
  return t;
}

// A stand-in golden for runs whose KL values the test does not look at: the float64
// forward's logits, with no attention.
GoldenSeries f64_golden(const Model& model, const std::vector<int>& tokens) {
  GoldenSeries g;
  g.logits = find_tap(forward_f64(model, tokens, TapSelection::logits), "logits")->values;
  return g;
}

// A run measured at every position of its logits [T, vocab], or at `positions`.
EngineRun run_with_logits(const std::string& name, std::vector<float> logits, int vocab,
                          std::vector<int> positions = {}) {
  EngineRun r;
  r.series.name = name;
  if (positions.empty())
    for (int t = 0; t < int(logits.size()) / vocab; ++t) positions.push_back(t);
  for (int t : positions) r.series.positions.push_back({t, {}, {}, std::nullopt});
  r.logits = std::move(logits);
  return r;
}

class DriftFixture : public ::testing::TestWithParam<std::string> {};

// 40 positions cross no 256-key split; the property suite covers longer rows. What this
// adds is the runner's own plumbing: the rows it compares are the ones the schedules produce.
// The by-length mode's one-row decode steps cut contexts past 32 keys into 32-key splits
// (4 or 1 KV heads: far fewer than 132 blocks), the recompute's prefills of 33..40 rows
// do not: positions 32..39 are where the two may differ, and do.
TEST_P(DriftFixture, CachedDecodeEqualsRecomputeBitForBit) {
  const Model model = load_model(test::fixtures_dir() + "/" + GetParam());
  const std::vector<int> tokens = prompt("long.tokens", 40);
  const int T = int(tokens.size());
  const GoldenSeries golden = f64_golden(model, tokens);
  const auto configurations = engine_configurations(Backend::twin, "f32", WeightFormat{}, {test::kv_spec("f16"), test::kv_spec("bf16")});
  ASSERT_EQ(configurations.size(), 6u);
  ASSERT_EQ(split_keys(SplitMode::by_length, model.config.n_kv_heads, T), kSplitGranule);
  std::vector<EngineRun> runs;
  for (const EngineConfiguration& c : configurations) runs.push_back(run_engine_configuration(model, c, tokens, golden, nullptr));
  for (const EngineRun& r : runs) {
    ASSERT_EQ(r.logits.size(), tokens.size() * std::size_t(model.config.vocab)) << r.series.name;
    ASSERT_EQ(r.series.positions.size(), tokens.size());
    EXPECT_EQ(r.series.non_finite_positions, 0);
    EXPECT_EQ(r.series.positions.back().attention.size(), std::size_t(model.config.n_layers));
    EXPECT_GT(r.series.positions.back().next_token.kl, 0.0) << "f16/bf16 caches cannot match the float64 logits exactly";
  }
  const auto verdicts = invariance_verdicts(configurations, runs, model.config.vocab);
  ASSERT_EQ(verdicts.size(), 4u);
  for (int i = 0; i < 4; ++i) {
    const InvarianceVerdict& v = verdicts[i];
    SCOPED_TRACE(v.kv_spec + " " + to_string(v.split));
    EXPECT_EQ(v.kv_spec, i % 2 == 0 ? "f16" : "bf16");
    EXPECT_EQ(v.split, i < 2 ? SplitMode::invariant : SplitMode::by_length);
    if (v.split == SplitMode::invariant) {
      EXPECT_TRUE(v.bitwise_equal) << "differs at position " << v.first_position;
      EXPECT_EQ(v.first_position, -1);
      EXPECT_EQ(v.differing_positions, 0);
      EXPECT_EQ(v.max_abs_logit_difference, 0.0);
      continue;
    }
    EXPECT_EQ(v.cached, v.kv_spec + " cached-decode by-length");
    EXPECT_EQ(v.recompute, v.kv_spec + " recompute");
    EXPECT_FALSE(v.bitwise_equal) << "by-length decode equals recompute bit for bit";
    EXPECT_GE(v.first_position, kSplitGranule) << "contexts of at most 32 keys are one split either way";
    EXPECT_GT(v.differing_positions, 0);
    EXPECT_LE(v.differing_positions, T - kSplitGranule);
    // A split size changes only the FP32 rounding of the fold: far less than the cache
    // format's own error against the float64 golden.
    double cache_error = 0;
    for (const PositionRecord& p : runs[i == 2 ? 0 : 3].series.positions)
      cache_error = std::max(cache_error, p.next_token.max_abs_logit_error);
    EXPECT_GT(v.max_abs_logit_difference, 0.0);
    EXPECT_LT(v.max_abs_logit_difference, cache_error);
  }
  EXPECT_EQ(runs[2].series.split, "by-length");
  EXPECT_EQ(runs[0].series.split, "invariant");
  // The two caches differ from each other, so the comparison is not vacuous.
  EXPECT_NE(runs[0].logits, runs[3].logits);
}

INSTANTIATE_TEST_SUITE_P(Fixtures, DriftFixture, ::testing::Values("tiny-llama", "tiny-qwen2"),
                         [](const auto& info) { return test::param_name(info.param); });

TEST(DriftInvariance, OneFlippedBitFailsTheVerdict) {
  const int vocab = 4;
  std::vector<float> logits = {0.5f, -1.0f, 2.0f, 0.0f, 1.0f, 1.5f, -2.0f, 3.0f, 0.25f, 0.75f, 1.25f, -0.5f};  // [3, vocab]
  const EngineRun a = run_with_logits("f16 cached-decode", logits, vocab);
  EXPECT_TRUE(compare_logits_bitwise("f16", a, run_with_logits("f16 recompute", logits, vocab), vocab).bitwise_equal);

  std::vector<float> flipped = logits;
  flipped[2 * vocab + 1] = std::nextafter(flipped[2 * vocab + 1], 0.0f);  // one ulp: the last bit
  const InvarianceVerdict v = compare_logits_bitwise("f16", a, run_with_logits("f16 recompute", flipped, vocab), vocab);
  EXPECT_FALSE(v.bitwise_equal);
  EXPECT_EQ(v.first_position, 2);
  EXPECT_EQ(v.first_token, 1);

  std::vector<float> signed_zero = logits;
  signed_zero[3] = -0.0f;  // equal as numbers, not as bits
  EXPECT_FALSE(compare_logits_bitwise("f16", a, run_with_logits("f16 recompute", signed_zero, vocab), vocab).bitwise_equal);
}

// A strided recompute holds rows only at its positions: row i is compared with the
// cached decode's row at positions[i], and only there.
TEST(DriftInvariance, AStridedRecomputeIsComparedAtItsOwnPositions) {
  const int vocab = 2;
  const EngineRun cached = run_with_logits("f16 cached-decode", {1.0f, 2.0f, 3.0f, 4.0f, 5.0f, 6.0f}, vocab);  // [3, vocab]
  const InvarianceVerdict equal =
      compare_logits_bitwise("f16", cached, run_with_logits("f16 recompute", {3.0f, 4.0f, 5.0f, 6.0f}, vocab, {1, 2}), vocab);
  EXPECT_TRUE(equal.bitwise_equal);
  EXPECT_EQ(equal.compared_positions, 2);
  const InvarianceVerdict differs =
      compare_logits_bitwise("f16", cached, run_with_logits("f16 recompute", {5.0f, 6.5f}, vocab, {2}), vocab);
  EXPECT_FALSE(differs.bitwise_equal);
  EXPECT_EQ(differs.compared_positions, 1);
  EXPECT_EQ(differs.first_position, 2);
  EXPECT_EQ(differs.first_token, 1);
  EXPECT_EQ(differs.max_abs_logit_difference, 0.5);
}

TEST(DriftInvariance, RecomputeEveryNRunsAtMultiplesAndTheLastPosition) {
  std::vector<int> at;
  for (int t = 0; t < 12; ++t)
    if (recomputed_at(t, 12, 5)) at.push_back(t);
  EXPECT_EQ(at, (std::vector<int>{4, 9, 11}));
  for (int t = 0; t < 12; ++t) EXPECT_TRUE(recomputed_at(t, 12, 1));
  EngineConfiguration c;
  c.schedule = Schedule::recompute;
  c.recompute_every = 5;
  EXPECT_EQ(engine_work(c, 12), 5 + 10 + 12);  // prefill rows at positions 4, 9, 11
  c.recompute_every = 1;
  EXPECT_EQ(engine_work(c, 12), 12 * 13 / 2);
}

// Configurations per spec: cached decode, recompute, cached decode by-length.
TEST(DriftInvariance, VerdictsPairEachCachedRunWithItsRecomputeAndReportFailures) {
  const int vocab = 2;
  const auto configurations = engine_configurations(Backend::twin, "f32", WeightFormat{}, {test::kv_spec("f16"), test::kv_spec("bf16")});
  ASSERT_EQ(configurations.size(), 6u);
  EXPECT_EQ(configurations[2].name, "f16 cached-decode by-length");
  EXPECT_EQ(configurations[2].options.split, SplitMode::by_length);
  EXPECT_EQ(configurations[1].options.split, SplitMode::invariant);
  std::vector<float> same = {1.0f, 2.0f, 3.0f, 4.0f}, other = {1.0f, 2.0f, 3.0f, 4.5f};  // [2, vocab]
  std::vector<float> both_rows = {1.0f, 2.25f, 3.0f, 3.0f};                               // [2, vocab]
  std::vector<EngineRun> runs = {run_with_logits(configurations[0].name, same, vocab), run_with_logits(configurations[1].name, same, vocab),
                                 run_with_logits(configurations[2].name, both_rows, vocab),
                                 run_with_logits(configurations[3].name, same, vocab), run_with_logits(configurations[4].name, other, vocab),
                                 run_with_logits(configurations[5].name, other, vocab)};
  const auto verdicts = invariance_verdicts(configurations, runs, vocab);
  ASSERT_EQ(verdicts.size(), 4u);
  EXPECT_EQ(verdicts[0].kv_spec, "f16");
  EXPECT_TRUE(verdicts[0].bitwise_equal);
  EXPECT_EQ(verdicts[1].kv_spec, "bf16");
  EXPECT_EQ(verdicts[1].split, SplitMode::invariant);
  EXPECT_EQ(verdicts[1].cached, "bf16 cached-decode");
  EXPECT_EQ(verdicts[1].recompute, "bf16 recompute");
  EXPECT_FALSE(verdicts[1].bitwise_equal);
  EXPECT_EQ(verdicts[1].first_position, 1);
  EXPECT_EQ(verdicts[1].differing_positions, 1);
  EXPECT_EQ(verdicts[1].max_abs_logit_difference, 0.5);
  EXPECT_EQ(verdicts[2].split, SplitMode::by_length);
  EXPECT_EQ(verdicts[2].cached, "f16 cached-decode by-length");
  EXPECT_EQ(verdicts[2].recompute, "f16 recompute");
  EXPECT_FALSE(verdicts[2].bitwise_equal);
  EXPECT_EQ(verdicts[2].first_position, 0);
  EXPECT_EQ(verdicts[2].first_token, 1);
  EXPECT_EQ(verdicts[2].differing_positions, 2);
  EXPECT_EQ(verdicts[2].max_abs_logit_difference, 1.0);
  EXPECT_EQ(verdicts[3].split, SplitMode::by_length);
  EXPECT_TRUE(verdicts[3].bitwise_equal);

  Result r;
  r.tokens = {5, 6};
  r.invariance = verdicts;
  EXPECT_FALSE(r.invariant());
  const std::string line = invariance_line(r);
  EXPECT_NE(line.find("FAILED"), std::string::npos) << line;
  EXPECT_NE(line.find("bf16"), std::string::npos) << line;
  EXPECT_NE(line.find("position 1"), std::string::npos) << line;
  EXPECT_EQ(line.find("by-length"), std::string::npos) << "by-length differences are no failure: " << line;
  const std::string by_length = by_length_line(r);
  EXPECT_NE(by_length.find("KV f16: differs at 2 of 2 positions (first 0), max |logit difference| 1.000e+00"),
            std::string::npos)
      << by_length;
  EXPECT_NE(by_length.find("KV bf16: bitwise equal at all 2 positions"), std::string::npos) << by_length;
  r.invariance.erase(r.invariance.begin() + 1);  // the failing invariant verdict; the differing by-length one stays
  EXPECT_TRUE(r.invariant());
  EXPECT_NE(invariance_line(r).find("bitwise equal at all 2 positions (KV f16)"), std::string::npos) << invariance_line(r);
}

TEST(DriftSequence, ContinuesThePromptWithTheF32EngineArgmax) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-qwen2");
  const std::vector<int> start = prompt("short.tokens", 8);
  const std::vector<int> tokens = drift_sequence(model, start, 20, Backend::twin);
  ASSERT_EQ(tokens.size(), 20u);
  EXPECT_TRUE(std::equal(start.begin(), start.end(), tokens.begin()));
  EngineOptions f32;
  f32.taps = TapSelection::logits;
  const TapSet taps = engine_forward(model, tokens, f32);  // one-shot prefill: the same bits as decoding
  const TapTensor& logits = *find_tap(taps, "logits");
  const int vocab = model.config.vocab;
  for (int t = int(start.size()) - 1; t + 1 < int(tokens.size()); ++t) {
    const double* row = logits.values.data() + std::size_t(t) * vocab;
    EXPECT_EQ(tokens[t + 1], int(std::max_element(row, row + vocab) - row)) << "t=" << t;
  }
  EXPECT_EQ(drift_sequence(model, start, 5, Backend::twin), std::vector<int>(start.begin(), start.begin() + 5));
}

TEST(DriftBudget, EachKvSpecGetsItsOwnKvAndCombinedRuns) {
  const auto runs = attribution_runs("bf16", test::weight_format("bf16"), {test::kv_spec("f16"), test::kv_spec("bf16")});
  ASSERT_EQ(runs.size(), 7u);  // floor, weights, arithmetic, then kv and all per spec
  std::vector<Series> series;
  for (std::size_t i = 0; i < runs.size(); ++i) {
    Series s;
    s.name = runs[i].name;
    s.positions.resize(3);
    s.positions[2].next_token.kl = double(i + 1);  // the budget reads the last position only
    s.positions[2].next_token.max_abs_logit_error = 10.0 * double(i + 1);
    series.push_back(s);
  }
  const auto budgets = error_budgets(runs, series, {test::kv_spec("f16"), test::kv_spec("bf16")}, 2);
  ASSERT_EQ(budgets.size(), 2u);
  const Budget& bf16 = budgets[1];
  EXPECT_EQ(bf16.kv_spec, "bf16");
  ASSERT_EQ(bf16.budget.sources.size(), 3u);
  EXPECT_EQ(bf16.budget.sources[0].entry.kl, 2.0);  // weights (run 1)
  EXPECT_EQ(bf16.budget.sources[1].entry.kl, 6.0);  // kv bf16 (run 5)
  EXPECT_EQ(bf16.budget.sources[2].entry.kl, 3.0);  // arithmetic (run 2)
  EXPECT_EQ(bf16.budget.combined.kl, 7.0);          // all with bf16 (run 6)
  EXPECT_EQ(bf16.floor.kl, 1.0);
  EXPECT_EQ(runs[5].emulation.kv.text, "bf16");
  EXPECT_EQ(runs[5].emulation.weights.name, "f32");
  EXPECT_EQ(runs[6].emulation.arithmetic, FloatFormat::f16);
  EXPECT_EQ(runs[6].emulation.weights.name, "bf16");
}

}  // namespace
}  // namespace kvfid::cli::drift
