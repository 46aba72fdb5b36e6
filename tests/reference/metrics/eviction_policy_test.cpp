// Eviction policies in the exact forward (reference/mp/eviction_policy.h,
// evicting_attention.h): the specs parsed or refused; a budget covering the prompt is the
// full cache bit for bit; streaming through the policy path is the attention mask's
// StreamingLLM bit for bit; the window policy is a windowed model's own forward bit for
// bit and is refused elsewhere; every policy's account holds its bound on every step, on a
// synthetic model and on tiny-qwen2; each score-based policy evicts the keys worked out
// by hand; the results do not depend on the thread count.
#include <algorithm>
#include <cmath>
#include <set>
#include <tuple>

#include <gtest/gtest.h>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/mp/enclosure.h"
#include "reference/mp/evicting_attention.h"
#include "reference/mp/eviction_policy.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_weights.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "reference/util/input_error.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

// The first 32 tokens of the medium prompt: long enough for every policy to evict many
// times at budget 8, short enough for a forward in ~0.1 s.
std::vector<int> prompt32() {
  std::vector<int> t = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  t.resize(32);
  return t;
}

std::string problem(const std::string& spec) {
  try {
    quant::parse_eviction_policies(spec, "--policy");
  } catch (const InputError& e) {
    return e.what();
  }
  return "";
}

TEST(EvictionPolicy, SpecsAreParsed) {
  const EvictionPolicy s = quant::parse_eviction_policy("streaming:4,60", "--policy");
  EXPECT_EQ(s.kind, EvictionKind::streaming);
  EXPECT_EQ(s.sinks, 4);
  EXPECT_EQ(s.window, 60);
  EXPECT_EQ(s.budget_for(1000, 0), 63);  // past keys: the window holds the query's own
  const EvictionPolicy h = quant::parse_eviction_policy("h2o:25%", "--policy");
  EXPECT_EQ(h.kind, EvictionKind::h2o);
  EXPECT_EQ(h.budget_for(512, 0), 128);
  EXPECT_EQ(h.budget_for(10, 0), 3);  // rounded up
  EXPECT_EQ(h.spec(), "h2o:25%");
  EXPECT_EQ(quant::parse_eviction_policy("tova:7", "--policy").budget_for(512, 0), 7);
  EXPECT_EQ(quant::parse_eviction_policy("knorm:100%", "--policy").budget_for(37, 0), 37);
  const EvictionPolicy k = quant::parse_eviction_policy("snapkv:50%,16,7", "--policy");
  EXPECT_EQ(k.kind, EvictionKind::snapkv);
  EXPECT_EQ(k.obs_window, 16);
  EXPECT_EQ(k.pool, 7);
  EXPECT_EQ(k.spec(), "snapkv:50%,16,7");
  const std::vector<EvictionPolicy> list =
      quant::parse_eviction_policies("streaming:4,60,h2o:25%,snapkv:64,16,7,tova:3,knorm:9", "--policy");
  ASSERT_EQ(list.size(), 5u);
  EXPECT_EQ(list[0].spec(), "streaming:4,60");
  EXPECT_EQ(list[2].spec(), "snapkv:64,16,7");
  EXPECT_EQ(list[4].spec(), "knorm:9");
}

// Budgets per layer, '/'-joined: each layer its own, counts and percentages mixed; the
// count must match the model's layers.
TEST(EvictionPolicy, PerLayerBudgets) {
  const EvictionPolicy p = quant::parse_eviction_policy("snapkv:64/25%/8,4,3", "--policy");
  ASSERT_EQ(p.budgets.size(), 3u);
  EXPECT_EQ(p.budget_for(100, 0), 64);
  EXPECT_EQ(p.budget_for(100, 1), 25);
  EXPECT_EQ(p.budget_for(100, 2), 8);
  EXPECT_EQ(p.max_budget_for(100), 64);
  EXPECT_EQ(p.spec(), "snapkv:64/25%/8,4,3");
  EXPECT_THROW(p.budget_for(100, 3), std::logic_error);
  EXPECT_NO_THROW(quant::check_eviction_layers(p, 3, "--policy"));
  try {
    quant::check_eviction_layers(p, 2, "--policy");
    ADD_FAILURE() << "3 budgets accepted for 2 layers";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("gives 3 per-layer budgets for a model of 2 layers"), std::string::npos) << e.what();
  }
  EXPECT_NO_THROW(quant::check_eviction_layers(quant::parse_eviction_policy("h2o:9", "x"), 5, "x"));  // one for all
  EXPECT_THROW(quant::parse_eviction_policy("h2o:8/", "x"), InputError);
  EXPECT_THROW(quant::parse_eviction_policy("h2o:8/0", "x"), InputError);
  EXPECT_THROW(quant::parse_eviction_policy("streaming:4/2,8", "x"), InputError);
}

