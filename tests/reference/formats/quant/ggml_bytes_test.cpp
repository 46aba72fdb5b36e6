// Q8_0 and Q4_0 bytes against ggml's rules on adversarial blocks. Every expected byte
// is derived by hand in the comments (float32 steps written out), not computed by the
// code under test.
//   Q8_0: { fp16 d; int8 q[32] },  d = amax/127, id = 1/d, q = roundf(x * id)
//   Q4_0: { fp16 d; uint8 qs[16] }, M = first element of largest |x|, d = M/-8,
//         id = 1/d, q = min(15, (int)(x * id + 8.5f)), qs[j] = q[j] | q[j + 16] << 4
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "reference/formats/quant/q4_0.h"
#include "reference/formats/quant/q8_0.h"
#include "tests/reference/formats/quant/codec_bytes.h"

namespace kvfid::ref {
namespace {

using quant::Q4_0;
using quant::Q8_0;

// A block of zeros with the given elements set.
std::vector<float> block_with(std::initializer_list<std::pair<int, float>> set) {
  std::vector<float> x(32, 0.0f);
  for (auto [i, v] : set) x[i] = v;
  return x;
}

std::vector<std::uint8_t> q8_bytes(std::uint16_t d, std::initializer_list<std::pair<int, std::uint8_t>> q) {
  std::vector<std::uint8_t> b(34, 0);
  b[0] = std::uint8_t(d & 0xFF);
  b[1] = std::uint8_t(d >> 8);
  for (auto [i, v] : q) b[2 + i] = v;
  return b;
}

// Q4_0 bytes: qs defaults to 0x88 (both nibbles 8, the code of 0).
std::vector<std::uint8_t> q4_bytes(std::uint16_t d, std::initializer_list<std::pair<int, std::uint8_t>> qs) {
  std::vector<std::uint8_t> b(18, 0x88);
  b[0] = std::uint8_t(d & 0xFF);
  b[1] = std::uint8_t(d >> 8);
  for (auto [j, v] : qs) b[2 + j] = v;
  return b;
}

// amax = 127: d = 127/127 = 1 exactly (fp16 0x3C00), id = 1, so x * id = x and every
// half below is an exact tie, rounded away from zero (round-half-even would give 0,
// 2, -2 for 0.5, 2.5, -2.5):
//   127 -> 127 (7F), 0.5 -> 1 (01), -0.5 -> -1 (FF), 1.5 -> 2 (02), 2.5 -> 3 (03),
//   -2.5 -> -3 (FD), 126.5 -> 127 (7F), -126.5 -> -127 (81),
//   0.49999997 (0x3EFFFFFF, just below the tie) -> 0.
TEST(GgmlBytes, Q8_0TiesRoundAwayFromZero) {
  const auto x = block_with({{0, 127.0f}, {1, 0.5f}, {2, -0.5f}, {3, 1.5f}, {4, 2.5f}, {5, -2.5f}, {6, 126.5f},
                             {7, -126.5f}, {8, 0x1.fffffep-2f}});
  EXPECT_EQ(test::encode_block_bytes<Q8_0>(x), q8_bytes(0x3C00, {{0, 0x7F}, {1, 0x01}, {2, 0xFF}, {3, 0x02}, {4, 0x03}, {5, 0xFD},
                                              {6, 0x7F}, {7, 0x81}}));
}

// The extreme value negative: amax = |-127| = 127, d = 1 again; -127 -> 0x81.
TEST(GgmlBytes, Q8_0NegativeExtreme) {
  EXPECT_EQ(test::encode_block_bytes<Q8_0>(block_with({{5, -127.0f}, {6, 63.0f}})), q8_bytes(0x3C00, {{5, 0x81}, {6, 0x3F}}));
}

// amax = 1: d = fl32(1/127) = 0x3C010204 = 2^-7 (1 + 66052 / 2^23) (1/127 = 2^-7 *
// 1.0078740157..., and .0078740157 * 2^23 = 66052.03 rounds to 66052). In FP16 the
// significand keeps 10 bits: .0078740157 * 2^10 = 8.06 rounds to 8, so d is stored as
// 2^-7 (1 + 8/1024): exponent field -7 + 15 = 8, fp16 0x2008.
// id = fl32(1/d): 1/d = 127 (1 + 3.7e-9) and 127's ulp is 2^-17 = 7.6e-6, so id = 127.
// Quants from the float32 d (id = 127): 1 -> 127 (7F), -0.25 -> -31.75 -> -32 (E0),
// 0.5 -> 63.5 (exact tie) -> 64 (40).
TEST(GgmlBytes, Q8_0ScaleRoundsInFp16) {
  EXPECT_EQ(test::encode_block_bytes<Q8_0>(block_with({{0, 1.0f}, {1, -0.25f}, {2, 0.5f}})),
            q8_bytes(0x2008, {{0, 0x7F}, {1, 0xE0}, {2, 0x40}}));
}

// All zeros: amax = 0, d = 0 (fp16 0x0000), id = 0, every q = 0: 34 zero bytes.
TEST(GgmlBytes, Q8_0ZeroBlock) { EXPECT_EQ(test::encode_block_bytes<Q8_0>(std::vector<float>(32, 0.0f)), q8_bytes(0x0000, {})); }

// M = +8 (element 0, before the -8 of element 1: the first of equal magnitudes wins),
// d = 8 / -8 = -1 (fp16 0xBC00), id = -1, so x * id = -x and q = min(15, trunc(8.5 - x)):
//   x = 8     -> 0.5  -> 0      x = -8    -> 16.5 -> 16 -> 15 (clamped: decodes to -7)
//   x = 0.5   -> 8.0  -> 8      x = -0.5  -> 9.0  -> 9   (ties go toward +inf in x*id)
//   x = 1.5   -> 7.0  -> 7      x = -1.5  -> 10.0 -> 10
//   x = 7.5   -> 1.0  -> 1      x = -7.5  -> 16.0 -> 15 (clamped)
//   x = 2.5   -> 6.0  -> 6      x = -2.5  -> 11.0 -> 11
//   x = -(2.5 - 2^-22): x * id = 2.5 - 2^-22, + 8.5 = 11 - 2^-22 rounds in float32 (ulp
//              2^-20 in [8, 16)) to 11 -> 11, where exact arithmetic would truncate to 10
//   x = 3     -> 5.5  -> 5      x = 0     -> 8.5  -> 8
// Elements 0..7 are as listed in order (0: 8, 1: -8, 2: 0.5, 3: -0.5, 4: 1.5, 5: -1.5,
// 6: 7.5, 7: -7.5), 16: 2.5, 17: -2.5, 18: -(2.5 - 2^-22), 31: 3. Bytes qs[j] =
// q[j] | q[j+16] << 4: j=0: 0|6<<4 = 60, j=1: 15|11<<4 = BF, j=2: 8|11<<4 = B8, j=3: 89,
// j=4: 87, j=5: 8A, j=6: 81, j=7: 8F, j=15: 8|5<<4 = 58, the rest 88.
TEST(GgmlBytes, Q4_0PositiveExtremeTiesAndClamp) {
  const auto x = block_with({{0, 8.0f}, {1, -8.0f}, {2, 0.5f}, {3, -0.5f}, {4, 1.5f}, {5, -1.5f}, {6, 7.5f},
                             {7, -7.5f}, {16, 2.5f}, {17, -2.5f}, {18, -(2.5f - 0x1p-22f)}, {31, 3.0f}});
  EXPECT_EQ(test::encode_block_bytes<Q4_0>(x), q4_bytes(0xBC00, {{0, 0x60}, {1, 0xBF}, {2, 0xB8}, {3, 0x89}, {4, 0x87}, {5, 0x8A},
                                               {6, 0x81}, {7, 0x8F}, {15, 0x58}}));
}

// M = -8 (element 0, before +8): d = -8 / -8 = +1 (fp16 0x3C00), id = 1, q =
// min(15, trunc(x + 8.5)): -8 -> 0.5 -> 0; +8 -> 16.5 -> 15 (the positive extreme is
// the clamped one now); 0.5 -> 9.0 -> 9; -0.5 -> 8.0 -> 8.
// qs[0] = 0|8<<4 = 80, qs[1] = 8F, qs[2] = 89, qs[3] = 88.
TEST(GgmlBytes, Q4_0NegativeExtremeFlipsTheScale) {
  const auto x = block_with({{0, -8.0f}, {1, 8.0f}, {2, 0.5f}, {3, -0.5f}});
  EXPECT_EQ(test::encode_block_bytes<Q4_0>(x), q4_bytes(0x3C00, {{0, 0x80}, {1, 0x8F}, {2, 0x89}}));
}

// All zeros: M stays 0.0f, d = 0.0f / -8 = -0.0f, stored as fp16 0x8000; id = 0 (d
// compares equal to 0), q = trunc(0 + 8.5) = 8: bytes 00 80, then 88 x 16.
TEST(GgmlBytes, Q4_0ZeroBlockStoresNegativeZeroScale) {
  EXPECT_EQ(test::encode_block_bytes<Q4_0>(std::vector<float>(32, 0.0f)), q4_bytes(0x8000, {}));
}

// M = 8 (1 + 2^-12) = 8.001953125: d = -(1 + 2^-12) exactly in float32, but FP16 keeps
// 10 fraction bits and 2^-12 is a quarter of an ulp: stored d = -1 (0xBC00).
// id = fl32(1/d) = -(1 - 2^-12 + 2^-24) (1/(1+a) = 1 - a + a^2 - ..., the rest below
// half an ulp). The quants come from this float32 id, not from the stored -1:
//   M: x * id = -8 (1 + 2^-36) -> -8, + 8.5 -> 0.5 -> 0.
//   x = -(4.5 + 2^-11): x * id = 4.5 + 2^-11 - 4.5 * 2^-12 + 1.5e-7 rounds (ulp 2^-21)
//   to 4.5 - 5 * 2^-13 = 4.4993896484375, + 8.5 = 12.9993896484375 -> 12
//   (with the stored d = -1 it would be 13.0004... -> 13).
// qs[0] = 0|8<<4 = 80, qs[1] = 12|8<<4 = 8C.
TEST(GgmlBytes, Q4_0QuantsComeFromTheFloat32Scale) {
  const auto x = block_with({{0, 8.001953125f}, {1, -4.50048828125f}});
  EXPECT_EQ(test::encode_block_bytes<Q4_0>(x), q4_bytes(0xBC00, {{0, 0x80}, {1, 0x8C}}));
}

}  // namespace
}  // namespace kvfid::ref
