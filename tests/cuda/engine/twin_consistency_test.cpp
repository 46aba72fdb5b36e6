// The twin's exactness properties: the same bits whatever the chunking, decoding token
// by token, batching, or run; across GQA ratios, head sizes, RoPE styles and formats.
// engine_forward's taps include the engine's logprobs, so each bitwise comparison covers
// the log-softmax too. (That the logits are the right function: twin_reference_test.)
#include <cmath>

#include <gtest/gtest.h>

#include "reference/numeric/ieee.h"
#include "cuda/engine/engine.h"
#include "cuda/engine/engine_forward.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/common/log_softmax_reference.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

using test::bitwise_difference;
using test::gross_failure;

EngineOptions twin(FloatFormat weights = FloatFormat::f32, FloatFormat kv = FloatFormat::f32, int chunk = 0) {
  EngineOptions o;
  o.backend = Backend::twin;
  o.weights = test::weight_format(weights);
  o.kv = test::kv_spec(kv);
  o.chunk = chunk;
  return o;
}

// Sliding windows on the twin: a window covering the prompt is full attention bit for
// bit; a short one keeps chunked prefill, token-by-token decode and batching bitwise
// equal (the window's keys are read in the same splits from the same first key).
TEST(EngineTwin, SlidingWindowsKeepEveryInvariance) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 8, RopeStyle::rotate_half, false), test::test_seed());
  const auto tokens = test::prompt_tokens(300, m.config.vocab, 5);
  Model covering = m, windowed = m;
  covering.config.sliding_window = 300;
  const TapSet plain = engine_forward(m, tokens, twin());
  EXPECT_EQ(bitwise_difference(plain, engine_forward(covering, tokens, twin())), "");
  // 37 keys: one split from the window's first key; 270: two splits (past kSplit = 256).
  for (int window : {37, 270}) {
    windowed.config.sliding_window = window, windowed.config.full_attention_layers = 1;
    const TapSet one_shot = engine_forward(windowed, tokens, twin());
    ASSERT_EQ(gross_failure(one_shot), "");
    EXPECT_NE(bitwise_difference(plain, one_shot), "") << "window " << window;
    for (int chunk : {1, 37, 256})
      EXPECT_EQ(bitwise_difference(one_shot, engine_forward(windowed, tokens, twin(FloatFormat::f32, FloatFormat::f32, chunk))),
                "")
          << "window " << window << ", chunk " << chunk;
  }
}

TEST(EngineTwin, RunToRunDeterministic) {
  const Model m = test::tiny_model(test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true), test::test_seed());
  const auto tokens = test::prompt_tokens(40, m.config.vocab, 5);
  const TapSet a = engine_forward(m, tokens, twin());
  ASSERT_EQ(gross_failure(a), "");
  EXPECT_EQ(bitwise_difference(a, engine_forward(m, tokens, twin())), "");
}

// 300 tokens cross the 256-key split boundary, so the fold of splits is exercised; chunk
// 1 is token-by-token decoding, 256 ends a chunk exactly on the split boundary.
TEST(EngineTwin, ChunkedPrefillAndDecodeEqualOneShot) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 2, 8, RopeStyle::interleaved, false), test::test_seed());
  const auto tokens = test::prompt_tokens(300, m.config.vocab, test::test_seed());
  const TapSet whole = engine_forward(m, tokens, twin());
  ASSERT_EQ(gross_failure(whole), "");
  for (int chunk : {1, 3, 7, 54, 97, 256}) {
    SCOPED_TRACE("chunk " + std::to_string(chunk));
    EXPECT_EQ(bitwise_difference(whole, engine_forward(m, tokens, twin(FloatFormat::f32, FloatFormat::f32, chunk))), "");
  }
}