TEST(EvictionPolicy, BadSpecsAreRefusedNamingThePart) {
  const std::vector<std::pair<std::string, std::string>> cases = {
      {"lru:4", "'lru:4' is not an eviction policy"},
      {"", "is not an eviction policy"},
      {"h2o", "h2o takes h2o:BUDGET"},
      {"h2o:0", "h2o's budget '0' is neither a token count >= 1"},
      {"h2o:-3", "h2o's budget '-3'"},
      {"tova:abc", "tova's budget 'abc'"},
      {"knorm:0%", "knorm's budget '0%' is not a percentage from 1% to 100%"},
      {"knorm:101%", "'101%' is not a percentage"},
      {"h2o:12.5%", "h2o's budget '12.5%'"},
      {"tova:4,5", "tova takes tova:BUDGET"},
      {"snapkv:64,16", "snapkv takes snapkv:BUDGET,OBS,POOL"},
      {"snapkv:64,0,7", "snapkv's observation window OBS '0'"},
      {"snapkv:64,16,4", "POOL '4' is even"},
      {"streaming:4", "streaming takes streaming:SINKS,WINDOW"},
      {"streaming:4,0", "streaming's WINDOW"},
      {"streaming:-1,4", "streaming's SINKS '-1'"},
      {"h2o:8,lru:3", "'lru:3' is not an eviction policy"},
      {"window:4", "window takes no argument"},
  };
  for (const auto& [spec, wanted] : cases) {
    const std::string got = problem(spec);
    EXPECT_NE(got.find("--policy: "), std::string::npos) << spec << ": " << got;
    EXPECT_NE(got.find(wanted), std::string::npos) << spec << ": " << got;
  }
}

// window names no size: the model gives each layer's (0 on a global layer), and only a
// model with a sliding window takes it, while any other policy is refused on such a
// model -- Gemma 2's included, whose last layer is a global one.
TEST(EvictionPolicy, WindowTakesEachLayersWindowFromTheModel) {
  const EvictionPolicy p = quant::parse_eviction_policy("window", "--policy");
  EXPECT_EQ(p.kind, EvictionKind::window);
  EXPECT_EQ(p.spec(), "window");
  EXPECT_THROW(p.budget_for(100, 0), std::logic_error);  // no model's windows yet
  EXPECT_EQ(quant::parse_eviction_policies("h2o:8,window", "--policy").at(1).spec(), "window");
  ModelConfig c;
  c.n_layers = 4;
  c.sliding_window = 6;
  c.alternating_window = true;  // Gemma 2: even layers windowed
  const EvictionPolicy g = quant::eviction_for_model(p, c, "--kv");
  EXPECT_EQ(g.layer_windows, (std::vector<int>{6, 0, 6, 0}));
  EXPECT_EQ(g.budget_for(100, 0), 5);    // with the query's own key, the 6 its query reads
  EXPECT_EQ(g.budget_for(100, 1), 100);  // every key
  EXPECT_EQ(g.max_budget_for(100), 100);
  c.alternating_window = false;
  c.full_attention_layers = 3;  // Qwen2's max_window_layers
  EXPECT_EQ(quant::eviction_for_model(p, c, "--kv").layer_windows, (std::vector<int>{0, 0, 0, 6}));
  auto refusal = [](const EvictionPolicy& policy, const ModelConfig& config) -> std::string {
    try {
      quant::eviction_for_model(policy, config, "--kv");
    } catch (const InputError& e) {
      return e.what();
    }
    return "";
  };
  c.n_layers = 2;
  c.full_attention_layers = 0;
  c.alternating_window = true;  // layer 1, the last, is global
  EXPECT_NE(refusal(quant::parse_eviction_policy("h2o:8", "x"), c).find("--kv: eviction 'h2o:8' on a model with its own "
                                                                        "sliding window (6 tokens) is not supported"),
            std::string::npos);
  c.sliding_window = 0;
  EXPECT_NE(refusal(p, c).find("--kv: eviction 'window' on a model without a sliding window"), std::string::npos);
  EXPECT_EQ(refusal(quant::parse_eviction_policy("h2o:8", "x"), c), "");
}

