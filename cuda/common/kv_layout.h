#pragma once
// KV-cache layout of one sequence: for each layer, K then V, each
//   [n_kv_heads, capacity, head_dim]
// elements of the cache's storage format. A head's keys are contiguous, so the
// attention kernels stream them; `capacity` is fixed when the sequence is created.
#include <cstddef>

#include "reference/numeric/hd.h"

namespace kvfid::engine::num {

struct KvLayout {
  int n_layers;
  int n_kv_heads;
  int head_dim;
  int capacity;

  KVFID_HD std::size_t plane() const { return std::size_t(n_kv_heads) * capacity * head_dim; }  // one K or V
  KVFID_HD std::size_t elements() const { return 2 * plane() * n_layers; }
  KVFID_HD std::size_t k_offset(int layer) const { return 2 * plane() * layer; }
  KVFID_HD std::size_t v_offset(int layer) const { return 2 * plane() * layer + plane(); }
  // Offset of (kv_head, pos) within a K or V plane.
  KVFID_HD std::size_t row(int kv_head, int pos) const {
    return (std::size_t(kv_head) * capacity + pos) * head_dim;
  }
};

}  // namespace kvfid::engine::num
