// The byte layouts of the integer KV formats (int_symmetric.h, int_asymmetric.h) on
// blocks whose scales are exact, with every expected byte derived by hand below.
#include <cstdint>
#include <vector>

#include <gtest/gtest.h>

#include "reference/formats/quant/int_asymmetric.h"
#include "reference/formats/quant/int_symmetric.h"
#include "tests/reference/formats/quant/codec_bytes.h"

namespace kvfid::ref {
namespace {

std::vector<float> block_with(int n, std::initializer_list<std::pair<int, float>> set) {
  std::vector<float> x(n, 0.0f);
  for (auto [i, v] : set) x[i] = v;
  return x;
}

// header bytes, then `fill` everywhere, then the listed bytes.
std::vector<std::uint8_t> bytes_of(int size, std::initializer_list<std::uint8_t> header, std::uint8_t fill,
                                   std::initializer_list<std::pair<int, std::uint8_t>> set) {
  std::vector<std::uint8_t> b(size, fill);
  int k = 0;
  for (std::uint8_t h : header) b[k++] = h;
  for (auto [i, v] : set) b[i] = v;
  return b;
}

// amax = 127/64: d = 1/64 = 2^-6 (fp16 exponent field 9: 0x2400), id = 64.
// 127/64 -> 127 (7F); 1.5/64 -> 1.5 -> 2 (02, tie to even); -2.5/64 -> -2.5 -> -2
// (FE, tie to even); 0.5/64 -> 0.5 -> 0.
TEST(IntLayout, Int8_32) {
  const auto x = block_with(32, {{0, 127.0f / 64}, {1, 1.5f / 64}, {2, -2.5f / 64}, {3, 0.5f / 64}});
  EXPECT_EQ(test::encode_block_bytes<quant::Int8_32>(x), bytes_of(34, {0x00, 0x24}, 0x00, {{2, 0x7F}, {3, 0x02}, {4, 0xFE}}));
}

// amax = 1.75: d = 0.25 (fp16 0x3400), id = 4; nibble = q + 8.
// x0 = 1.75 -> 7 (F), x1 = -1.75 -> -7 (1), x2 = -0.125 -> -0.5 -> 0 (8, tie to even),
// x16 = 0.375 -> 1.5 -> 2 (A), x17 = 0.625 -> 2.5 -> 2 (A), x33 = -0.5 -> -2 (6).
// int4_32: element j low nibble of byte j, j + 16 high: qs[0] = F | A<<4 = AF,
// qs[1] = 1 | A<<4 = A1, the rest 88.
// int4_64 (same values, halves of 32): qs[0] = F | 8<<4 = 8F, qs[1] = 81, qs[16] =
// A | 8<<4 = 8A, qs[17] = 8A, qs[1] high nibble is element 33: 1 | 6<<4 = 61.
TEST(IntLayout, Int4NibbleOrder) {
  const std::initializer_list<std::pair<int, float>> values = {{0, 1.75f},   {1, -1.75f},  {2, -0.125f},
                                                               {16, 0.375f}, {17, 0.625f}};
  EXPECT_EQ(test::encode_block_bytes<quant::Int4_32>(block_with(32, values)), bytes_of(18, {0x00, 0x34}, 0x88, {{2, 0xAF}, {3, 0xA1}}));
  auto x64 = block_with(64, values);
  x64[33] = -0.5f;
  EXPECT_EQ(test::encode_block_bytes<quant::Int4_64>(x64),
            bytes_of(34, {0x00, 0x34}, 0x88, {{2, 0x8F}, {3, 0x61}, {18, 0x8A}, {19, 0x8A}}));
}

// lo = -255/128, hi = 255/128: d = (255/64)/255 = 1/64 (fp16 0x2400); lo = -(1 +
// 127/128), fraction 127/128 = 1016/1024 (0x3F8), exponent field 15: fp16 0xBFF8.
// t = (x - lo) * 64: hi pinned 255 (FF), lo pinned 0; x = 0 -> 127.5 -> 128 (80, tie to
// even); 1/128 -> 128 (80); -1/128 -> 127 (7F); the other zeros 80.
// Header: d then m, little-endian: 00 24 F8 BF.
TEST(IntLayout, Int8a_32) {
  const auto x = block_with(32, {{0, 255.0f / 128}, {1, -255.0f / 128}, {3, 1.0f / 128}, {4, -1.0f / 128}});
  EXPECT_EQ(test::encode_block_bytes<quant::Int8a_32>(x), bytes_of(36, {0x00, 0x24, 0xF8, 0xBF}, 0x80, {{4, 0xFF}, {5, 0x00}, {8, 0x7F}}));
}

// lo = -1.875, hi = 1.875: d = 3.75/15 = 0.25 (0x3400); lo: 1.875 = 1 + 7/8, fraction
// 896 = 0x380, fp16 0xBF80. t = (x + 1.875) * 4: x0 = hi -> 15 (F), x1 = lo -> 0;
// zeros -> 7.5 -> 8 (tie to even); x16 = 0.125 -> 8; x17 = -0.125 -> 7.
// qs[0] = F | 8<<4 = 8F, qs[1] = 0 | 7<<4 = 70, the rest 88.
TEST(IntLayout, Int4a_32) {
  const auto x = block_with(32, {{0, 1.875f}, {1, -1.875f}, {16, 0.125f}, {17, -0.125f}});
  EXPECT_EQ(test::encode_block_bytes<quant::Int4a_32>(x), bytes_of(20, {0x00, 0x34, 0x80, 0xBF}, 0x88, {{4, 0x8F}, {5, 0x70}}));
}

}  // namespace
}  // namespace kvfid::ref
