// Philox4x32-10 against the Random123 known-answer vectors (kat_vectors, philox4x32_10).
#include "cuda/common/philox.h"

#include <gtest/gtest.h>

namespace kvfid::engine {
namespace {

void expect_kat(num::Philox4x32 ctr, std::uint32_t k0, std::uint32_t k1, num::Philox4x32 want) {
  const num::Philox4x32 got = num::philox4x32_10(ctr, k0, k1);
  for (int i = 0; i < 4; ++i) EXPECT_EQ(got.v[i], want.v[i]) << "word " << i;
}

TEST(EnginePhilox, KnownAnswers) {
  expect_kat({{0, 0, 0, 0}}, 0, 0, {{0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8}});
  expect_kat({{0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff}}, 0xffffffff, 0xffffffff,
             {{0x408f276d, 0x41c83b0e, 0xa20bc7c6, 0x6d5451fd}});
  expect_kat({{0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344}}, 0xa4093822, 0x299f31d0,
             {{0xd16cfe09, 0x94fdcceb, 0x5001e420, 0x24126ea1}});
}

// The uniform is in [0, 1) and depends on every part of the counter and the key.
TEST(EnginePhilox, UniformDependsOnSeedSequenceAndPosition) {
  const float base = num::philox_uniform(7, 3, 11);
  EXPECT_GE(base, 0.0f);
  EXPECT_LT(base, 1.0f);
  EXPECT_EQ(base, num::philox_uniform(7, 3, 11));
  EXPECT_NE(base, num::philox_uniform(8, 3, 11));
  EXPECT_NE(base, num::philox_uniform(7, 4, 11));
  EXPECT_NE(base, num::philox_uniform(7, 3, 12));
  EXPECT_NE(base, num::philox_uniform(7, 3, 11 + (1ull << 32)));
}

}  // namespace
}  // namespace kvfid::engine
