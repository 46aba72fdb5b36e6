// Property 2: prefill in any split of the prompt into chunks gives the bits of the
// one-shot prefill, at every position, under any KV policy (gen_kv_policy).
// Half the cases run at real head sizes (head_dim 64/128, GQA 7:1: draw_small_or_real_heads).
#include "cuda/common/attention_math.h"
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
namespace num = kvfid::engine::num;  // the engine's arithmetic (which sees the numeric core's too)
using namespace kvfid::engine;  // the engine under test
namespace {

TEST(PropertyChunkedPrefill, AnySplitEqualsOneShot) {
  KVFID_REQUIRE_BACKEND();
  check_property(100, [] {
    ModelCase mc = draw_small_or_real_heads();
    mc.kv_policy = *gen_kv_policy(mc);  // holds under every policy: cold_end depends on positions only
    RC_CLASSIFY(mc.kv_policy.find("kivi") != std::string::npos, "KIVI");
    RC_CLASSIFY(mc.kv_policy.find("hot=") != std::string::npos, "hot window");
    RC_CLASSIFY(mc.kv_policy.find("rot=") != std::string::npos, "rotated");
    RC_CLASSIFY(mc.kv_policy.find("evict=") != std::string::npos, "evicting");
    const int length = *gen_length();
    const auto tokens = *gen_tokens(length, mc.vocab);
    const auto chunks = *gen_partition(length);
    const Model m = mc.model(kMaxSeq);
    const EngineOptions options = mc.options(backend_under_test());
    RC_CLASSIFY(length > num::kSplit, "prompt crosses the 256-key split");

    const SequenceRows whole = run_one_shot(m, options, tokens);
    const std::string gross = rows_gross_failure(whole);
    if (!gross.empty()) RC_FAIL(gross);
    Engine engine(m, options);
    const SequenceRows chunked = run_chunks(engine, engine.add_sequence(length), tokens, chunks);
    const std::string d = rows_difference(whole, 0, chunked, 0, length, m.config);
    if (!d.empty()) RC_FAIL(d);
  });
}

}  // namespace
}  // namespace kvfid::test
