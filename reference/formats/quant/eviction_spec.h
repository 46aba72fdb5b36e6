#pragma once
// KV-cache eviction policies: the specification both the exact forward
// (reference/mp/evicting_attention.h) and the engine (cuda/engine/eviction.h) apply:
// one interface, a scorer per (layer, KV head) that sees every query's attention in
// position order and says which keys leave the cache, under a budget given as a token
// count or a percentage of the sequence.
//
// Spec grammar (parse_eviction_policy):
//   streaming:S,W        StreamingLLM (Xiao et al. 2023): the first S keys (attention
//                        sinks) and the last W, the query's own included (S >= 0, W >= 1)
//   h2o:B                Heavy-Hitter Oracle (Zhang et al. 2023)
//   tova:B               Token Omission Via Attention (Oren et al. 2024)
//   knorm:B              key-norm press (Devoto et al. 2024)
//   snapkv:B,OBS,POOL    SnapKV (Li et al. 2024): observation window OBS >= 1, max-pool
//                        kernel POOL >= 1 and odd (centered on each key)
//   window               the model's own sliding window, the cache a sliding-window
//                        engine allocates: a windowed layer of window W keeps the last
//                        W - 1 past keys (with the query's own, the W its query reads), a
//                        global layer every key. No argument: the model gives each
//                        layer's window (eviction_for_model, kv_policy_fit.h), and only a
//                        model with a sliding window takes it. It evicts no key a later
//                        query reads, so outputs are the full cache's, bit for bit, and a
//                        windowed layer's cache holds min(T, W) tokens instead of T.
// B is a token count >= 1 or a percentage "25%" (1..100) of the sequence length T,
// rounded up: ceil(25 T / 100) (the engine's T: the sequence's capacity); or one such
// budget per layer joined by '/' ("h2o:64/32/32/64", as many as the model's layers). In a KV policy
// the spec follows "evict=" (kv_policy.h): "f16+evict=h2o:25%".
//
// Semantics, shared by every policy (one cache per layer and KV head, as vLLM and kvpress
// keep it; every query head of a GQA group reads the same kept keys):
//   * Query t reads the kept past keys and its own key, always: a token's key is written
//     before its query attends, and no policy can have judged it yet.
//   * The budget B counts kept *past* keys, excluding the current token: query t reads at
//     most B + 1 keys. So StreamingLLM S,W keeps S + W - 1 past keys (its window holds the
//     query's own), and any B >= T - 1 evicts nothing: the full cache, bit for bit.
//   * After query t has attended (all heads of the group), the policy sees that query's
//     probabilities and evicts from the candidate set (kept past keys plus t) until at
//     most B remain; those are what query t + 1 reads. Decisions depend only on positions
//     < t + 1 of the same layer, so a layer-by-layer forward can apply them: layer l's
//     inputs already come from the evicted layers below it.
//   * Scores come from the cache's own arithmetic and its own softmax (the evicted
//     cache's, not the full one: the policy sees what a deployed cache would): the exact
//     forward's MPFR values compared with mpfr_cmp (reference/mp/eviction_policy.h), the
//     engine's FP32 values (cuda/engine/eviction.h), each sum in the order written here.
//     Where two keys' scores differ by less than the engine's rounding error the two may
//     decide differently; nowhere else.
//   * Ties: the lower score is evicted first; among equal scores the older position is
//     evicted first (the most recent context is the likelier to be attended next). So the
//     kept set is a function of the values alone, whatever the thread count.
// Per policy, after query t (C: the candidate set, ascending positions):
//   streaming  evicts every key of C that is neither a sink (j < S) nor in the next
//              query's window (j > t + 1 - W); no score, no budget beyond S + W - 1.
//   window     on a windowed layer, streaming with S = 0 and the layer's W (keys
//              j <= t + 1 - W leave); on a global layer nothing.
//   h2o        score_j = the attention mass key j has received from every query so far
//              (per query the group's heads summed in head order, then added to the
//              running total; the evicted softmax's); the floor(B/2)
//              most recent keys of C are kept unconditionally (H2O's recent half), the
//              lowest scores among the rest evicted (its heavy-hitter half).
//   tova       score_j = query t's attention to j, summed over the group's heads (the
//              paper averages them: the same order); the lowest evicted, no key protected
//              (the newest included, as in TOVA).
//   knorm      score_j = -|k_j|^2 of the key as cached (its cold form; the reference's
//              squares exact at 2P + 64 bits, the engine's an fma chain in head_dim
//              order): the largest-norm keys leave (low key norm <-> high
//              attention); no key protected, as in kvpress's KnormPress.
//   snapkv     the min(OBS, B) most recent keys of C are kept; the others are scored by
//              the attention the last OBS queries (t - OBS + 1 .. t, those that exist)
//              gave them, summed over queries and group heads, then max-pooled over a
//              window of POOL keys centered on each (in cache order, clipped at the ends),
//              and the lowest evicted. The budget includes the observation window, as
//              SnapKV's max_capacity_prompt and kvpress's compression ratio do: every
//              policy at budget B holds the same number of keys. SnapKV compresses once,
//              after the prompt; here its rule runs each time the cache overflows (once a
//              step when full), so a key dropped early cannot come back: the streaming
//              reading every policy here gets.
#include <string>
#include <vector>

namespace kvfid::ref::quant {

enum class EvictionKind { streaming, h2o, tova, knorm, snapkv, window };

// Past keys a cache keeps: a token count, or a percentage of the sequence (rounded up).
struct EvictionBudget {
  int value = 0;
  bool percent = false;
  int past_keys(int tokens) const;
  std::string text() const;  // "64", "25%"
};

struct EvictionPolicy {
  EvictionKind kind = EvictionKind::streaming;
  int sinks = 0, window = 0;  // streaming
  // h2o, tova, knorm, snapkv: one budget for every layer, or one per layer
  // (check_eviction_layers holds the count to the model's).
  std::vector<EvictionBudget> budgets;
  int obs_window = 0, pool = 0;  // snapkv
  // window: each layer's sliding window, 0 on a global layer ([n_layers]; set from the
  // model by eviction_for_model, empty as parsed).
  std::vector<int> layer_windows;

  // Past keys layer `layer` keeps at most over a sequence of `tokens` (streaming:
  // S + W - 1; one budget: the same for every layer; window: W - 1 on a windowed
  // layer, `tokens` on a global one, which keeps them all).
  int budget_for(int tokens, int layer) const;
  int max_budget_for(int tokens) const;  // the most any layer keeps
  std::string budget_text() const;       // "25%", "64/32/32/64"
  // The spec, canonical ("h2o:25%", "streaming:4,60", "snapkv:64/32,16,7", "window").
  std::string spec() const;
};

// InputError(source, ...) when `policy` lists per-layer budgets for another number of
// layers than n_layers.
void check_eviction_layers(const EvictionPolicy& policy, int n_layers, const std::string& source);

// A key leaving a cache: after query `after` of (layer, kv_head).
struct EvictionEvent {
  int layer = 0, kv_head = 0, after = 0, key = 0;
  bool operator==(const EvictionEvent&) const = default;
};

// One spec (the grammar above); InputError naming `source` and the part at fault.
EvictionPolicy parse_eviction_policy(const std::string& spec, const std::string& source);
// Specs joined by commas ("streaming:4,60,h2o:25%,snapkv:64,16,7"): a part starting
// with a name and ':' starts the next spec.
std::vector<EvictionPolicy> parse_eviction_policies(const std::string& list, const std::string& source);

}  // namespace kvfid::ref::quant