// Attention shapes: GQA ratios 1, 2, 4, 7; head sizes that are odd multiples of 2; both
// RoPE pairings; bias; every weight and KV format.
TEST(EngineTwin, ShapesAndFormatsChunkInvariant) {
  SCOPED_TRACE(test::seed_trace());
  struct Shape {
    int heads, kv_heads, head_dim;
    RopeStyle rope;
    bool bias;
  };
  const Shape shapes[] = {{2, 2, 18, RopeStyle::interleaved, false},
                          {4, 2, 54, RopeStyle::rotate_half, true},
                          {4, 1, 18, RopeStyle::rotate_half, false},
                          {7, 1, 10, RopeStyle::interleaved, true}};
  const FloatFormat formats[] = {FloatFormat::f32, FloatFormat::f16, FloatFormat::bf16};
  int index = 0;
  for (const Shape& s : shapes) {
    const Model m = test::tiny_model(test::tiny_config(s.heads, s.kv_heads, s.head_dim, s.rope, s.bias), test::test_seed() + index);
    const auto tokens = test::prompt_tokens(23, m.config.vocab, test::test_seed() + index);
    const FloatFormat w = formats[index % 3], kv = formats[(index + 1) % 3];
    ++index;
    SCOPED_TRACE("heads " + std::to_string(s.heads) + "/" + std::to_string(s.kv_heads) + " head_dim " +
                 std::to_string(s.head_dim) + " weights " + to_string(w) + " kv " + to_string(kv));
    const TapSet whole = engine_forward(m, tokens, twin(w, kv));
    ASSERT_EQ(gross_failure(whole), "");
    for (int chunk : {1, 5}) EXPECT_EQ(bitwise_difference(whole, engine_forward(m, tokens, twin(w, kv, chunk))), "");
  }
}

// Sequences advanced together (prefill chunks and decode tokens mixed in one step) give
// the bits each gives alone.
TEST(EngineTwin, BatchEqualsAlone) {
  SCOPED_TRACE(test::seed_trace());
  const Model m = test::tiny_model(test::tiny_config(4, 1, 16, RopeStyle::rotate_half, false), test::test_seed());
  const int V = m.config.vocab;
  const std::vector<std::vector<int>> prompts = {test::prompt_tokens(9, V, 1), test::prompt_tokens(30, V, 2),
                                                 test::prompt_tokens(4, V, 3)};
  const int decode_steps = 6;
  auto decode_token = [&](int seq, int d) { return (d * 7 + seq * 3) % V; };
  // Alone: the prompt, then decode_steps fixed tokens.
  // Per sequence: its logits rows, then (in alone_lp / together_lp) its logprobs rows.
  std::vector<std::vector<float>> alone(prompts.size()), alone_lp(prompts.size());
  for (int i = 0; i < int(prompts.size()); ++i) {
    Engine e(m, twin());
    const int s = e.add_sequence(64);
    alone[i] = e.step({{s, prompts[i]}}).logits;
    alone_lp[i] = e.logprobs();
    for (int d = 0; d < decode_steps; ++d) {
      const auto& l = e.step({{s, {decode_token(i, d)}}}).logits;
      alone[i].insert(alone[i].end(), l.begin(), l.end());
      const auto& lp = e.logprobs();
      alone_lp[i].insert(alone_lp[i].end(), lp.begin(), lp.end());
    }
  }
  // Together: sequence 0 prefills alone; then 2 and 1 prefill in the step where 0 makes
  // its first decode; then all decode, listed in a varying order, 0 one token ahead.
  Engine e(m, twin());
  for (std::size_t i = 0; i < prompts.size(); ++i) ASSERT_EQ(e.add_sequence(64), int(i));
  std::vector<std::vector<float>> together(prompts.size()), together_lp(prompts.size());
  auto run = [&](const std::vector<SequenceInput>& in) {
    const StepOutput& out = e.step(in);
    const std::vector<float>& lp = e.logprobs();
    std::size_t row = 0;
    for (const SequenceInput& s : in)
      for (std::size_t t = 0; t < s.tokens.size(); ++t, ++row) {
        together[s.seq].insert(together[s.seq].end(), out.logits.begin() + row * V, out.logits.begin() + (row + 1) * V);
        together_lp[s.seq].insert(together_lp[s.seq].end(), lp.begin() + row * V, lp.begin() + (row + 1) * V);
      }
  };
  run({{0, prompts[0]}});
  run({{2, prompts[2]}, {0, {decode_token(0, 0)}}, {1, prompts[1]}});
  for (int d = 1; d < decode_steps; ++d) {
    if (d % 2) run({{1, {decode_token(1, d - 1)}}, {0, {decode_token(0, d)}}, {2, {decode_token(2, d - 1)}}});
    else run({{0, {decode_token(0, d)}}, {2, {decode_token(2, d - 1)}}, {1, {decode_token(1, d - 1)}}});
  }
  run({{2, {decode_token(2, decode_steps - 1)}}, {1, {decode_token(1, decode_steps - 1)}}});
  for (std::size_t i = 0; i < prompts.size(); ++i) {
    SCOPED_TRACE("sequence " + std::to_string(i));
    ASSERT_EQ(alone[i].size(), together[i].size());
    for (std::size_t j = 0; j < alone[i].size(); ++j)
      ASSERT_EQ(num::bits_of(alone[i][j]), num::bits_of(together[i][j])) << "logit " << j;
    ASSERT_EQ(alone_lp[i].size(), alone[i].size());
    ASSERT_EQ(together_lp[i].size(), alone[i].size());
    for (std::size_t j = 0; j < alone[i].size(); ++j)
      ASSERT_EQ(num::bits_of(alone_lp[i][j]), num::bits_of(together_lp[i][j])) << "logprob " << j;
  }
}

