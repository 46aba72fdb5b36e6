#pragma once
// Where the codes of one layer's K or V sit in a sequence's code region (the tiered
// KV path, cuda/engine/kv_plan.h). Blocks run along each token's K/V row of kv_dim
// elements ([capacity, ceil(kv_dim / block)] blocks, the last one padded when block
// does not divide kv_dim: reference/formats/quant/row_blocks.h), or, for KIVI keys,
// along tokens per channel ([kv_dim, groups] blocks, `block` tokens a group).
#include <cstddef>

#include "reference/numeric/hd.h"
#include "reference/formats/quant/row_blocks.h"

namespace kvfid::engine::num {
using namespace kvfid::ref;  // the specification's names: the layer below

struct KvCodeSlot {
  int block = 1;              // elements per block
  int bytes = 4;              // bytes per block
  bool along_tokens = false;  // KIVI keys

  KVFID_HD int groups(int capacity) const { return (capacity + block - 1) / block; }
  KVFID_HD std::size_t region(int kv_dim, int capacity) const {
    return along_tokens ? std::size_t(kv_dim) * groups(capacity) * bytes
                        : std::size_t(capacity) * quant::row_block_count(kv_dim, block) * bytes;
  }
  // Block b of token pos's row.
  KVFID_HD std::size_t row_block(int kv_dim, int pos, int b) const {
    return (std::size_t(pos) * quant::row_block_count(kv_dim, block) + b) * bytes;
  }
  // Group g of channel c (KIVI keys).
  KVFID_HD std::size_t group_block(int capacity, int channel, int g) const {
    return (std::size_t(channel) * groups(capacity) + g) * bytes;
  }
};

}  // namespace kvfid::engine::num
