// The engine's eviction (cuda/engine/eviction.h) against its specification
// (reference/formats/quant/eviction_spec.h): the FP32 scorers decide as the exact MPFR
// scorers do on the same probabilities, the twin evicts the keys the exact forward
// evicts on the fixtures, the tie rule, the memory the slots take, and what is refused.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <limits>
#include <random>
#include <tuple>

#include <gtest/gtest.h>

#include "cuda/engine/engine.h"
#include "cuda/engine/engine_forward.h"
#include "cuda/engine/eviction.h"
#include "cuda/engine/kv_plan.h"
#include "cuda/engine/sequence_buffers.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/mp/eviction_policy.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_weights.h"
#include "reference/util/input_error.h"
#include "tests/common/test_env.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

quant::EvictionPolicy policy_of(const std::string& spec) { return quant::parse_eviction_policy(spec, "test"); }

TEST(EngineEviction, TiesEvictTheOlderKeyAndANaNFirst) {
  const std::vector<int> keys = {2, 5, 7, 9};
  EXPECT_EQ(lowest_scores_f32(keys, {0.5f, 0.25f, 0.25f, 0.125f}, {false, false, false, false}, 2),
            (std::vector<int>{5, 9}));  // 0.125 first, then the older of the two 0.25s
  EXPECT_EQ(lowest_scores_f32(keys, {0.5f, 0.25f, 0.25f, 0.125f}, {false, false, false, true}, 2),
            (std::vector<int>{5, 7}));  // the protected lowest stays
  const float nan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_EQ(lowest_scores_f32(keys, {0.5f, nan, 0.0f, 0.125f}, {false, false, false, false}, 1), std::vector<int>{5});
}

// The FP32 scorers and the MPFR ones fed the same probabilities -- multiples of 2^-12
// summing to 1 per head, so every sum either takes is exact and their decisions must be
// identical -- over a stream of queries, each reading what the policy kept.
TEST(EngineEviction, Fp32ScorersDecideAsTheExactScorersOnExactSums) {
  std::mt19937 rng(test::test_seed());
  constexpr int kTokens = 40, kGroup = 3, kHeadDim = 4;
  constexpr mpfr_prec_t kPrecision = 128;
  for (const char* spec : {"h2o:9", "tova:6", "knorm:7", "snapkv:8,3,3", "snapkv:5,2,1", "streaming:2,5", "h2o:25%"}) {
    const quant::EvictionPolicy p = policy_of(spec);
    // Keys with small integer coordinates: their squared norms are exact in both.
    std::vector<float> keys(std::size_t(kTokens) * kHeadDim);
    for (float& x : keys) x = float(int(rng() % 9) - 4);
    MpArray mp_keys(keys.size(), kPrecision);
    for (std::size_t i = 0; i < keys.size(); ++i) mpfr_set_flt(mp_keys[i], keys[i], MPFR_RNDN);
    const std::unique_ptr<EvictionScorer> exact = make_eviction_scorer(p, kTokens, 0, mp_keys.data(), kHeadDim, 0, kHeadDim, kPrecision);
    KeyScorer fp32(p, kTokens, 0);
    std::vector<int> kept;
    for (int t = 0; t < kTokens; ++t) {
      fp32.cached(t, keys.data() + std::size_t(t) * kHeadDim, kHeadDim);
      std::vector<int> read = kept;
      read.push_back(t);
      const std::size_t n = read.size();
      std::vector<float> probs(kGroup * n);  // [group, n]: 4096 units of 2^-12 spread per head
      for (int g = 0; g < kGroup; ++g) {
        int left = 4096;
        for (std::size_t i = 0; i < n; ++i) {
          const int units = i + 1 == n ? left : int(rng() % std::uint32_t(left / 2 + 1));
          probs[g * n + i] = std::ldexp(float(units), -12);
          left -= units;
        }
      }
      MpArray mp_probs(probs.size(), kPrecision);
      for (std::size_t i = 0; i < probs.size(); ++i) mpfr_set_flt(mp_probs[i], probs[i], MPFR_RNDN);
      exact->attended(t, read, mp_probs.data(), nullptr, kGroup);
      fp32.attended(t, read, probs.data(), n, kGroup);
      std::vector<int> want = exact->evict(t, read);
      std::sort(want.begin(), want.end());
      ASSERT_EQ(fp32.evict(t, read), want) << spec << " after query " << t;
      kept.clear();
      for (int j : read)
        if (!std::binary_search(want.begin(), want.end(), j)) kept.push_back(j);
    }
  }
}

