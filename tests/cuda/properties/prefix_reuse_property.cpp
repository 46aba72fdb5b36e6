// Property 9: prefix reuse. Sequence B starts from a copy of the first n cached tokens
// of sequence A (Engine::fork_sequence) and continues with its own tokens; A continues
// too. Both give the bits of running each alone from scratch, under any KV policy
// (gen_kv_policy; a fork cutting a KIVI group encodes it again from the raw keys).
// Half the cases run at real head sizes (head_dim 64/128, GQA 7:1: draw_small_or_real_heads).
#include "reference/util/input_error.h"
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types
namespace {

TEST(PropertyPrefixReuse, ForkedSequenceEqualsSeparateRuns) {
  KVFID_REQUIRE_BACKEND();
  check_property(60, [] {
    ModelCase mc = draw_small_or_real_heads();
    // Holds under every policy (cold_end depends on positions only) but an eviction,
    // whose sequences cannot be forked (eviction.h).
    mc.kv_policy = *gen_kv_policy(mc, false);
    RC_CLASSIFY(mc.kv_policy.find("kivi") != std::string::npos, "KIVI");
    RC_CLASSIFY(mc.kv_policy.find("hot=") != std::string::npos, "hot window");
    RC_CLASSIFY(mc.kv_policy.find("rot=") != std::string::npos, "rotated");
    const Model m = mc.model(kMaxSeq);
    const EngineOptions options = mc.options(backend_under_test());
    const int a_length = *gen_length(280);
    const int shared = *rc::gen::inRange(0, a_length + 1);  // prefix B reuses
    const auto a_tokens = *gen_tokens(a_length, mc.vocab);
    const auto a_more = *gen_tokens(*rc::gen::inRange(1, 6), mc.vocab);  // A's tokens after the fork
    const auto b_own = *gen_tokens(*gen_length(40), mc.vocab);
    std::vector<int> b_tokens(a_tokens.begin(), a_tokens.begin() + shared);
    b_tokens.insert(b_tokens.end(), b_own.begin(), b_own.end());
    std::vector<int> a_all = a_tokens;
    a_all.insert(a_all.end(), a_more.begin(), a_more.end());
    const auto a_chunks = *gen_partition(a_length);
    const auto b_chunks = *gen_partition(int(b_own.size()));
    const int b_spare = *rc::gen::inRange(0, 30);  // B's capacity differs from A's

    Engine engine(m, options);
    const int a = engine.add_sequence(int(a_all.size()));
    SequenceRows a_rows = run_chunks(engine, a, a_tokens, a_chunks);
    const int b = engine.fork_sequence(a, shared, std::min(kMaxSeq, int(b_tokens.size()) + b_spare));
    RC_ASSERT(engine.length(b) == shared);
    // B's own tokens and A's continuation, interleaved: A's first token after the fork
    // joins B's first chunk (its row goes to a_rows).
    SequenceRows b_rows;
    std::size_t at = 0;
    for (std::size_t i = 0; i < b_chunks.size(); ++i) {
      std::vector<SequenceInput> in = {{b, std::vector<int>(b_own.begin() + at, b_own.begin() + at + b_chunks[i])}};
      if (i == 0) in.push_back({a, {a_more[0]}});
      const StepOutput& out = engine.step(in, true);
      append_rows(b_rows, out, 0, b_chunks[i], m.config);
      if (i == 0) append_rows(a_rows, out, b_chunks[i], 1, m.config);
      at += b_chunks[i];
    }
    const SequenceRows a_rest = run_chunks(engine, a, std::vector<int>(a_more.begin() + 1, a_more.end()),
                                           std::vector<int>(a_more.size() - 1, 1));

    const SequenceRows a_alone = run_one_shot(m, options, a_all);
    const std::string gross = rows_gross_failure(a_alone);
    if (!gross.empty()) RC_FAIL(gross);
    std::string d = rows_difference(a_alone, 0, a_rows, 0, a_length + 1, m.config);
    if (d.empty()) d = rows_difference(a_alone, a_length + 1, a_rest, 0, a_rest.rows, m.config);
    if (!d.empty()) RC_FAIL("source sequence: " + d);
    const SequenceRows b_alone = run_one_shot(m, options, b_tokens);
    d = rows_difference(b_alone, shared, b_rows, 0, int(b_own.size()), m.config);
    if (!d.empty()) RC_FAIL("forked sequence: " + d);
  });
}

TEST(PropertyPrefixReuse, ForkRejectsBadArguments) {
  KVFID_REQUIRE_BACKEND();
  const ModelCase mc;
  const Model m = mc.model(kMaxSeq);
  Engine engine(m, mc.options(backend_under_test()));
  const int a = engine.add_sequence(8);
  engine.step({{a, {1, 2, 3}}});
  EXPECT_THROW(engine.fork_sequence(5, 1, 8), InputError);
  EXPECT_THROW(engine.fork_sequence(a, 4, 8), InputError);  // longer than A's 3 tokens
  EXPECT_THROW(engine.fork_sequence(a, 3, 2), InputError);  // longer than the capacity
  EXPECT_EQ(engine.length(engine.fork_sequence(a, 3, 3)), 3);
}

}  // namespace
}  // namespace kvfid::test