// The tie rule: lower scores first, equal scores the older position first; protected keys never.
TEST(EvictionPolicy, TiesEvictTheOlderKey) {
  MpArray scores(5, 64);
  for (int i = 0; i < 5; ++i) mpfr_set_d(scores[i], i == 0 ? 2.0 : i == 4 ? 0.5 : 1.0, MPFR_RNDN);
  const std::vector<int> keys = {3, 5, 6, 8, 9};
  EXPECT_EQ(lowest_scores(keys, scores.data(), {false, false, false, false, false}, 3), (std::vector<int>{9, 5, 6}));
  EXPECT_EQ(lowest_scores(keys, scores.data(), {false, true, false, false, true}, 2), (std::vector<int>{6, 8}));
}

// SnapKV's pooling on hand-set attention: budget 3, OBS 1, POOL 3; the newest key is
// protected; the old keys' raw scores (0.02, 0.30, 0.03, 0.05) pool to (0.30, 0.30, 0.30,
// 0.05), so key 3 and then (a tie) the oldest, key 0, leave; without pooling (POOL 1),
// keys 0 and 2. With OBS 2 the previous query's attention adds in.
TEST(EvictionPolicy, SnapKvMaxPoolsTheWindowsAttention) {
  auto evicted = [](int obs, int pool, bool two_queries) {
    EvictionPolicy p = quant::parse_eviction_policy("snapkv:3," + std::to_string(obs) + "," + std::to_string(pool), "test");
    auto scorer = make_eviction_scorer(p, 8, 0, nullptr, 0, 0, 1, 64);
    MpArray probs(5, 64);
    if (two_queries) {  // query 3 read keys 0..3 and gave key 2 a lot
      const double earlier[] = {0.1, 0.1, 0.7, 0.1};
      for (int i = 0; i < 4; ++i) mpfr_set_d(probs[i], earlier[i], MPFR_RNDN);
      scorer->attended(3, {0, 1, 2, 3}, probs.data(), nullptr, 1);
    }
    const double now[] = {0.02, 0.30, 0.03, 0.05, 0.60};
    for (int i = 0; i < 5; ++i) mpfr_set_d(probs[i], now[i], MPFR_RNDN);
    scorer->attended(4, {0, 1, 2, 3, 4}, probs.data(), nullptr, 1);
    std::vector<int> gone = scorer->evict(4, {0, 1, 2, 3, 4});
    std::sort(gone.begin(), gone.end());
    return gone;
  };
  EXPECT_EQ(evicted(1, 3, false), (std::vector<int>{0, 3}));
  EXPECT_EQ(evicted(1, 1, false), (std::vector<int>{0, 2}));
  // OBS 2, POOL 1: keys 3 and 4 protected, the sums over both queries (0.12, 0.40, 0.73):
  // keys 0 and 1.
  EXPECT_EQ(evicted(2, 1, true), (std::vector<int>{0, 1}));
}

