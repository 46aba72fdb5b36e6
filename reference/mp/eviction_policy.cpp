#include "reference/mp/eviction_policy.h"

#include <algorithm>
#include <cstdint>
#include <deque>
#include <limits>
#include <stdexcept>

#include "reference/mp/mp_array.h"

namespace kvfid::ref {

namespace {

// Sum over the group's heads of probs[g, i], into r (rounded at r's precision, heads in order).
void group_sum(mpfr_ptr r, mpfr_srcptr probs, int group, std::size_t n, std::size_t i) {
  mpfr_set_zero(r, 1);
  for (int g = 0; g < group; ++g) mpfr_add(r, r, probs + std::size_t(g) * n + i, MPFR_RNDN);
}

class StreamingScorer : public EvictionScorer {
 public:
  StreamingScorer(int sinks, int window) : sinks_(sinks), window_(window) {}
  void attended(int, const std::vector<int>&, mpfr_srcptr, int) override {}
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
// fill scores_ aligned with the keys and say which are protected).
class BudgetScorer : public EvictionScorer {
 public:
  BudgetScorer(int budget, mpfr_prec_t precision) : budget_(budget), precision_(precision) {}
  std::vector<int> evict(int t, const std::vector<int>& keys) override {
    const int over = int(keys.size()) - budget_;
    if (over <= 0) return {};
    MpArray scores(keys.size(), precision_);
    std::vector<bool> protect(keys.size(), false);
    score(t, keys, scores, protect);
    std::vector<int> gone = lowest_scores(keys, scores.data(), protect, over);
    // The margin: the lowest score kept by choice minus the highest evicted.
    std::sort(gone.begin(), gone.end());
    mpfr_srcptr kept_min = nullptr, gone_max = nullptr;
    for (std::size_t i = 0; i < keys.size(); ++i) {
      if (protect[i]) continue;
      mpfr_srcptr s = scores[i];
      if (std::binary_search(gone.begin(), gone.end(), keys[i])) {
        if (!gone_max || mpfr_greater_p(s, gone_max)) gone_max = s;
      } else if (!kept_min || mpfr_less_p(s, kept_min)) {
        kept_min = s;
      }
    }
    margin_ = std::numeric_limits<double>::infinity();
    if (kept_min && gone_max) {
      MpArray d(1, precision_);
      mpfr_sub(d[0], kept_min, gone_max, MPFR_RNDD);
      margin_ = mpfr_zero_p(d[0]) ? 0.0 : mpfr_get_d(d[0], MPFR_RNDD);  // a tie: +0, not x - x's -0 under RNDD
    }
    return gone;
  }
  double margin() const override { return margin_; }

 protected:
  virtual void score(int t, const std::vector<int>& keys, MpArray& scores, std::vector<bool>& protect) = 0;
  int budget_;
  mpfr_prec_t precision_;
  double margin_ = std::numeric_limits<double>::infinity();
};

class H2oScorer : public BudgetScorer {
 public:
  H2oScorer(int budget, int tokens, mpfr_prec_t precision)
      : BudgetScorer(budget, precision), received_(std::size_t(tokens), precision), sum_(1, precision) {}
  void attended(int, const std::vector<int>& keys, mpfr_srcptr probs, int group) override {
    for (std::size_t i = 0; i < keys.size(); ++i) {
      group_sum(sum_[0], probs, group, keys.size(), i);
      mpfr_add(received_[std::size_t(keys[i])], received_[std::size_t(keys[i])], sum_[0], MPFR_RNDN);
    }
  }

 protected:
  void score(int, const std::vector<int>& keys, MpArray& scores, std::vector<bool>& protect) override {
    const std::size_t recent = std::size_t(budget_ / 2);
    for (std::size_t i = 0; i < keys.size(); ++i) {
      mpfr_set(scores[i], received_[std::size_t(keys[i])], MPFR_RNDN);  // exact: same precision
      protect[i] = i + recent >= keys.size();
    }
  }

 private:
  MpArray received_;  // [tokens] attention mass received so far
  MpArray sum_;
};

class TovaScorer : public BudgetScorer {
 public:
  TovaScorer(int budget, mpfr_prec_t precision) : BudgetScorer(budget, precision), last_(0, precision) {}
  void attended(int, const std::vector<int>& keys, mpfr_srcptr probs, int group) override {
    last_ = MpArray(keys.size(), precision_);
    for (std::size_t i = 0; i < keys.size(); ++i) group_sum(last_[i], probs, group, keys.size(), i);
  }

 protected:
  void score(int, const std::vector<int>& keys, MpArray& scores, std::vector<bool>&) override {
    if (last_.size() != keys.size()) throw std::logic_error("tova: evict without the query's attention");
    for (std::size_t i = 0; i < keys.size(); ++i) mpfr_set(scores[i], last_[i], MPFR_RNDN);
  }

