// sequence_buffers: a sequence's buffer sizes and a fork's copies, worked by hand for a
// plain cache, a tiered one (codes, hot plane, KIVI raw keys) and a latent one (rows and
// their reconstructions, in a plain and a block format); the end-to-end
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

// tiny-mla's shape: 2 layers, 4 heads of head_dim 24 (16 nope + 8 rope), v_head_dim
// 16, rows of kv_lora_rank 32 + rope 8 = 40 values.
TEST(SequenceBuffers, LatentCacheHoldsRowsAndReconstructionsAndForksEachPrefix) {
  ModelConfig c = config();
  apply_deepseek2(c, 16, LatentAttention{24, 32, 8, 16});
  for (const char* kv : {"bf16", "q8_0"}) {
    SCOPED_TRACE(kv);
    const KvPlan plan = make_kv_plan(test::kv_spec(kv), {}, c);
    const std::size_t elem = kv == std::string("bf16") ? 2 : 4;  // a block format's rows: FP32 decoded values
    EXPECT_EQ(latent_element_bytes(plan), elem);
    // What a token's row of a layer is held in: 40 bf16 values, or two q8_0 blocks of 34
    // bytes (the second padded: 40 = 32 + 8).
    EXPECT_EQ(latent_row_bytes(plan, c, 1), kv == std::string("bf16") ? 80u : 68u);
    const SequenceSizes s = sequence_sizes(plan, c, 10);
    EXPECT_EQ(s.latent, 2u * 10 * 40 * elem);        // [n_layers, capacity, 40]
    EXPECT_EQ(s.rk, 2u * 4 * 10 * 24 * 4);           // [n_layers, n_heads, capacity, head_dim] FP32
    EXPECT_EQ(s.rv, 2u * 4 * 10 * 16 * 4);           // [.., v_head_dim]
    EXPECT_EQ(s.cache + s.hot + s.raw + s.codes, 0u);  // no K and V planes

    const std::vector<StridedCopy> copies = fork_copies(plan, c, 10, 7, 3);
    ASSERT_EQ(copies.size(), 3u);
    const StridedCopy &rows = copies[0], &rk = copies[1], &rv = copies[2];
    EXPECT_EQ(rows.buffer, SequenceBuffer::latent);
    EXPECT_EQ(rows.height, 2u);                        // a block per layer
    EXPECT_EQ(rows.width, 3u * 40 * elem);             // its first 3 rows
    EXPECT_EQ(rows.src_pitch, 10u * 40 * elem);
    EXPECT_EQ(rows.dst_pitch, 7u * 40 * elem);
    EXPECT_EQ(rk.buffer, SequenceBuffer::rk);
    EXPECT_EQ(rk.height, 2u * 4);                      // a block per (layer, head)
    EXPECT_EQ(rk.width, 3u * 24 * 4);
    EXPECT_EQ(rk.src_pitch, 10u * 24 * 4);
    EXPECT_EQ(rk.dst_pitch, 7u * 24 * 4);
    EXPECT_EQ(rv.buffer, SequenceBuffer::rv);
    EXPECT_EQ(rv.height, 2u * 4);
    EXPECT_EQ(rv.width, 3u * 16 * 4);
    EXPECT_EQ(rv.src_pitch, 10u * 16 * 4);
    EXPECT_EQ(rv.dst_pitch, 7u * 16 * 4);
    for (const StridedCopy& copy : copies) EXPECT_EQ(copy.src_offset + copy.dst_offset, 0u);
    EXPECT_TRUE(fork_copies(plan, c, 10, 7, 0).empty());
  }
}

}  // namespace
}  // namespace kvfid::engine