// Under enclosures a decision is taken only when proven (EvictionScorer::decided): TOVA
// at budget 3 over probabilities (0.2, 0.2 + 2^-30, 0.25, 0.35) evicts key 0 against key 1
// -- proven with exact scores or radii of 2^-40 (the balls apart), not with radii of 2^-28
// (they overlap) nor for an exact tie with any radius. SnapKV's pooled ties are one
// quantity when the raw score pooled is provably its windows' largest, so its tie rule
// stands: at budget 3, OBS 1, POOL 3 over (0.295, 0.30, 0.01, 0.01, 0.385) keys 0, 1 and 2
// all pool key 1's 0.30 and key 0 (the oldest) leaves with key 3 -- proven with radii of
// 2^-40; with radii of 0.02 key 0's own 0.295 may be the larger in truth (then keys 0 and
// 1 pool it and key 2 leaves instead), so it is not.
TEST(EvictionPolicy, EnclosedDecisionsAreProvenOrLeftOpen) {
  auto decided = [](const std::string& spec, const std::vector<double>& p, double radius,
                    std::vector<int> expected_gone) {
    SCOPED_TRACE(spec + " radius " + std::to_string(radius));
    const EvictionPolicy policy = quant::parse_eviction_policy(spec, "test");
    auto scorer = make_eviction_scorer(policy, 8, 0, nullptr, 0, 0, 1, 64, true);
    const int n = int(p.size());
    MpArray probs(std::size_t(n), 64), radii = exact_radii(std::size_t(n));
    std::vector<int> keys;
    for (int i = 0; i < n; ++i) {
      mpfr_set_d(probs[i], p[std::size_t(i)], MPFR_RNDN);
      mpfr_set_d(radii[i], radius, MPFR_RNDU);
      keys.push_back(i);
    }
    scorer->attended(n - 1, keys, probs.data(), radii.data(), 1);
    std::vector<int> gone = scorer->evict(n - 1, keys);
    std::sort(gone.begin(), gone.end());
    EXPECT_EQ(gone, expected_gone);
    return scorer->decided();
  };
  const std::vector<double> near = {0.2, 0.2 + 0x1p-30, 0.25, 0.35}, tie = {0.2, 0.2, 0.25, 0.35};
  EXPECT_TRUE(decided("tova:3", near, 0.0, {0}));
  EXPECT_TRUE(decided("tova:3", near, 0x1p-40, {0}));
  EXPECT_FALSE(decided("tova:3", near, 0x1p-28, {0}));
  EXPECT_TRUE(decided("tova:3", tie, 0.0, {0}));
  EXPECT_FALSE(decided("tova:3", tie, 0x1p-40, {0}));
  const std::vector<double> pooled = {0.295, 0.30, 0.01, 0.01, 0.385};
  EXPECT_TRUE(decided("snapkv:3,1,3", pooled, 0x1p-40, {0, 3}));
  EXPECT_FALSE(decided("snapkv:3,1,3", pooled, 0.02, {0, 3}));
}