// A bound on how far any of the twin's scores for (layer, kv_head) after query t lies
// from the exact forward's, from the two forwards' taps (valid while their caches agree):
// a score sums probabilities over the policy's queries and the group's heads (h2o: every
// query so far; tova: query t; snapkv: the last OBS), so its error is at most the sum of
// those probabilities' differences plus the FP32 sums' rounding (n terms of at most the
// score's size: n u per term, u = 2^-24); knorm's is the difference of the squared
// norms, the twin's an fma chain over its key tap (as eviction.cpp computes it).
double score_error_bound(const quant::EvictionPolicy& p, const ModelConfig& c, const TapSet& twin, const TapSet& exact,
                         int layer, int kv_head, int t) {
  const int T = int(find_tap(twin, "logits")->shape[0]), G = c.group(), hd = c.head_dim;
  constexpr double u = 0x1p-24;
  double worst = 0;
  if (p.kind == quant::EvictionKind::knorm) {
    const auto& kt = find_tap(twin, tap_layer_name(layer, "k"))->values;  // [T, n_kv_heads, head_dim]
    const auto& ke = find_tap(exact, tap_layer_name(layer, "k"))->values;
    for (int j = 0; j <= t; ++j) {
      float nt = 0;
      double ne = 0;
      for (int d = 0; d < hd; ++d) {
        const std::size_t at = (std::size_t(j) * c.n_kv_heads + kv_head) * hd + d;
        nt = std::fma(float(kt[at]), float(kt[at]), nt);
        ne += ke[at] * ke[at];
      }
      worst = std::max(worst, std::abs(double(nt) - ne) + hd * 0x1p-52 * ne);
    }
    return worst;
  }
  const int first = p.kind == quant::EvictionKind::h2o ? 0
                    : p.kind == quant::EvictionKind::tova ? t
                                                          : std::max(0, t - p.obs_window + 1);
  const auto& pt = find_tap(twin, tap_layer_name(layer, "attn.probs"))->values;  // [n_heads, T, T]
  const auto& pe = find_tap(exact, tap_layer_name(layer, "attn.probs"))->values;
  const int terms = (t + 1 - first) * G;
  for (int j = 0; j <= t; ++j) {
    double e = 0;
    for (int q = first; q <= t; ++q)
      for (int g = 0; g < G; ++g) {
        const std::size_t at = (std::size_t(kv_head * G + g) * T + q) * T + j;
        e += std::abs(pt[at] - pe[at]);
      }
    worst = std::max(worst, e);
  }
  return worst + double(terms) * u * double(terms);
}

