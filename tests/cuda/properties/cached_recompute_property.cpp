// Property 1: decoding token t on top of the KV cache (filled by any split of the
// prompt) gives the bits of a fresh one-shot prefill of tokens[0..t], row t: logits and
// every layer tap; under any KV policy (gen_kv_policy), as kv_policy.h's cold_end
// depends on positions only.
// Half the cases run at real head sizes (head_dim 64/128, GQA 7:1: draw_small_or_real_heads).
#include "cuda/common/attention_math.h"
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
namespace num = kvfid::engine::num;  // the engine's arithmetic (which sees the numeric core's too)
using namespace kvfid::engine;  // the engine under test
namespace {

TEST(PropertyCachedEqualsRecomputed, DecodeOnCacheEqualsFreshPrefill) {
  KVFID_REQUIRE_BACKEND();
  check_property(100, [] {
    ModelCase mc = draw_small_or_real_heads();
    mc.kv_policy = *gen_kv_policy(mc);  // holds under every policy: cold_end depends on positions only
    RC_CLASSIFY(mc.kv_policy.find("kivi") != std::string::npos, "KIVI");
    RC_CLASSIFY(mc.kv_policy.find("hot=") != std::string::npos, "hot window");
    RC_CLASSIFY(mc.kv_policy.find("rot=") != std::string::npos, "rotated");
    RC_CLASSIFY(mc.kv_policy.find("evict=") != std::string::npos, "evicting");
    const int t = *gen_length() - 1;  // position of the decoded token
    const auto tokens = *gen_tokens(t + 1, mc.vocab);
    const Model m = mc.model(kMaxSeq);
    const EngineOptions options = mc.options(backend_under_test());
    RC_CLASSIFY(t >= num::kSplit, "decode attends across the 256-key split");

    Engine cached(m, options);
    const int seq = cached.add_sequence(t + 1);
    if (t > 0) run_chunks(cached, seq, std::vector<int>(tokens.begin(), tokens.begin() + t), *gen_partition(t));
    SequenceRows decoded;
    append_rows(decoded, cached.step({{seq, {tokens[t]}}}, true), 0, 1, m.config);

    const SequenceRows fresh = run_one_shot(m, options, tokens);
    const std::string gross = rows_gross_failure(fresh);
    if (!gross.empty()) RC_FAIL(gross);
    const std::string d = rows_difference(decoded, 0, fresh, t, 1, m.config);
    if (!d.empty()) RC_FAIL(d);
  });
}

}  // namespace
}  // namespace kvfid::test