// One head of dimension 1, q = 1 at every position, keys (1, 3, 2, 0, 1): query t's scores
// are the keys themselves. Worked by hand:
//   tova:1   t=1 reads {0,1}, 0 has the lower attention (e^1 < e^3): evicted; t=2 reads
//            {1,2}: 2 (e^2 < e^3); t=3 reads {1,3}: 3.
//   h2o:2    one recent key kept; received mass after t=2: key 0 1 + 0.119 + 0.090,
//            key 1 0.881 + 0.665 (key 2 protected): 0 leaves; after t=3 key 1 has
//            more than key 2 (key 3 protected): 2 leaves.
//   knorm:2  after t=2 the largest |k| of {0,1,2} is key 1; after t=3 of {0,2,3} key 2.
//   snapkv:2,1,1  the newest protected, the rest by query t's attention: 0, then 2.
//   streaming:1,2  query t + 1 reads the sink 0 and keys t, t + 1: key 1 leaves after
//            t=2, key 2 after t=3.
// A fifth position (key 1) only reads: nothing is evicted after the last query.
TEST(EvictionPolicy, EachPolicyEvictsTheKeysWorkedByHand) {
  ModelConfig c;
  c.n_layers = 1, c.n_heads = 1, c.n_kv_heads = 1, c.head_dim = 1, c.dim = 1;
  const int T = 5;
  MpArray q(T, 128), k(T, 128), v(T, 128), out(T, 128);
  const double keys[] = {1, 3, 2, 0, 1}, values[] = {1, -1, 2, 0.5, 0};
  for (int t = 0; t < T; ++t) {
    mpfr_set_d(q[t], 1, MPFR_RNDN);
    mpfr_set_d(k[t], keys[t], MPFR_RNDN);
    mpfr_set_d(v[t], values[t], MPFR_RNDN);
  }
  auto events = [&](const std::string& spec, EvictionRecord* record = nullptr) {
    EvictionRecord own;
    if (!record) record = &own;
    evicting_attention(nullptr, out, q, AttentionKv{k, k, v, v}, T, c, MpArith::exact(128), 1, quant::parse_eviction_policy(spec, "test"), 0,
                       record);
    std::vector<std::pair<int, int>> e;  // (after, key)
    for (const EvictionEvent& x : record->evicted) e.emplace_back(x.after, x.key);
    return e;
  };
  using E = std::vector<std::pair<int, int>>;
  EvictionRecord tova;
  EXPECT_EQ(events("tova:1", &tova), (E{{1, 0}, {2, 2}, {3, 3}}));
  const double tova_out_2 = mpfr_get_d(out[2], MPFR_RNDN);
  EXPECT_EQ(events("h2o:2"), (E{{2, 0}, {3, 2}}));
  EXPECT_EQ(events("knorm:2"), (E{{2, 1}, {3, 2}}));
  EXPECT_EQ(events("snapkv:2,1,1"), (E{{2, 0}, {3, 2}}));
  EXPECT_EQ(events("streaming:1,2"), (E{{2, 1}, {3, 2}}));
  EXPECT_EQ(events("h2o:4"), E{});
  // tova's account at t = 2: key 0 was dropped, m = e / (e + e^3 + e^2); the output is
  // the kept keys' renormalized: (e^3 (-1) + e^2 2) / (e^3 + e^2).
  ASSERT_EQ(tova.steps.size(), std::size_t(T));
  const double e1 = std::exp(1.0), e2 = std::exp(2.0), e3 = std::exp(3.0);
  EXPECT_NEAR(tova.steps[2].mass, e1 / (e1 + e2 + e3), 1e-15);
  EXPECT_EQ(tova.steps[2].kept, 2);
  EXPECT_EQ(tova.steps[0].mass, 0.0);
  EXPECT_NEAR(tova_out_2, (-e3 + 2 * e2) / (e3 + e2), 1e-15);
  const double full = (e1 - e3 + 2 * e2) / (e1 + e2 + e3), kept = (-e3 + 2 * e2) / (e3 + e2);
  EXPECT_NEAR(tova.steps[2].observed, std::fabs(full - kept), 1e-15);
  EXPECT_NEAR(tova.steps[2].bound, 2 * e1 / (e1 + e2 + e3) * 2, 1e-15);  // max |v| over keys 0..2 is 2
  EXPECT_TRUE(tova.certified);
  EXPECT_LT(tova.output_deviation, 1e-35);
}

struct Forward {
  std::vector<MpTap> taps;
  EvictionRecord record;
};

Forward run(const Model& m, const MpWeights& w, const std::vector<int>& tokens, const EvictionPolicy* policy,
            int threads = 2, const char* taps = "logits,layers.*.attn.out,layers.*.attn.probs") {
  Forward f;
  MpForwardOptions o;
  o.arith = MpArith::exact(128);
  o.threads = threads;
  o.taps = tap_selection_from_string(taps, "test");
  o.evict = policy;
  o.evict_record = policy ? &f.record : nullptr;
  f.taps = mp_forward(m, w, tokens, o);
  return f;
}

bool same_taps(const std::vector<MpTap>& a, const std::vector<MpTap>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (a[i].name != b[i].name || !test::mp_identical(a[i].values, b[i].values)) return false;
  return true;
}