// On the fixtures, with FP32 storage, the twin evicts what the exact forward evicts, up
// to the first step where the exact margin (EvictionScorer::margin) is within twice the
// bound on the twin's score errors -- a near-tie, which FP32 may break either way
// (eviction_spec.h); after that the two caches differ and nothing more is compared. A
// policy rule broken in the twin shows as a disagreement at a wide margin.
TEST(EngineEviction, TwinEvictsTheKeysTheExactForwardEvictsUpToANearTie) {
  std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  tokens.resize(48);
  const int T = int(tokens.size());
  int agreed = 0, near_ties = 0;
  for (const char* fixture : {"tiny-llama", "tiny-qwen2", "tiny-qwen3", "tiny-mqa"}) {
    const Model model = load_model(test::fixtures_dir() + "/" + fixture);
    const MpWeights weights = to_mp_weights(model, 128);
    for (const char* evict : {"h2o:25%", "tova:25%", "knorm:25%", "snapkv:25%,4,3", "streaming:2,10", "h2o:50%"}) {
      const std::string spec = std::string("f32+evict=") + evict;
      const quant::EvictionPolicy policy = policy_of(evict);
      EngineOptions o;
      o.kv = test::kv_spec(spec);
      const TapSet twin_taps = engine_forward(model, tokens, o);
      Engine engine(model, o);
      const int seq = engine.add_sequence(T);
      engine.step({{seq, tokens}});
      std::vector<quant::EvictionEvent> twin;
      for (const quant::EvictionEvent& e : engine.evictions(seq))
        if (e.after < T - 1) twin.push_back(e);  // the exact forward stops at its last query

      MpForwardOptions exact;
      exact.arith = MpArith::exact(128);
      exact.kv = quant::resolve_kv_policy(o.kv, {}, model.config);
      EvictionRecord record;
      exact.evict_record = &record;
      TapSet exact_taps;
      for (const MpTap& t : mp_forward(model, weights, tokens, exact))
        exact_taps.push_back(TapTensor{t.name, t.shape, to_doubles(t.values)});
      ASSERT_FALSE(record.evicted.empty()) << fixture << " " << spec;
      const std::vector<quant::EvictionEvent>& want = record.evicted;
      std::size_t i = 0;
      while (i < twin.size() && i < want.size() && twin[i] == want[i]) ++i;
      if (i == twin.size() && i == want.size()) {
        ++agreed;
        continue;
      }
      // The first step that differs: the earlier of the two events there.
      auto key = [](const quant::EvictionEvent& e) { return std::tuple(e.layer, e.kv_head, e.after); };
      const quant::EvictionEvent at = i == twin.size()                          ? want[i]
                                      : i == want.size() || key(twin[i]) < key(want[i]) ? twin[i]
                                                                                          : want[i];
      double margin = std::numeric_limits<double>::infinity();
      for (const EvictionDecision& d : record.decisions)
        if (d.layer == at.layer && d.kv_head == at.kv_head && d.after == at.after) margin = d.margin;
      const double bound = score_error_bound(policy, model.config, twin_taps, exact_taps, at.layer, at.kv_head, at.after);
      EXPECT_LE(margin, 2 * bound) << fixture << " " << spec << ": the twin and the exact forward first differ after "
                                   << "query " << at.after << " of layer " << at.layer << ", KV head " << at.kv_head
                                   << ", where the exact margin " << margin << " exceeds twice the score error bound "
                                   << bound;
      std::printf("[eviction] %s %s: near-tie after query %d of layer %d, KV head %d: margin %.3g, score error bound %.3g\n",
                  fixture, spec.c_str(), at.after, at.layer, at.kv_head, margin, bound);
      ++near_ties;
    }
  }
  std::printf("[eviction] %d runs agreed on every key, %d met a near-tie first\n", agreed, near_ties);
  // Most runs agree on every key; a near-tie is the exception, not the rule.
  EXPECT_GT(agreed, 3 * near_ties) << agreed << " runs agreed, " << near_ties << " met a near-tie";
}

TEST(EngineEviction, TheCacheHoldsItsSlotsOnly) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-llama");
  const ModelConfig& c = model.config;
  const KvPlan plan = make_kv_plan(test::kv_spec("q8_0+evict=h2o:15+hot=4"), {}, c);
  ASSERT_FALSE(plan.fast);
  const SequenceSizes s = sequence_sizes(plan, c, 100);
  const std::size_t slots_plane = std::size_t(c.n_kv_heads) * 16 * c.head_dim * 4;  // B + 1 = 16 slots, FP32
  EXPECT_EQ(s.cache, 2 * c.n_layers * slots_plane);
  EXPECT_EQ(s.hot, 2 * c.n_layers * slots_plane);
  EXPECT_EQ(s.codes, 0u);
  EXPECT_EQ(s.raw, 0u);
  EXPECT_EQ(eviction_slots(policy_of("h2o:15"), 10, 0), 10);  // never more than the capacity
  EXPECT_EQ(eviction_slots(policy_of("streaming:4,60"), 1000, 0), 64);
  EXPECT_EQ(eviction_slots(policy_of("tova:25%"), 100, 0), 26);
  // Per layer: each its own slots, and its planes hold just those, in the storage's
  // format when that is one plain format.
  EXPECT_EQ(eviction_slots(policy_of("h2o:4/9"), 100, 0), 5);
  EXPECT_EQ(eviction_slots(policy_of("h2o:4/9"), 100, 1), 10);
  const KvPlan per_layer = make_kv_plan(test::kv_spec("f16+evict=h2o:4/9"), {}, c);
  EXPECT_EQ(per_layer.evict_planes, FloatFormat::f16);
  const std::size_t row = std::size_t(c.n_kv_heads) * c.head_dim * 2;  // one slot of every KV head, FP16
  EXPECT_EQ(sequence_sizes(per_layer, c, 100).cache, 2 * (5 + 10) * row);
  const EvictedPlanes planes = evicted_planes(*per_layer.policy.evict, c, 100);
  EXPECT_EQ(planes.layer[0].capacity, 5);
  EXPECT_EQ(planes.layer[1].capacity, 10);
  EXPECT_EQ(planes.k_at[1], 2 * 5 * row / 2);  // elements, after layer 0's K and V planes
}

