#include "reference/mp/eviction_policy.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <stdexcept>

#include "reference/mp/enclosure.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

namespace {

// x += y, and with radii (r_x non-null) r_x += r_y plus x's rounding (enclosure.h's sum rule).
void ball_add(mpfr_ptr x, mpfr_ptr r_x, mpfr_srcptr y, mpfr_srcptr r_y, Enclosure& enc) {
  const int t = mpfr_add(x, x, y, MPFR_RNDN);
  if (r_x) enc.add(r_x, r_x, r_y, x, t);
}

// Sum over the group's heads of probs[g, i], into r (rounded at r's precision, heads in
// order); with radii (r_r and probs_r non-null) its radius into r_r.
void group_sum(mpfr_ptr r, mpfr_ptr r_r, mpfr_srcptr probs, mpfr_srcptr probs_r, int group, std::size_t n,
               std::size_t i, Enclosure& enc) {
  mpfr_set_zero(r, 1);
  if (r_r) mpfr_set_zero(r_r, 1);
  for (int g = 0; g < group; ++g) {
    const std::size_t at = std::size_t(g) * n + i;
    ball_add(r, r_r, probs + at, r_r ? probs_r + at : nullptr, enc);
  }
}

class StreamingScorer : public EvictionScorer {
 public:
  StreamingScorer(int sinks, int window) : sinks_(sinks), window_(window) {}
  void attended(int, const std::vector<int>&, mpfr_srcptr, mpfr_srcptr, int) override {}
  std::vector<int> evict(int t, const std::vector<int>& keys) override {
    std::vector<int> out;
    for (int j : keys)
      if (j >= sinks_ && j <= t + 1 - window_) out.push_back(j);  // query t + 1 reads j < S or j > t + 1 - W
    return out;
  }

 private:
  int sinks_, window_;
};

// The scorers that keep a budget: evict the lowest `scores` beyond it (derived classes
// fill the scores aligned with the keys, their radii under enclosures, and say which are
// protected).
class BudgetScorer : public EvictionScorer {
 public:
  BudgetScorer(int budget, mpfr_prec_t precision, bool enclose)
      : budget_(budget), precision_(precision), enclose_(enclose) {}
  std::vector<int> evict(int t, const std::vector<int>& keys) override {
    decided_ = true;
    margin_ = std::numeric_limits<double>::infinity();
    const int over = int(keys.size()) - budget_;
    if (over <= 0) return {};
    MpArray scores(keys.size(), precision_);
    MpArray radii = exact_radii(enclose_ ? keys.size() : 0);
    std::vector<long> sources(enclose_ ? keys.size() : 0);
    for (std::size_t i = 0; i < sources.size(); ++i) sources[i] = -1 - long(i);  // each score its own quantity
    std::vector<bool> protect(keys.size(), false);
    score(t, keys, scores, enclose_ ? &radii : nullptr, enclose_ ? &sources : nullptr, protect);
    std::vector<int> gone = lowest_scores(keys, scores.data(), protect, over);
    // The margin: the lowest score kept by choice minus the highest evicted.
    std::sort(gone.begin(), gone.end());
    std::vector<bool> evicted(keys.size(), false);
    mpfr_srcptr kept_min = nullptr, gone_max = nullptr;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (protect[i]) continue;
      mpfr_srcptr s = scores[i];
      evicted[i] = std::binary_search(gone.begin(), gone.end(), keys[i]);
      if (evicted[i]) {
        if (!gone_max || mpfr_greater_p(s, gone_max)) gone_max = s;
      } else if (!kept_min || mpfr_less_p(s, kept_min)) {
        kept_min = s;
      }
    }
    if (kept_min && gone_max) {
      MpArray d(1, precision_);
      mpfr_sub(d[0], kept_min, gone_max, MPFR_RNDD);
      margin_ = mpfr_zero_p(d[0]) ? 0.0 : mpfr_get_d(d[0], MPFR_RNDD);  // a tie: +0, not x - x's -0 under RNDD
      if (enclose_) decided_ = proven(scores, radii, sources, protect, evicted);
    }
    return gone;
  }
  double margin() const override { return margin_; }
  bool decided() const override { return decided_; }

 protected:
  // radii: null, or [keys] the scores' radii to fill (enclosure.h). sources: null, or
  // [keys] which quantity each score is, set equal only for scores that are the same
  // quantity in truth as well (each its own, negative, on entry).
  virtual void score(int t, const std::vector<int>& keys, MpArray& scores, MpArray* radii, std::vector<long>* sources,
                     std::vector<bool>& protect) = 0;