// A budget of T - 1 past keys (or more) evicts nothing: every policy is the full cache,
// logits, outputs and probabilities bit for bit; one fewer changes the logits. (A policy
// that keeps exactly the keys of nonzero mass is this one: every softmax term is positive.)
TEST(EvictionPolicy, ABudgetCoveringThePromptIsTheFullCache) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-qwen2");
  std::vector<int> tokens = prompt32();
  tokens.resize(16);
  const int T = int(tokens.size());
  const MpWeights w = to_mp_weights(model, 128);
  const Forward full = run(model, w, tokens, nullptr);
  const std::string b = std::to_string(T - 1);
  for (const std::string& spec : std::vector<std::string>{"h2o:" + b, "tova:" + b, "knorm:" + b, "snapkv:" + b + ",4,3",
                                                          "h2o:100%", "streaming:0," + std::to_string(T),
                                                          "streaming:" + b + ",1"}) {
    const EvictionPolicy p = quant::parse_eviction_policy(spec, "test");
    const Forward f = run(model, w, tokens, &p);
    EXPECT_TRUE(same_taps(full.taps, f.taps)) << spec;
    EXPECT_TRUE(f.record.evicted.empty()) << spec;
    for (const EvictionStep& s : f.record.steps) ASSERT_EQ(s.mass, 0.0) << spec;
  }
  const EvictionPolicy fewer = quant::parse_eviction_policy("h2o:" + std::to_string(T - 2), "test");
  EXPECT_FALSE(same_taps(full.taps, run(model, w, tokens, &fewer).taps));
}

// The window policy on a model with its own window is that model's forward, bit for bit
// (its mask and the evictions keep the same keys), each windowed layer's key j leaving
// right after query j + W - 1, its last reader, and a global layer's never. tiny-gemma2:
// window 5 on layer 0, layer 1 global.
TEST(EvictionPolicy, TheWindowPolicyIsTheModelsOwnWindow) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-gemma2");
  const ModelConfig& c = model.config;
  const int W = c.window_of(0);
  ASSERT_GT(W, 0);
  ASSERT_EQ(c.window_of(1), 0);
  const std::vector<int> tokens = prompt32();
  const int T = int(tokens.size());
  const MpWeights w = to_mp_weights(model, 128);
  const Forward full = run(model, w, tokens, nullptr);
  const EvictionPolicy p = quant::eviction_for_model(quant::parse_eviction_policy("window", "test"), c, "test");
  const Forward f = run(model, w, tokens, &p);
  EXPECT_TRUE(same_taps(full.taps, f.taps));
  std::set<std::tuple<int, int, int, int>> got, wanted;  // (layer, kv head, after, key)
  for (const EvictionEvent& e : f.record.evicted) got.insert({e.layer, e.kv_head, e.after, e.key});
  for (int h = 0; h < c.n_kv_heads; ++h)
    for (int t = W - 1; t < T - 1; ++t) wanted.insert({0, h, t, t + 1 - W});  // none after the last query
  EXPECT_EQ(got, wanted);
  for (const EvictionStep& s : f.record.steps) ASSERT_EQ(s.mass, 0.0);
}

// streaming:S,W through the policy path is attention.h's sinks-and-window mask, bit for bit.
TEST(EvictionPolicy, StreamingThroughThePolicyPathIsTheMask) {
  const Model model = load_model(test::fixtures_dir() + "/tiny-mqa");
  const std::vector<int> tokens = read_prompt_file(test::fixtures_dir() + "/prompts/medium.tokens");
  const MpWeights w = to_mp_weights(model, 128);
  MpForwardOptions o;
  o.arith = MpArith::exact(128);
  o.threads = 2;
  o.taps = tap_selection_from_string("logits,layers.*.attn.out,layers.*.attn.probs", "test");
  o.eviction = AttentionMask{true, 9, 3};
  const std::vector<MpTap> mask = mp_forward(model, w, tokens, o);
  const EvictionPolicy p = quant::parse_eviction_policy("streaming:3,9", "test");
  const Forward f = run(model, w, tokens, &p);
  EXPECT_TRUE(same_taps(mask, f.taps));
  EXPECT_FALSE(f.record.evicted.empty());
  EXPECT_TRUE(f.record.certified);
}