// The host's half of an evicting step, which the twin and the CUDA engine share: each KV
// head's scorer reads its own group's rows of the probabilities, and the key lists a
// device reads give each kept key's position and slot, in position order.
TEST(EngineEviction, TheHostStepReadsEachGroupsProbabilitiesAndListsTheKeptKeys) {
  CacheEviction tova(policy_of("tova:2"), 1, 2, 10);  // one layer, 2 KV heads of 3 slots
  constexpr int kGroup = 2, kStride = 3;
  std::vector<float> probs(2 * kGroup * kStride, 0.25f);  // [query heads, stride]
  for (int t = 0; t < 2; ++t) {
    for (int h = 0; h < 2; ++h) tova.place(0, h, t);
    tova.attended(0, t, probs.data(), kStride, kGroup);
  }
  for (int h = 0; h < 2; ++h) tova.place(0, h, 2);
  probs = {0.5f, 0.2f, 0.3f, 0.9f, 0.0f, 0.1f,   // KV head 0's query heads: key 1 the least mass
           0.0f, 0.6f, 0.4f, 0.3f, 0.4f, 0.3f};  // KV head 1's: key 0 (rows 1 and 2 would say key 1)
  tova.attended(0, 2, probs.data(), kStride, kGroup);
  EXPECT_EQ(tova.cached(0, 0), (std::vector<int>{0, 2}));
  EXPECT_EQ(tova.cached(0, 1), (std::vector<int>{1, 2}));
  // Slots: 0, 1, 2 taken in order (the free stack's lowest first), none reused yet.
  std::vector<int> lists;
  tova.key_lists(0, 4, lists);
  EXPECT_EQ(lists, (std::vector<int>{0, 2, 0, 0, 1, 2, 0, 0,    // positions, per KV head
                                     0, 2, 0, 0, 1, 2, 0, 0,    // their slots
                                     2, 2}));                   // counts
  EXPECT_THROW(tova.key_lists(0, 1, lists), std::logic_error);
  // The next token takes the slot freed last: KV head 0's slot 1, KV head 1's slot 0.
  EXPECT_EQ(tova.place(0, 0, 3), 1);
  EXPECT_EQ(tova.place(0, 1, 3), 0);
  tova.key_lists(0, 3, lists);
  EXPECT_EQ(lists, (std::vector<int>{0, 2, 3, 1, 2, 3, 0, 2, 1, 1, 2, 0, 3, 3}));
}

// Per-layer budgets: each layer's caches hold their own budget after the last query.
TEST(EngineEviction, EachLayerKeepsItsOwnBudget) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-llama");
  ASSERT_EQ(model.config.n_layers, 2);
  EngineOptions o;
  o.kv = test::kv_spec("f32+evict=h2o:3/6");
  Engine engine(model, o);
  const int seq = engine.add_sequence(20);
  std::vector<int> tokens(20);
  for (int i = 0; i < 20; ++i) tokens[std::size_t(i)] = (7 * i + 3) % model.config.vocab;
  engine.step({{seq, tokens}});
  for (int l = 0; l < 2; ++l) {
    const CacheValues cache = engine.cache_values(seq, l);
    for (int h = 0; h < model.config.n_kv_heads; ++h)
      EXPECT_EQ(std::count(cache.cached.begin() + h * 20, cache.cached.begin() + (h + 1) * 20, std::uint8_t(1)), l == 0 ? 3 : 6)
          << "layer " << l << " kv head " << h;
  }
  o.kv = test::kv_spec("f32+evict=h2o:3/6/9");
  EXPECT_THROW(Engine(model, o), InputError);  // three budgets, two layers
}