  // Whether the true scores make the same decision: every pair of an unprotected key
  // kept and one evicted is ordered alike -- the kept one's ball wholly above the
  // evicted one's, or both the same quantity (equal in truth, so the tie rule orders
  // them alike) -- or every score is exact (the computed decision is the true one).
  // Cost: one pass, then the kept x evicted pairs only when the lowest kept end does not
  // clear the highest evicted end (a step evicts about one key: O(budget)).
  bool proven(const MpArray& scores, const MpArray& radii, const std::vector<long>& sources,
              const std::vector<bool>& protect, const std::vector<bool>& evicted) const {
    const std::size_t n = protect.size();
    MpArray end(n, precision_);  // a kept score's lower end, an evicted one's upper end
    std::vector<std::size_t> kept, gone;
    bool exact = true;
    for (std::size_t i = 0; i < n; ++i) {
      if (protect[i]) continue;
      exact = exact && mpfr_zero_p(radii[i]);
      if (evicted[i]) mpfr_add(end[i], scores[i], radii[i], MPFR_RNDU);
      else mpfr_sub(end[i], scores[i], radii[i], MPFR_RNDD);
      (evicted[i] ? gone : kept).push_back(i);
    }
    if (exact) return true;
    auto lower = [&](std::size_t a, std::size_t b) { return mpfr_less_p(end[a], end[b]); };
    const std::size_t k_min = *std::min_element(kept.begin(), kept.end(), lower);
    const std::size_t e_max = *std::max_element(gone.begin(), gone.end(), lower);
    if (mpfr_greater_p(end[k_min], end[e_max])) return true;  // every pair apart
    for (const std::size_t k : kept)
      for (const std::size_t e : gone)
        if (sources[e] != sources[k] && !mpfr_greater_p(end[k], end[e])) return false;
    return true;
  }
  int budget_;
  mpfr_prec_t precision_;
  bool enclose_;
  Enclosure enc_;
  double margin_ = std::numeric_limits<double>::infinity();
  bool decided_ = true;
};

class H2oScorer : public BudgetScorer {
 public:
  H2oScorer(int budget, int tokens, mpfr_prec_t precision, bool enclose)
      : BudgetScorer(budget, precision, enclose), received_(std::size_t(tokens), precision),
        received_r_(exact_radii(enclose ? std::size_t(tokens) : 0)), sum_(1, precision), sum_r_(exact_radii(1)) {}
  void attended(int, const std::vector<int>& keys, mpfr_srcptr probs, mpfr_srcptr probs_r, int group) override {
    const bool track = enclose_ && probs_r;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      const std::size_t j = std::size_t(keys[i]);
      group_sum(sum_[0], track ? sum_r_[0] : nullptr, probs, probs_r, group, keys.size(), i, enc_);
      ball_add(received_[j], track ? received_r_[j] : nullptr, sum_[0], sum_r_[0], enc_);
    }
  }

 protected:
  void score(int, const std::vector<int>& keys, MpArray& scores, MpArray* radii, std::vector<long>*,
             std::vector<bool>& protect) override {
    const std::size_t recent = std::size_t(budget_ / 2);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      mpfr_set(scores[i], received_[std::size_t(keys[i])], MPFR_RNDN);  // exact: same precision
      if (radii) mpfr_set((*radii)[i], received_r_[std::size_t(keys[i])], MPFR_RNDU);
      protect[i] = i + recent >= keys.size();
    }
  }

 private:
  MpArray received_;    // [tokens] attention mass received so far
  MpArray received_r_;  // [tokens] its radii under enclosures
  MpArray sum_, sum_r_;
};

class TovaScorer : public BudgetScorer {
 public:
  TovaScorer(int budget, mpfr_prec_t precision, bool enclose)
      : BudgetScorer(budget, precision, enclose), last_(0, precision) {}
  void attended(int, const std::vector<int>& keys, mpfr_srcptr probs, mpfr_srcptr probs_r, int group) override {
    const bool track = enclose_ && probs_r;
    last_ = MpArray(keys.size(), precision_);
    last_r_ = exact_radii(track ? keys.size() : 0);
    for (std::size_t i = 0; i < keys.size(); ++i)
      group_sum(last_[i], track ? last_r_[i] : nullptr, probs, probs_r, group, keys.size(), i, enc_);
  }

