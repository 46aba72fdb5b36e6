#include "cuda/engine/eviction.h"

#include <algorithm>
#include <cmath>
#include <stdexcept>

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

using quant::EvictionKind;

namespace {

// Sum over the group's heads of probs[g * stride + i], heads in order from +0.
float group_sum(const float* probs, std::size_t stride, int group, std::size_t i) {
  float r = 0.0f;
  for (int g = 0; g < group; ++g) r = r + probs[std::size_t(g) * stride + i];
  return r;
}

}  // namespace

int eviction_slots(const quant::EvictionPolicy& policy, int capacity, int layer) {
  return std::min(capacity, policy.budget_for(capacity, layer) + 1);
}

std::vector<int> lowest_scores_f32(const std::vector<int>& keys, const std::vector<float>& scores,
                                   const std::vector<bool>& protect, int count) {
  std::vector<std::size_t> order;
  for (std::size_t i = 0; i < keys.size(); ++i)
    if (!protect[i]) order.push_back(i);
  std::sort(order.begin(), order.end(), [&](std::size_t a, std::size_t b) {
    const bool na = std::isnan(scores[a]), nb = std::isnan(scores[b]);
    if (na != nb) return na;
    if (!na && scores[a] != scores[b]) return scores[a] < scores[b];
    return keys[a] < keys[b];
  });
  std::vector<int> out;
  for (std::size_t i = 0; i < order.size() && int(i) < count; ++i) out.push_back(keys[order[i]]);
  std::sort(out.begin(), out.end());
  return out;
}

KeyScorer::KeyScorer(const quant::EvictionPolicy& policy, int capacity, int layer)
    : policy_(policy), budget_(policy.budget_for(capacity, layer)) {
  if (policy.kind == EvictionKind::h2o) received_.assign(std::size_t(capacity), 0.0f);
  if (policy.kind == EvictionKind::knorm) neg_norm2_.assign(std::size_t(capacity), 0.0f);
}

void KeyScorer::cached(int pos, const float* key, int head_dim) {
  if (policy_.kind != EvictionKind::knorm) return;
  float n = 0.0f;
  for (int d = 0; d < head_dim; ++d) n = std::fma(key[d], key[d], n);
  neg_norm2_[std::size_t(pos)] = -n;
}

void KeyScorer::attended(int, const std::vector<int>& keys, const float* probs, std::size_t stride, int group) {
  switch (policy_.kind) {
    case EvictionKind::h2o:
      for (std::size_t i = 0; i < keys.size(); ++i) {
        float& r = received_[std::size_t(keys[i])];
        r = r + group_sum(probs, stride, group, i);
      }
      return;
    case EvictionKind::tova:
      last_.resize(keys.size());
      for (std::size_t i = 0; i < keys.size(); ++i) last_[i] = group_sum(probs, stride, group, i);
      return;
    case EvictionKind::snapkv: {
      Row row{keys, std::vector<float>(keys.size())};
      for (std::size_t i = 0; i < keys.size(); ++i) row.attention[i] = group_sum(probs, stride, group, i);
      window_.push_back(std::move(row));
      if (int(window_.size()) > policy_.obs_window) window_.pop_front();
      return;
    }
    case EvictionKind::streaming:
    case EvictionKind::window:
    case EvictionKind::knorm: return;
  }
}

std::vector<int> KeyScorer::evict(int t, const std::vector<int>& keys) {
  const std::size_t n = keys.size();
  if (policy_.kind == EvictionKind::streaming || policy_.kind == EvictionKind::window) {
    // window: no sinks, and the layer's window is its budget + 1 (eviction_spec.h)
    const int sinks = policy_.kind == EvictionKind::window ? 0 : policy_.sinks;
    const int window = policy_.kind == EvictionKind::window ? budget_ + 1 : policy_.window;
    std::vector<int> out;
    for (int j : keys)
      if (j >= sinks && j <= t + 1 - window) out.push_back(j);  // not read by query t + 1
    return out;
  }
  const int over = int(n) - budget_;
  if (over <= 0) return {};
  std::vector<float> scores(n, 0.0f);
  std::vector<bool> protect(n, false);
  switch (policy_.kind) {
    case EvictionKind::h2o: {
      const std::size_t recent = std::size_t(budget_ / 2);
      for (std::size_t i = 0; i < n; ++i) {
        scores[i] = received_[std::size_t(keys[i])];
        protect[i] = i + recent >= n;
      }
      break;
    }
    case EvictionKind::tova:
      if (last_.size() != n) throw std::logic_error("tova: evict without the query's attention");
      scores = last_;
      break;
    case EvictionKind::knorm:
      for (std::size_t i = 0; i < n; ++i) scores[i] = neg_norm2_[std::size_t(keys[i])];
      break;
    case EvictionKind::snapkv: {
      const std::size_t recent = std::size_t(std::min(policy_.obs_window, budget_));
      std::vector<std::size_t> old;  // unprotected, in cache order
      for (std::size_t i = 0; i < n; ++i) {
        protect[i] = i + recent >= n;
        if (!protect[i]) old.push_back(i);
      }
      std::vector<float> raw(old.size(), 0.0f);
      for (const Row& r : window_) {  // oldest query first
        std::size_t at = 0;
        for (std::size_t o = 0; o < old.size(); ++o) {
          const int j = keys[old[o]];
          while (at < r.keys.size() && r.keys[at] < j) ++at;
          if (at < r.keys.size() && r.keys[at] == j) raw[o] = raw[o] + r.attention[at];
        }
      }
      const std::ptrdiff_t left = (policy_.pool - 1) / 2, count = std::ptrdiff_t(old.size());
      for (std::ptrdiff_t o = 0; o < count; ++o) {
        float s = raw[std::size_t(o)];
        for (std::ptrdiff_t u = std::max<std::ptrdiff_t>(0, o - left); u <= std::min(count - 1, o + left); ++u)
          if (raw[std::size_t(u)] > s) s = raw[std::size_t(u)];
        scores[old[std::size_t(o)]] = s;
      }
      break;
    }
    case EvictionKind::streaming:
    case EvictionKind::window: break;
  }
  return lowest_scores_f32(keys, scores, protect, over);
}

