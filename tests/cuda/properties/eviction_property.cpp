// Property 12: eviction (cuda/engine/eviction.h, reference/formats/quant/eviction_spec.h)
// on the twin. (a) A budget covering the sequence -- any policy at B >= T - 1,
// StreamingLLM whose window covers it -- is the full cache, bit for bit, under any
// storage. (b) What a policy evicts is gone: no later query reads it (its probability
// is exactly 0), every query reads at most B + 1 keys, each key leaves once, and the
// cache holds no more than its slots, its bytes those of the tokens still cached. (c)
// The window cache of a windowed model is its full cache, holding only the window.
// (Cached, chunked, batched and threaded runs agreeing bitwise under an eviction are the
// other properties' cases: gen_kv_policy draws evictions.)
#include <algorithm>
#include <cfloat>
#include <set>
#include <tuple>

#include "cuda/engine/eviction.h"
#include "cuda/engine/kv_plan.h"
#include "cuda/engine/sequence_buffers.h"
#include "tests/cuda/properties/generators.h"
#include "tests/cuda/properties/property_check.h"
#include "tests/cuda/properties/sequence_rows.h"

namespace kvfid::test {
using namespace kvfid::engine;  // the engine under test
namespace {

// The storage part of a drawn policy (no eviction, no KIVI: gen_kv_policy), as a spec.
std::string storage_policy(const ModelCase& mc) {
  const std::string base = *gen_kv_policy(mc, false);
  RC_PRE(base.find("kivi") == std::string::npos);  // KIVI refuses evictions
  return base.empty() ? to_string(mc.kv) : base;
}

// A drawn sequence run through model m's full cache (mc's storage) and through the same
// storage under `+evict=E`, in the same chunks: the rows must be the same bits (the
// property fails naming the policy otherwise); the evicting cache's evictions.
std::vector<quant::EvictionEvent> evicting_run_equals_full(const ModelCase& mc, const Model& m, const std::string& evict,
                                                           const std::vector<int>& tokens, const std::vector<int>& chunks) {
  const int T = int(tokens.size());
  Engine full(m, mc.options(Backend::twin));
  const SequenceRows a = run_chunks(full, full.add_sequence(T), tokens, chunks);
  ModelCase evicting = mc;
  evicting.kv_policy += "+evict=" + evict;
  Engine e(m, evicting.options(Backend::twin));
  const int seq = e.add_sequence(T);
  const SequenceRows b = run_chunks(e, seq, tokens, chunks);
  RC_ASSERT(rows_gross_failure(a).empty());
  const std::string diff = rows_difference(a, 0, b, 0, T, m.config);
  if (!diff.empty()) RC_FAIL(evicting.kv_policy + ": " + diff);
  return e.evictions(seq);
}

TEST(PropertyEviction, ABudgetCoveringTheSequenceIsTheFullCache) {
  KVFID_REQUIRE_BACKEND();
  check_property(40, [] {
    ModelCase mc = draw_small_or_real_heads();
    mc.window = 0;  // evictions are refused on windowed layers
    mc.latent = {};  // and on latent caches
    mc.kv_policy = storage_policy(mc);
    const int T = *gen_length(300);
    // Past keys: T - 1 at most (a budget is >= 1).
    const std::string covers = std::to_string(std::max(1, T - 1 + *rc::gen::inRange(0, 3)));
    const std::string evict = *rc::gen::element<std::string>(
        "h2o:" + covers, "tova:" + covers, "knorm:" + covers, "snapkv:" + covers + ",3,5", "h2o:100%",
        "streaming:" + std::to_string(*rc::gen::inRange(0, 3)) + "," + std::to_string(T + *rc::gen::inRange(0, 3)));
    RC_TAG(evict.substr(0, evict.find(':')));
    const auto tokens = *gen_tokens(T, mc.vocab);
    const auto chunks = *gen_partition(T);
    const Model m = mc.model(kMaxSeq);
    // Nothing left before a later query: a cache full at B + 1 after the last query
    // evicts then (the engine cannot know it was the last), which no query reads.
    for (const quant::EvictionEvent& ev : evicting_run_equals_full(mc, m, evict, tokens, chunks))
      RC_ASSERT(ev.after == T - 1);
  });
}

TEST(PropertyEviction, EvictedKeysAreGoneAndNeverReadAgain) {
  KVFID_REQUIRE_BACKEND();
  check_property(40, [] {
    ModelCase mc = draw_small_or_real_heads();
    mc.window = 0;
    mc.latent = {};
    mc.kv_policy = storage_policy(mc) + "+evict=" + *gen_eviction(mc.n_layers);
    const quant::EvictionPolicy policy = *quant::parse_kv_policy_spec(mc.kv_policy, "test").evict;
    RC_TAG(policy.spec().substr(0, policy.spec().find(':')));
    const int T = *gen_length(120);
    const auto tokens = *gen_tokens(T, mc.vocab);
    const auto chunks = *gen_partition(T);
    const Model m = mc.model(kMaxSeq);
    const ModelConfig& c = m.config;
    Engine e(m, mc.options(Backend::twin));
    const int seq = e.add_sequence(T);
    // probs[l]: [T, n_heads, T] every row's probabilities (LayerTaps::probs, width T).
    std::vector<std::vector<float>> probs(std::size_t(c.n_layers));
    int first = 0;
    for (int n : chunks) {
      const StepOutput& out = e.step({{seq, std::vector<int>(tokens.begin() + first, tokens.begin() + first + n)}}, true);
      for (int l = 0; l < c.n_layers; ++l) {
        RC_ASSERT(out.layers[std::size_t(l)].probs_width == T);
        probs[std::size_t(l)].insert(probs[std::size_t(l)].end(), out.layers[std::size_t(l)].probs.begin(),
                                     out.layers[std::size_t(l)].probs.end());
      }
      first += n;
    }
    // evicted_after[l][kvh][j]: the query after which key j left (T: never).
    std::vector<std::vector<std::vector<int>>> evicted_after(
        std::size_t(c.n_layers), std::vector<std::vector<int>>(std::size_t(c.n_kv_heads), std::vector<int>(std::size_t(T), T)));
    std::set<std::tuple<int, int, int>> seen;
    for (const quant::EvictionEvent& ev : e.evictions(seq)) {
      RC_ASSERT(seen.insert({ev.layer, ev.kv_head, ev.key}).second);  // each key leaves once
      RC_ASSERT(ev.key <= ev.after);
      RC_ASSERT(ev.after < T);
      evicted_after[std::size_t(ev.layer)][std::size_t(ev.kv_head)][std::size_t(ev.key)] = ev.after;
    }
    for (int l = 0; l < c.n_layers; ++l)
      for (int t = 0; t < T; ++t)
        for (int h = 0; h < c.n_heads; ++h) {
          const float* row = probs[std::size_t(l)].data() + (std::size_t(t) * c.n_heads + h) * T;
          int read = 0;
          float sum = 0;
          for (int j = 0; j < T; ++j) {
            const bool gone = j > t || evicted_after[std::size_t(l)][std::size_t(c.kv_head_of(h))][std::size_t(j)] < t;
            if (gone && row[j] != 0.0f) RC_FAIL("layer " + std::to_string(l) + " query " + std::to_string(t) +
                                                 " head " + std::to_string(h) + " read evicted key " + std::to_string(j));
            if (!gone) ++read, sum += row[j];
          }
          RC_ASSERT(read <= policy.budget_for(T, l) + 1);
          // Each p_j = fl(e_j / l), e_j = exp_portable(s_j - m) within kExpMaxUlp = 1 ulp
          // (tests/cuda/common/portable_math_bounds.h), l the e_j summed with `read`
          // roundings and, per split fold, rescaled by one more exp (4 roundings each, at
          // most `read` folds); the sum here adds `read` roundings. With u = FLT_EPSILON/2
          // that is |sum - 1| <= (2 + 1 + 6 read) u = (1.5 + 3 read) FLT_EPSILON, under
          // the 4 (read + 1) FLT_EPSILON asserted (first-order terms; the rest is below u).
          RC_ASSERT(std::abs(sum - 1.0f) <= 4.0f * float(read + 1) * FLT_EPSILON);
        }
    const KvPlan plan = make_kv_plan(mc.options(Backend::twin).kv, {}, c);
    for (int l = 0; l < c.n_layers; ++l) {
      const CacheValues cache = e.cache_values(seq, l);
      RC_ASSERT(cache.cached.size() == std::size_t(c.n_kv_heads) * T);
      std::size_t kept = 0;
      for (int kvh = 0; kvh < c.n_kv_heads; ++kvh) {
        const auto begin = cache.cached.begin() + std::ptrdiff_t(kvh) * T;
        const int held = int(std::count(begin, begin + T, std::uint8_t(1)));
        RC_ASSERT(held <= eviction_slots(policy, T, l));
        RC_ASSERT(held <= policy.budget_for(T, l));  // the last query evicted down to the budget too
        for (int j = 0; j < T; ++j)
          RC_ASSERT(bool(begin[j]) == (evicted_after[std::size_t(l)][std::size_t(kvh)][std::size_t(j)] == T));
        kept += std::size_t(held);
      }
      RC_ASSERT(cache.k_bytes == plan.held_bytes(l, false, c.kv_dim(), 1) * kept / std::size_t(c.n_kv_heads));
    }
  });
}

// The window cache (evict=window) of a model with its own sliding window: the full
// cache's outputs bit for bit (no key a query reads is evicted), each windowed layer's
// key j leaving right after query j + W - 1 (the last query that reads it), none of a
// global layer's, and the planes holding min(T, W) slots on a windowed layer.
TEST(PropertyEviction, TheWindowCacheIsTheFullCacheAndHoldsOnlyTheWindow) {
  KVFID_REQUIRE_BACKEND();
  check_property(30, [] {
    ModelCase mc = draw_small_or_real_heads();
    mc.window = *rc::gen::inRange(1, 49);
    mc.latent = {};
    mc.full_layers = mc.gemma2 ? 0 : *rc::gen::inRange(0, mc.n_layers);  // Qwen2's global lower layers
    RC_TAG(mc.gemma2 ? "gemma2" : mc.full_layers > 0 ? "global lower layers" : "every layer windowed");
    mc.kv_policy = storage_policy(mc);
    const int T = *gen_length(120);
    const auto tokens = *gen_tokens(T, mc.vocab);
    const auto chunks = *gen_partition(T);
    const Model m = mc.model(kMaxSeq);
    const ModelConfig& c = m.config;

    std::vector<int> left(std::size_t(c.n_layers) * c.n_kv_heads, 0);  // evictions per cache
    for (const quant::EvictionEvent& ev : evicting_run_equals_full(mc, m, "window", tokens, chunks)) {
      const int w = c.window_of(ev.layer);
      RC_ASSERT(w > 0);                          // a global layer keeps every key
      RC_ASSERT(ev.key == ev.after + 1 - w);     // right after its last reader
      ++left[std::size_t(ev.layer) * c.n_kv_heads + ev.kv_head];
    }
    std::size_t slots = 0;
    for (int l = 0; l < c.n_layers; ++l) {
      const int w = c.window_of(l);
      for (int kvh = 0; kvh < c.n_kv_heads; ++kvh)
        RC_ASSERT(left[std::size_t(l) * c.n_kv_heads + kvh] == (w > 0 ? std::max(0, T - w + 1) : 0));
      slots += std::size_t(w > 0 ? std::min(T, w) : T);
    }
    ModelCase windowed = mc;
    windowed.kv_policy += "+evict=window";
    const KvPlan plan = make_kv_plan(windowed.options(Backend::twin).kv, {}, c);
    RC_ASSERT(sequence_sizes(plan, c, T).cache ==
              2 * slots * c.n_kv_heads * c.head_dim * std::size_t(num::bytes_of(plan.evict_planes)));
  });
}

}  // namespace
}  // namespace kvfid::test