 protected:
  void score(int, const std::vector<int>& keys, MpArray& scores, MpArray* radii, std::vector<long>*,
             std::vector<bool>&) override {
    if (last_.size() != keys.size()) throw std::logic_error("tova: evict without the query's attention");
    if (radii && last_r_.size() != keys.size()) throw std::logic_error("tova: enclosed evict without radii");
    for (std::size_t i = 0; i < keys.size(); ++i) {
      mpfr_set(scores[i], last_[i], MPFR_RNDN);
      if (radii) mpfr_set((*radii)[i], last_r_[i], MPFR_RNDU);
    }
  }

 private:
  MpArray last_;    // the current query's attention per key, summed over the group
  MpArray last_r_;  // its radii under enclosures
};

// -|k_j|^2 at 2P + 64 bits. Under enclosures the keys are exact (a KV policy's stored
// forms), so each score's radius is its own roundings.
class KnormScorer : public BudgetScorer {
 public:
  KnormScorer(int budget, int tokens, mpfr_srcptr keys, int kv_dim, int kv_head, int hd, mpfr_prec_t precision,
              bool enclose)
      : BudgetScorer(budget, 2 * precision + 64, enclose), neg_norm2_(std::size_t(tokens), 2 * precision + 64),
        neg_norm2_r_(exact_radii(enclose ? std::size_t(tokens) : 0)) {
    MpArray sq(1, 2 * precision + 64), sq_r = exact_radii(1);
    for (int j = 0; j < tokens; ++j) {
      mpfr_ptr r = neg_norm2_[std::size_t(j)];
      for (int d = 0; d < hd; ++d) {
        const int t_sq = mpfr_sqr(sq[0], keys + std::size_t(j) * kv_dim + std::size_t(kv_head) * hd + d, MPFR_RNDN);
        const int t_sub = mpfr_sub(r, r, sq[0], MPFR_RNDN);
        if (!enclose) continue;
        mpfr_set_zero(sq_r[0], 1);
        enc_.add_rounding(sq_r[0], sq[0], t_sq);
        enc_.add(neg_norm2_r_[std::size_t(j)], neg_norm2_r_[std::size_t(j)], sq_r[0], r, t_sub);
      }
    }
  }
  void attended(int, const std::vector<int>&, mpfr_srcptr, mpfr_srcptr, int) override {}

 protected:
  void score(int, const std::vector<int>& keys, MpArray& scores, MpArray* radii, std::vector<long>*,
             std::vector<bool>&) override {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      mpfr_set(scores[i], neg_norm2_[std::size_t(keys[i])], MPFR_RNDN);
      if (radii) mpfr_set((*radii)[i], neg_norm2_r_[std::size_t(keys[i])], MPFR_RNDU);
    }
  }

 private:
  MpArray neg_norm2_;    // [tokens] -|k_j|^2
  MpArray neg_norm2_r_;  // [tokens] its radii under enclosures
};

class SnapKvScorer : public BudgetScorer {
 public:
  SnapKvScorer(const EvictionPolicy& p, int budget, mpfr_prec_t precision, bool enclose)
      : BudgetScorer(budget, precision, enclose), obs_(p.obs_window), pool_(p.pool) {}
  void attended(int t, const std::vector<int>& keys, mpfr_srcptr probs, mpfr_srcptr probs_r, int group) override {
    const bool track = enclose_ && probs_r;
    Row row{t, keys, MpArray(keys.size(), precision_), exact_radii(track ? keys.size() : 0)};
    for (std::size_t i = 0; i < keys.size(); ++i)
      group_sum(row.attention[i], track ? row.attention_r[i] : nullptr, probs, probs_r, group, keys.size(), i, enc_);
    window_.push_back(std::move(row));
    if (int(window_.size()) > obs_) window_.pop_front();
  }