CacheEviction::CacheEviction(const quant::EvictionPolicy& policy, int n_layers, int n_kv_heads, int capacity)
    : n_kv_heads_(n_kv_heads), capacity_(capacity) {
  for (int l = 0; l < n_layers; ++l) {
    std::vector<int> every_slot;  // the layer's, highest first
    for (int i = eviction_slots(policy, capacity, l) - 1; i >= 0; --i) every_slot.push_back(i);
    for (int h = 0; h < n_kv_heads; ++h) caches_.push_back({KeyScorer(policy, capacity, l), {}, every_slot, {}});
  }
  slot_of_.assign(std::size_t(n_layers), std::vector<int>(std::size_t(n_kv_heads) * capacity, -1));
}

int CacheEviction::place(int layer, int kv_head, int pos) {
  Cache& c = cache(layer, kv_head);
  if (c.free.empty() || (!c.kept.empty() && c.kept.back() >= pos))
    throw std::logic_error("CacheEviction::place: no free slot, or a position out of order");
  const int slot = c.free.back();
  c.free.pop_back();
  c.kept.push_back(pos);
  slot_of_[std::size_t(layer)][std::size_t(kv_head) * capacity_ + pos] = slot;
  return slot;
}

void CacheEviction::evict_after(int layer, int kv_head, int pos) {
  Cache& c = cache(layer, kv_head);
  const std::vector<int> gone = c.scorer.evict(pos, c.kept);
  if (gone.empty()) return;
  std::vector<int> kept;
  std::size_t at = 0;
  int* slots = slot_of_[std::size_t(layer)].data() + std::size_t(kv_head) * capacity_;
  for (int j : c.kept) {
    if (at < gone.size() && gone[at] == j) {
      c.free.push_back(slots[j]);
      slots[j] = -1;
      c.evicted.push_back({layer, kv_head, pos, j});
      ++at;
    } else {
      kept.push_back(j);
    }
  }
  if (at != gone.size()) throw std::logic_error("CacheEviction: a policy evicted a key not in the cache");
  c.kept = std::move(kept);
}

void CacheEviction::attended(int layer, int pos, const float* probs, std::size_t stride, int group) {
  for (int h = 0; h < n_kv_heads_; ++h) {
    Cache& c = cache(layer, h);
    c.scorer.attended(pos, c.kept, probs + std::size_t(h) * group * stride, stride, group);
    evict_after(layer, h, pos);
  }
}

void CacheEviction::key_lists(int layer, int width, std::vector<int>& lists) const {
  lists.assign(std::size_t(2 * n_kv_heads_) * width + n_kv_heads_, 0);
  for (int h = 0; h < n_kv_heads_; ++h) {
    const std::vector<int>& kept = cached(layer, h);
    if (int(kept.size()) > width) throw std::logic_error("CacheEviction::key_lists: more kept keys than the width");
    for (std::size_t i = 0; i < kept.size(); ++i) {
      lists[std::size_t(h) * width + i] = kept[i];
      lists[std::size_t(n_kv_heads_ + h) * width + i] = slot_map(layer)[std::size_t(h) * capacity_ + kept[i]];
    }
    lists[std::size_t(2 * n_kv_heads_) * width + h] = int(kept.size());
  }
}

std::vector<quant::EvictionEvent> CacheEviction::events() const {
  std::vector<quant::EvictionEvent> out;
  for (const Cache& c : caches_) out.insert(out.end(), c.evicted.begin(), c.evicted.end());
  return out;
}

}  // namespace kvfid::engine