 private:
  MpArray last_;  // the current query's attention per key, summed over the group
};

class KnormScorer : public BudgetScorer {
 public:
  KnormScorer(int budget, int tokens, mpfr_srcptr keys, int kv_dim, int kv_head, int hd, mpfr_prec_t precision)
      : BudgetScorer(budget, 2 * precision + 64), neg_norm2_(std::size_t(tokens), 2 * precision + 64) {
    MpArray sq(1, 2 * precision + 64);
    for (int j = 0; j < tokens; ++j) {
      mpfr_ptr r = neg_norm2_[std::size_t(j)];
      for (int d = 0; d < hd; ++d) {
        mpfr_sqr(sq[0], keys + std::size_t(j) * kv_dim + std::size_t(kv_head) * hd + d, MPFR_RNDN);
        mpfr_sub(r, r, sq[0], MPFR_RNDN);
      }
    }
  }
  void attended(int, const std::vector<int>&, mpfr_srcptr, int) override {}

 protected:
  void score(int, const std::vector<int>& keys, MpArray& scores, std::vector<bool>&) override {
    for (std::size_t i = 0; i < keys.size(); ++i) mpfr_set(scores[i], neg_norm2_[std::size_t(keys[i])], MPFR_RNDN);
  }

 private:
  MpArray neg_norm2_;  // [tokens] -|k_j|^2
};

class SnapKvScorer : public BudgetScorer {
 public:
  SnapKvScorer(const EvictionPolicy& p, int budget, mpfr_prec_t precision)
      : BudgetScorer(budget, precision), obs_(p.obs_window), pool_(p.pool) {}
  void attended(int t, const std::vector<int>& keys, mpfr_srcptr probs, int group) override {
    Row row{t, keys, MpArray(keys.size(), precision_)};
    for (std::size_t i = 0; i < keys.size(); ++i) group_sum(row.attention[i], probs, group, keys.size(), i);
    window_.push_back(std::move(row));
    if (int(window_.size()) > obs_) window_.pop_front();
  }

 protected:
  void score(int, const std::vector<int>& keys, MpArray& scores, std::vector<bool>& protect) override {
    const std::size_t n = keys.size(), recent = std::size_t(std::min(obs_, budget_));
    std::vector<std::size_t> old;  // indices of the unprotected keys, in cache order
    for (std::size_t i = 0; i < n; ++i) {
      protect[i] = i + recent >= n;
      if (!protect[i]) old.push_back(i);
    }
    MpArray raw(old.size(), precision_);  // the window's attention to each old key
    for (const Row& r : window_) {  // queries in order; each a merge of two ascending lists
      std::size_t at = 0;
      for (std::size_t o = 0; o < old.size(); ++o) {
        const int j = keys[old[o]];
        while (at < r.keys.size() && r.keys[at] < j) ++at;
        if (at < r.keys.size() && r.keys[at] == j) mpfr_add(raw[o], raw[o], r.attention[at], MPFR_RNDN);
      }
    }
    const std::ptrdiff_t left = (pool_ - 1) / 2, count = std::ptrdiff_t(old.size());
    for (std::ptrdiff_t o = 0; o < count; ++o) {  // max-pooled over [o - left, o + left], clipped
      mpfr_ptr s = scores[old[std::size_t(o)]];
      mpfr_set(s, raw[std::size_t(o)], MPFR_RNDN);
      for (std::ptrdiff_t u = std::max<std::ptrdiff_t>(0, o - left); u <= std::min(count - 1, o + left); ++u)
        if (mpfr_greater_p(raw[std::size_t(u)], s)) mpfr_set(s, raw[std::size_t(u)], MPFR_RNDN);
    }
  }

 private:
  struct Row {
    int t;
    std::vector<int> keys;
    MpArray attention;  // summed over the group
  };
  int obs_, pool_;
  std::deque<Row> window_;  // the last OBS queries
};

}  // namespace

std::unique_ptr<EvictionScorer> make_eviction_scorer(const EvictionPolicy& p, int tokens, int layer, mpfr_srcptr keys, int kv_dim,
                                                     int kv_head, int head_dim, mpfr_prec_t precision) {
  const int budget = p.budget_for(tokens, layer);
  switch (p.kind) {
    case EvictionKind::streaming: return std::make_unique<StreamingScorer>(p.sinks, p.window);
    case EvictionKind::window: return std::make_unique<StreamingScorer>(0, budget + 1);  // no sinks, the layer's window
    case EvictionKind::h2o: return std::make_unique<H2oScorer>(budget, tokens, precision);
    case EvictionKind::tova: return std::make_unique<TovaScorer>(budget, precision);
    case EvictionKind::knorm:
      return std::make_unique<KnormScorer>(budget, tokens, keys, kv_dim, kv_head, head_dim, precision);
    case EvictionKind::snapkv: return std::make_unique<SnapKvScorer>(p, budget, precision);
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
