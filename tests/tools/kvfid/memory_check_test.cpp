#include "tools/kvfid/memory_check.h"

#include <gtest/gtest.h>

#include "reference/synth/synthetic_shapes.h"

namespace kvfid::cli {
namespace {

// The engine's packed matrices add nothing where it reads the file's bytes in place
// (stored in the format it runs), every parameter at the packed width otherwise (FP32
// for a block format's decode), and the largest over the engines a command builds.
TEST(MemoryCheck, EngineWeightsCostNothingWhereTheFileIsReadInPlace) {
  const ModelConfig c = synthetic_shape("qwen2.5-0.5b");
  const std::uint64_t params = std::uint64_t(c.parameter_count());
  const WeightFormat f32, bf16 = weight_format_from_string("bf16", "t"), f16 = weight_format_from_string("f16", "t"),
                          q8 = weight_format_from_string("q8_0", "t");
  EXPECT_EQ(engine_weight_bytes(c, {bf16}, WeightType::bf16), 0u);
  EXPECT_EQ(engine_weight_bytes(c, {f16}, WeightType::bf16), 2 * params);
  EXPECT_EQ(engine_weight_bytes(c, {f32}, WeightType::bf16), 4 * params);
  EXPECT_EQ(engine_weight_bytes(c, {f32}, WeightType::f32), 0u);
  EXPECT_EQ(engine_weight_bytes(c, {q8}, WeightType::bf16), 4 * params);
  EXPECT_EQ(engine_weight_bytes(c, {f32, bf16}, WeightType::bf16), 4 * params);  // the F32 engine is the larger
  EXPECT_EQ(engine_weight_bytes(c, {bf16}, std::nullopt), 2 * params);          // unknown storage: a copy
  EXPECT_EQ(engine_weight_bytes(c, {}, WeightType::bf16), 0u);
}

}  // namespace
}  // namespace kvfid::cli