 protected:
  // A pooled score is the largest of its window's raw scores; max is 1-Lipschitz in each
  // argument, so its radius is the largest of theirs. Neighbours pooling the same raw
  // score tie exactly; they are the same quantity in truth when that raw score is
  // provably its window's largest (its ball above every other's).
  void score(int, const std::vector<int>& keys, MpArray& scores, MpArray* radii, std::vector<long>* sources,
             std::vector<bool>& protect) override {
    const std::size_t n = keys.size(), recent = std::size_t(std::min(obs_, budget_));
    std::vector<std::size_t> old;  // indices of the unprotected keys, in cache order
    for (std::size_t i = 0; i < n; ++i) {
      protect[i] = i + recent >= n;
      if (!protect[i]) old.push_back(i);
    }
    MpArray raw(old.size(), precision_);                        // the window's attention to each old key
    MpArray raw_r = exact_radii(radii ? old.size() : 0);  // its radii
    for (const Row& r : window_) {  // queries in order; each a merge of two ascending lists
      if (radii && r.attention_r.size() != r.keys.size())
        throw std::logic_error("snapkv: enclosed evict without radii");
      std::size_t at = 0;
      for (std::size_t o = 0; o < old.size(); ++o) {
        const int j = keys[old[o]];
        while (at < r.keys.size() && r.keys[at] < j) ++at;
        if (at < r.keys.size() && r.keys[at] == j)
          ball_add(raw[o], radii ? raw_r[o] : nullptr, r.attention[at], radii ? r.attention_r[at] : nullptr, enc_);
      }
    }
    const std::ptrdiff_t left = (pool_ - 1) / 2, count = std::ptrdiff_t(old.size());
    MpArray ends(radii ? 2 : 0, precision_);  // the pooled raw score's lower end, another's upper end
    for (std::ptrdiff_t o = 0; o < count; ++o) {  // max-pooled over [o - left, o + left], clipped
      const std::size_t i = old[std::size_t(o)];
      const std::ptrdiff_t lo = std::max<std::ptrdiff_t>(0, o - left), hi = std::min(count - 1, o + left);
      mpfr_ptr s = scores[i];
      std::ptrdiff_t best = o;
      for (std::ptrdiff_t u = lo; u <= hi; ++u)
        if (mpfr_greater_p(raw[std::size_t(u)], raw[std::size_t(best)])) best = u;
      mpfr_set(s, raw[std::size_t(best)], MPFR_RNDN);  // exact: same precision
      if (!radii) continue;
      mpfr_set_zero((*radii)[i], 1);
      bool alone = true;  // raw[best] provably above the rest of the window
      mpfr_sub(ends[0], raw[std::size_t(best)], raw_r[std::size_t(best)], MPFR_RNDD);
      for (std::ptrdiff_t u = lo; u <= hi; ++u) {
        mpfr_max((*radii)[i], (*radii)[i], raw_r[std::size_t(u)], MPFR_RNDU);
        if (u == best) continue;
        mpfr_add(ends[1], raw[std::size_t(u)], raw_r[std::size_t(u)], MPFR_RNDU);
        alone = alone && mpfr_greater_p(ends[0], ends[1]);
      }
      if (alone) (*sources)[i] = long(best);
    }
  }

 private:
  struct Row {
    int t;
    std::vector<int> keys;
    MpArray attention;    // summed over the group
    MpArray attention_r;  // its radii under enclosures
  };
  int obs_, pool_;
  std::deque<Row> window_;  // the last OBS queries
};

}  // namespace

std::unique_ptr<EvictionScorer> make_eviction_scorer(const EvictionPolicy& p, int tokens, int layer, mpfr_srcptr keys, int kv_dim,
                                                     int kv_head, int head_dim, mpfr_prec_t precision, bool enclose) {
  const int budget = p.budget_for(tokens, layer);
  switch (p.kind) {
    case EvictionKind::streaming: return std::make_unique<StreamingScorer>(p.sinks, p.window);
    case EvictionKind::window: return std::make_unique<StreamingScorer>(0, budget + 1);  // no sinks, the layer's window
    case EvictionKind::h2o: return std::make_unique<H2oScorer>(budget, tokens, precision, enclose);
    case EvictionKind::tova: return std::make_unique<TovaScorer>(budget, precision, enclose);
    case EvictionKind::knorm:
      return std::make_unique<KnormScorer>(budget, tokens, keys, kv_dim, kv_head, head_dim, precision, enclose);
    case EvictionKind::snapkv: return std::make_unique<SnapKvScorer>(p, budget, precision, enclose);
  }
  throw std::logic_error("make_eviction_scorer: unknown policy");
}

std::vector<int> lowest_scores(const std::vector<int>& keys, mpfr_srcptr scores, const std::vector<bool>& protect,
                               int count) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (!protect[i]) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const int c = mpfr_cmp(scores + a, scores + b);
    return c != 0 ? c < 0 : keys[a] < keys[b];
  });
  std::vector<int> out;
  for (std::size_t i = 0; i < order.size() && int(i) < count; ++i) out.push_back(keys[order[i]]);
  return out;
}

}  // namespace kvfid::ref