// The logprobs tap is the log-softmax of the logits tap: within the derived bound of a
// float64 log-softmax of the same FP32 logits, exp summing to 1 within its bound. A
// vocabulary of 1000 gives every GPU thread of the row several elements.
TEST(EngineTwin, LogprobsAreTheLogSoftmaxOfTheLogits) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(4, 2, 16, RopeStyle::rotate_half, true);
  c.vocab = 1000;
  const Model m = test::tiny_model(c, test::test_seed());
  const auto tokens = test::prompt_tokens(12, c.vocab, test::test_seed());
  EngineOptions o = twin(FloatFormat::bf16, FloatFormat::f16);
  o.taps = TapSelection::logits;
  const TapSet taps = engine_forward(m, tokens, o);
  ASSERT_EQ(gross_failure(taps), "");
  const TapTensor* logits = find_tap(taps, "logits");
  const TapTensor* logprobs = find_tap(taps, kLogprobsTap);
  ASSERT_NE(logits, nullptr);
  ASSERT_NE(logprobs, nullptr);
  ASSERT_EQ(logprobs->shape, logits->shape);
  double worst_ratio = 0;
  for (int t = 0; t < int(tokens.size()); ++t) {
    std::vector<float> row(c.vocab);
    for (int k = 0; k < c.vocab; ++k) row[k] = float(logits->values[std::size_t(t) * c.vocab + k]);
    const test::LogSoftmaxReference ref = test::log_softmax_reference(row.data(), c.vocab);
    double sum = 0;
    for (int k = 0; k < c.vocab; ++k) {
      const double lp = logprobs->values[std::size_t(t) * c.vocab + k];
      const double err = std::fabs(lp - ref.exact[k]);
      ASSERT_LE(err, ref.bound[k]) << "row " << t << " token " << k;
      worst_ratio = std::max(worst_ratio, err / ref.bound[k]);
      sum += std::exp(lp);
    }
    EXPECT_LE(std::fabs(sum - 1), ref.sum_bound) << "row " << t;
  }
  std::printf("twin logprobs: largest error / bound %.3f\n", worst_ratio);
}

}  // namespace
}  // namespace kvfid::engine
