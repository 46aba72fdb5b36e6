#pragma once
// The exact forward's eviction scorers (MPFR): the policies of
// reference/formats/quant/eviction_spec.h, their scores the forward's own MPFR values
// compared with mpfr_cmp.
#include <limits>
#include <memory>
#include <vector>

#include <mpfr.h>

#include "reference/formats/quant/eviction_spec.h"

namespace kvfid::ref {

using quant::EvictionKind;
using quant::EvictionPolicy;

// One cache's scorer (a layer and a KV head): told every query's attention in order,
// asked which keys to evict. Positions are absolute; `keys` ascending, the query's own
// last; probs [group, keys.size()] the query heads' probabilities over those keys, and
// under enclosures probs_r their radii (enclosure.h; null otherwise).
class EvictionScorer {
 public:
  virtual ~EvictionScorer() = default;
  virtual void attended(int t, const std::vector<int>& keys, mpfr_srcptr probs, mpfr_srcptr probs_r, int group) = 0;
  // Positions of `keys` to evict after query t (any order); what is left is what query
  // t + 1 reads besides its own key.
  virtual std::vector<int> evict(int t, const std::vector<int>& keys) = 0;
  // How far the latest evict() was from a tie: the lowest score it kept by choice (not
  // protected) minus the highest it evicted, rounded down; +infinity when it evicted
  // nothing, had no choice (every candidate left was protected) or has no scores
  // (streaming). An engine whose scores are each within e of these can decide otherwise
  // only where the margin is at most 2e.
  virtual double margin() const { return std::numeric_limits<double>::infinity(); }
  // Under enclosures: whether the latest evict() is provably the one the true scores
  // make -- every score kept by choice above every score evicted, ball against ball, or
  // every one of them exact (the tie rule then decides on the true values). Always true
  // for positional policies and without enclosures.
  virtual bool decided() const { return true; }
};

// The scorer of `policy` for one cache of layer `layer` over `tokens` positions. keys:
// [tokens, n_kv_heads, head_dim] (knorm reads KV head kv_head's rows; exact values),
// probabilities at `precision` bits. enclose: each score carries a radius (enclosure.h's
// rules for its sums, the probabilities' radii as attended() passes them) and decided()
// says whether the decision is proven.
std::unique_ptr<EvictionScorer> make_eviction_scorer(const EvictionPolicy& policy, int tokens, int layer, mpfr_srcptr keys,
                                                     int kv_dim, int kv_head, int head_dim, mpfr_prec_t precision,
                                                     bool enclose = false);

// The positions to evict from `keys`: `count` of those not protected, the lowest
// scores[i] first (scores aligned with keys), ties to the older position. Exposed for
// the tests of the tie rule.
std::vector<int> lowest_scores(const std::vector<int>& keys, mpfr_srcptr scores, const std::vector<bool>& protect,
                               int count);

}  // namespace kvfid::ref