// The window cache (evict=window) of the windowed fixtures -- tiny-gemma2 (window 5 on
// layer 0, layer 1 global) and tiny-mistral (6 on both) -- is their full cache bit for bit
// under each storage, every tap, in one prefill and in chunks of 3 (a chunk's rows read
// the window one after another); a windowed layer's cache holds its window's 5 or 6
// tokens at the end, a global layer's all 24, in FP16 bytes of those slots alone; the
// CUDA engine refuses it.
TEST(EngineEviction, TheWindowCacheOfAWindowedFixtureIsItsFullCache) {
  constexpr int kTokens = 24;
  for (const char* name : {"tiny-gemma2", "tiny-mistral"}) {
    const Model model = load_model(test::fixtures_dir() + "/" + name);
    const ModelConfig& c = model.config;
    std::vector<int> tokens(kTokens);
    for (int i = 0; i < kTokens; ++i) tokens[std::size_t(i)] = (11 * i + 5) % c.vocab;
    for (const char* storage : {"f32", "f16", "bf16", "q8_0", "int4_32+hot=3", "q4_0+rot=hadamard"})
      for (int chunk : {0, 3}) {
        SCOPED_TRACE(std::string(name) + " " + storage + " chunk " + std::to_string(chunk));
        EngineOptions o;
        o.kv = test::kv_spec(storage);
        o.chunk = chunk;
        const TapSet full = engine_forward(model, tokens, o);
        o.kv = test::kv_spec(std::string(storage) + "+evict=window");
        EXPECT_EQ(test::bitwise_difference(full, engine_forward(model, tokens, o)), "");
      }
    EngineOptions o;
    o.kv = test::kv_spec("f16+evict=window");
    Engine engine(model, o);
    const int seq = engine.add_sequence(kTokens);
    engine.step({{seq, tokens}});
    for (int l = 0; l < c.n_layers; ++l) {
      const CacheValues cache = engine.cache_values(seq, l);
      const int held = c.window_of(l) > 0 ? c.window_of(l) - 1 : kTokens;  // the last query evicted too
      for (int h = 0; h < c.n_kv_heads; ++h)
        EXPECT_EQ(std::count(cache.cached.begin() + h * kTokens, cache.cached.begin() + (h + 1) * kTokens, std::uint8_t(1)),
                  held)
            << name << " layer " << l << " kv head " << h;
    }
    // Its bytes: the full f16 cache's for the global layers, the window's for the windowed.
    std::size_t slots = 0;
    for (int l = 0; l < c.n_layers; ++l) slots += std::size_t(c.window_of(l) > 0 ? c.window_of(l) : kTokens);
    const std::size_t slot_bytes = 2 * std::size_t(c.n_kv_heads) * c.head_dim * 2;  // K and V, FP16
    EXPECT_EQ(sequence_sizes(make_kv_plan(o.kv, {}, c), c, kTokens).cache, slots * slot_bytes);
    EXPECT_EQ(sequence_sizes(make_kv_plan(test::kv_spec("f16"), {}, c), c, kTokens).cache,
              std::size_t(c.n_layers) * kTokens * slot_bytes);
  }
}

TEST(EngineEviction, ForksAreRefused) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-llama");
  EngineOptions o;
  o.kv = test::kv_spec("f16+evict=tova:4");
  Engine engine(model, o);
  const int seq = engine.add_sequence(8);
  engine.step({{seq, {1, 2, 3}}});
  try {
    engine.fork_sequence(seq, 2, 8);
    FAIL() << "a sequence under an eviction was forked";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("no longer holds the prefix"), std::string::npos) << e.what();
  }
}

}  // namespace
}  // namespace kvfid::engine
