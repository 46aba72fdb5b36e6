// sequence_buffers: a sequence's buffer sizes and a fork's copies, worked by hand for a
// plain cache and for a tiered one (codes, hot plane, KIVI raw keys); the end-to-end
// check that a fork equals separate runs is tests/cuda/properties/prefix_reuse_property.cpp.
#include "cuda/engine/sequence_buffers.h"

#include <gtest/gtest.h>

#include "reference/formats/quant/registry.h"
#include "tests/common/typed_options.h"
#include "tests/cuda/engine/engine_test_util.h"

namespace kvfid::engine {
namespace {

// 2 layers, 2 KV heads of head_dim 16: kv_dim 32, one q8_0 block (34 bytes) per row.
ModelConfig config() { return test::tiny_config(4, 2, 16, RopeStyle::rotate_half, false); }

TEST(SequenceBuffers, PlainCacheIsOnePlaneSetAndForksAsOneStridedCopy) {
  const ModelConfig c = config();
  const KvPlan plan = make_kv_plan(test::kv_spec("f16"), {}, c);
  const SequenceSizes s = sequence_sizes(plan, c, 10);
  EXPECT_EQ(s.cache, 2u * 2 * 2 * 10 * 16 * 2);  // [n_layers, K|V, n_kv_heads, capacity, head_dim] FP16
  EXPECT_EQ(s.hot + s.raw + s.codes, 0u);
  EXPECT_TRUE(s.code_offsets.empty());

  const std::vector<StridedCopy> copies = fork_copies(plan, c, 10, 7, 3);
  ASSERT_EQ(copies.size(), 1u);
  const StridedCopy& k = copies[0];
  EXPECT_EQ(k.buffer, SequenceBuffer::cache);
  EXPECT_EQ(k.height, 2u * 2 * 2);      // every (layer, K|V, kv head) block
  EXPECT_EQ(k.width, 3u * 16 * 2);      // its first 3 rows
  EXPECT_EQ(k.src_pitch, 10u * 16 * 2); // blocks of the source's capacity
  EXPECT_EQ(k.dst_pitch, 7u * 16 * 2);  // and of the fork's
  EXPECT_EQ(k.src_offset + k.dst_offset, 0u);
  EXPECT_TRUE(fork_copies(plan, c, 10, 7, 0).empty());  // nothing to copy, no copy
}

TEST(SequenceBuffers, TieredCacheCopiesPlanesRowsAndOnlyCompleteKiviGroups) {
  const ModelConfig c = config();
  const KvPlan plan = make_kv_plan(test::kv_spec("q8_0+kivi+hot=4"), {}, c);
  const int block = quant::all_formats()[plan.policy.k[0].format].block;  // 32 tokens a KIVI group
  const int bytes = quant::all_formats()[plan.policy.k[0].format].bytes;
  const SequenceSizes s = sequence_sizes(plan, c, 70);
  const std::size_t elements = 2u * 2 * 2 * 70 * 16;
  EXPECT_EQ(s.cache, elements * 4);  // FP32 cold planes
  EXPECT_EQ(s.hot, elements * 4);
  EXPECT_EQ(s.raw, elements / 2 * 4);  // K planes only
  EXPECT_EQ(s.code_offsets, plan.code_offsets(32, 70));
  EXPECT_EQ(s.codes, s.code_offsets.back());

  const int prefix = 65;  // two complete groups and one token of a third
  const std::vector<StridedCopy> copies = fork_copies(plan, c, 70, 100, prefix);
  ASSERT_EQ(copies.size(), 3u + 2 * 2);  // cache, hot, raw; then K and V codes per layer
  EXPECT_EQ(copies[1].buffer, SequenceBuffer::hot);
  EXPECT_EQ(copies[2].buffer, SequenceBuffer::raw);
  EXPECT_EQ(copies[2].height, 2u * 2);  // K planes only
  const std::vector<std::size_t> to = plan.code_offsets(32, 100), from = plan.code_offsets(32, 70);
  for (int l = 0; l < 2; ++l) {
    const StridedCopy& k = copies[3 + 2 * l];
    const StridedCopy& v = copies[4 + 2 * l];
    EXPECT_EQ(k.buffer, SequenceBuffer::codes);
    EXPECT_EQ(k.dst_offset, to[2 * l]);
    EXPECT_EQ(k.src_offset, from[2 * l]);
    EXPECT_EQ(k.height, 32u);                                  // per channel
    EXPECT_EQ(k.width, std::size_t(prefix / block * bytes));   // the two complete groups
    EXPECT_EQ(k.src_pitch, std::size_t((70 + block - 1) / block * bytes));
    EXPECT_EQ(k.dst_pitch, std::size_t((100 + block - 1) / block * bytes));
    EXPECT_EQ(v.dst_offset, to[2 * l + 1]);
    EXPECT_EQ(v.src_offset, from[2 * l + 1]);
    EXPECT_EQ(v.height, 1u);
    EXPECT_EQ(v.width, std::size_t(prefix * bytes));  // every token's row of one block
  }
}

}  // namespace
}  // namespace kvfid::engine