// Every policy's account on the evicted forward's own inputs: within the bound at every
// step, the keys read within the budget, the forward's output the account's o' to its
// rounding. On a synthetic model (4 KV heads) and tiny-qwen2 (7 query heads on 1).
void expect_every_step_bounded(const Model& model, const std::vector<int>& tokens, const std::string& name) {
  const int T = int(tokens.size());
  const ModelConfig& c = model.config;
  const MpWeights w = to_mp_weights(model, 128);
  for (const char* spec : {"streaming:2,6", "h2o:8", "tova:25%", "knorm:8", "snapkv:8,4,3"}) {
    const EvictionPolicy p = quant::parse_eviction_policy(spec, "test");
    const Forward f = run(model, w, tokens, &p, 2, "logits");
    EXPECT_TRUE(f.record.certified) << name << " " << spec;
    EXPECT_LT(f.record.output_deviation, 1e-30) << name << " " << spec;
    ASSERT_EQ(f.record.steps.size(), std::size_t(c.n_layers) * c.n_heads * T) << spec;
    int evicting = 0;
    double worst = 0;
    for (const EvictionStep& s : f.record.steps) {
      ASSERT_LE(s.observed, s.bound) << name << " " << spec << " " << s.layer << " " << s.head << " " << s.position;
      ASSERT_LE(s.kept, p.budget_for(T, 0) + 1) << spec;
      ASSERT_EQ(s.mass > 0, s.kept < s.position + 1) << spec;
      evicting += s.mass > 0;
      if (s.bound > 0) worst = std::max(worst, s.observed / s.bound);
    }
    EXPECT_GT(evicting, 0) << spec;
    std::printf("[eviction] %s %s: %d evicting steps, worst observed / bound %.3f\n", name.c_str(), spec, evicting,
                worst);
  }
}

TEST(EvictionPolicy, EveryPolicyHoldsItsBoundOnEveryStep) {
  const std::vector<int> tokens = prompt32();
  expect_every_step_bounded(make_synthetic_model(synthetic_shape("tiny-llama"), test::test_seed()), tokens, "synthetic");
  expect_every_step_bounded(load_model(test::fixtures_dir() + "/tiny-qwen2"), tokens, "tiny-qwen2");
}

// 1 thread or 2: the same logits, account and evictions, with the KV heads in parallel
// (tiny-llama: 4) and with a group's query heads in parallel (tiny-qwen2: 7 on 1).
TEST(EvictionPolicy, TheThreadCountChangesNothing) {
  const std::vector<int> tokens = prompt32();
  for (const auto& [fixture, spec] : {std::pair{"tiny-llama", "h2o:8"}, std::pair{"tiny-qwen2", "snapkv:10,4,3"}}) {
    const Model model = load_model(test::fixtures_dir() + "/" + fixture);
    const MpWeights w = to_mp_weights(model, 128);
    {
      const EvictionPolicy p = quant::parse_eviction_policy(spec, "test");
      const Forward one = run(model, w, tokens, &p, 1, "logits");
      const Forward two = run(model, w, tokens, &p, 2, "logits");
      EXPECT_TRUE(same_taps(one.taps, two.taps)) << fixture << " " << spec;
      ASSERT_EQ(one.record.steps.size(), two.record.steps.size());
      for (std::size_t i = 0; i < one.record.steps.size(); ++i) {
        const EvictionStep &a = one.record.steps[i], &b = two.record.steps[i];
        ASSERT_TRUE(a.mass == b.mass && a.observed == b.observed && a.bound == b.bound && a.kept == b.kept &&
                    a.head == b.head && a.position == b.position)
            << fixture << " " << spec << " step " << i;
      }
      ASSERT_EQ(one.record.evicted.size(), two.record.evicted.size());
      for (std::size_t i = 0; i < one.record.evicted.size(); ++i)
        ASSERT_TRUE(one.record.evicted[i].key == two.record.evicted[i].key &&
                    one.record.evicted[i].after == two.record.evicted[i].after);
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
