#pragma once
// Causal attention under an eviction policy (eviction_policy.h), with the policy's exact
// account. Each KV head's queries run in position order: query t reads the keys the
// policy kept after query t - 1 and its own, the softmax over those (the same row
// operations as attention.h's, so a policy that evicts nothing is the full cache bit for
// bit, and streaming is attention.h's sinks-and-window mask bit for bit), then the policy
// sees the probabilities and evicts. KV heads are independent caches (run in parallel);
// within one, the group's query heads of a step run in parallel when the KV heads are too
// few to fill the threads: the results are the same for any thread count. Nothing is
// evicted after the last query (no query would read the cache).
//
// The account, per (query head, position t), on this layer's own q, K and V (the evicted
// forward's inputs, so layer l's error sits on the errors of the layers below):
//   p      = the full cache's softmax of q_t over keys 0..t, at Q = 2P + 64 bits from the
//            P-bit q and K (P: the forward's precision);
//   m      = sum of p_j over the keys query t did not read (evicted before t);
//   o      = sum_j p_j v_j, o' = sum_read p_j v_j / sum_read p_j: the output of the
//            evicted cache (its softmax is the full one renormalized over the keys read),
//            computed at Q; the forward's own P-bit output is o' rounded (its distance
//            to o' is kept as output_deviation, a check that account and forward read
//            the same keys);
//   observed = |o - o'|_2, bound = 2 m max_{j <= t} |v_j|_2 (eviction_account.h's proof);
//            certified as there: false if observed exceeds (m + |1 - sum_read p|) V, the
//            bound for the Q-bit probabilities, relaxed by 2^-(2P).
#include <cstdint>
#include <vector>

#include "reference/model/config.h"
#include "reference/mp/attention.h"
#include "reference/mp/eviction_policy.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

using quant::EvictionEvent;

struct EvictionStep {
  int layer = 0, head = 0, position = 0;
  double mass = 0;      // dropped probability mass, rounded to nearest
  double observed = 0;  // |o - o'|_2
  double bound = 0;     // 2 m max_j |v_j|_2
  int kept = 0;         // keys the query read (its own included); position + 1 when none dropped
};

// One eviction decision with a choice: after query `after` of (layer, kv_head), the
// scorer's margin (EvictionScorer::margin, finite).
struct EvictionDecision {
  int layer = 0, kv_head = 0, after = 0;
  double margin = 0;
};

// What an evicting forward records, layer after layer (steps in layer, head, position
// order; events and decisions in layer, KV head, position order).
struct EvictionRecord {
  std::vector<EvictionStep> steps;
  std::vector<EvictionEvent> evicted;
  std::vector<EvictionDecision> decisions;
  bool certified = true;          // every step within its bound
  double output_deviation = 0;    // max |forward's output - o'|_2 over the steps
};

// The account of one row (eviction_account.h's formulas): p [n] the probabilities of keys
// 0..n-1, v the value of key j at v + j * v_stride (head_dim values), read[j] whether the
// query read key j. Sums at `working` bits; the certificate's slack 2^-(2 input_bits).
// Sets step.mass, observed and bound; clears *certified on a violation; with o_actual
// (head_dim values), *deviation = max(*deviation, |o_actual - o'|_2).
class RowAccount {
 public:
  RowAccount(int head_dim, mpfr_prec_t working);
  void account(EvictionStep& step, mpfr_srcptr p, int n, mpfr_srcptr v, std::ptrdiff_t v_stride,
               const std::uint8_t* read, mpfr_prec_t input_bits, bool* certified, mpfr_srcptr o_actual = nullptr,
               double* deviation = nullptr);

 private:
  int hd_;
  MpArray s_;
};

// q: [tokens, n_heads, head_dim]; kv's planes [tokens, n_kv_heads, head_dim] (exact
// values: one store, or a KV policy's stored forms, which query t reads as attention.h
// says; knorm scores the cold forms, the account uses what query t would read); probs (null: not kept) [n_heads, tokens, tokens], zeros where not read; out
// [tokens, n_heads * head_dim]. With a record, the layer's steps and events are appended.
// radii: under enclosures (enclosure.h) q's radii in, probs' (when kept) and out's out;
// the keys and values must then be exact, and every eviction decision is proven on the
// scores' balls (EvictionScorer::decided) or UndecidedRounding names the layer's probs
// tap and the query.
void evicting_attention(MpArray* probs, MpArray& out, const MpArray& q, const AttentionKv& kv, int tokens,
                        const ModelConfig& config, const MpArith& arith, int threads, const EvictionPolicy& policy,
                        int layer, EvictionRecord* record, const AttentionRadii& radii = {});

}  // namespace kvfid::ref
