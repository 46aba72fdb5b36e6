// Rows the block does not divide (row_blocks.h): the block count and gather, that the
// padding leaves every real element's code as a partial-block codec gives it (q4_0 and
// int4a by hand-built partial-block encoders), and, for every repeat-invariant codec
// (codec.h), that the real elements' codes do not depend on which real element fills
// the padding (the block statistics are those of the real elements alone).
#include "reference/formats/quant/row_blocks.h"

#include <algorithm>
#include <cmath>
#include <random>
#include <vector>

#include <gtest/gtest.h>

#include "reference/numeric/convert.h"
#include "reference/formats/quant/registry.h"
#include "tests/common/test_env.h"

namespace kvfid::ref::quant {
namespace {

TEST(RowBlocks, CountAndRealElements) {
  EXPECT_EQ(row_block_count(16, 32), 1);
  EXPECT_EQ(row_block_count(32, 32), 1);
  EXPECT_EQ(row_block_count(40, 32), 2);
  EXPECT_EQ(row_block_count(64, 32), 2);
  EXPECT_EQ(row_block_count(16, 1), 16);
  EXPECT_EQ(real_elements(40, 32, 0), 32);
  EXPECT_EQ(real_elements(40, 32, 1), 8);
  EXPECT_EQ(real_elements(16, 64, 0), 16);
  EXPECT_EQ(real_elements(64, 32, 1), 32);
}

TEST(RowBlocks, GatherRepeatsTheRowsLastElement) {
  std::vector<float> row(40);  // [40]
  for (int i = 0; i < 40; ++i) row[i] = float(i + 1);
  std::vector<float> x(32);
  gather_padded_block(row.data(), 40, 32, 0, x.data());
  for (int i = 0; i < 32; ++i) EXPECT_EQ(x[i], float(i + 1));
  gather_padded_block(row.data(), 40, 32, 1, x.data());
  for (int i = 0; i < 8; ++i) EXPECT_EQ(x[i], float(33 + i));
  for (int i = 8; i < 32; ++i) EXPECT_EQ(x[i], 40.0f) << i;
}

// Rows that probe the statistics: random normals, the extreme at the row's end (the
// element that is repeated), equal magnitudes of opposite signs (q4_0 keeps the
// first), and a constant row (zero spread).
std::vector<std::vector<float>> probe_rows(int n, std::uint64_t seed) {
  std::mt19937_64 rng(seed);
  std::normal_distribution<float> normal(0.0f, 1.5f);
  std::vector<std::vector<float>> rows;
  for (int r = 0; r < 20; ++r) {
    std::vector<float> row(static_cast<std::size_t>(n));
    for (float& v : row) v = normal(rng);
    rows.push_back(row);
  }
  std::vector<float> last_extreme = rows[0];
  last_extreme.back() = -9.0f;  // the largest magnitude and the minimum, repeated
  rows.push_back(last_extreme);
  last_extreme.back() = 9.0f;  // the maximum, repeated
  rows.push_back(last_extreme);
  std::vector<float> ties = rows[1];
  for (float& v : ties) v = std::clamp(v, -3.9f, 3.9f);
  ties[n - 3] = 4.0f;
  ties[n - 1] = -4.0f;  // same magnitude, later, and repeated: q4_0's M stays +4
  rows.push_back(ties);
  rows.push_back(std::vector<float>(std::size_t(n), 0.75f));
  return rows;
}

// Encodes block b of `row` with its padding and returns the block's bytes.
std::vector<std::uint8_t> padded_code(const FormatInfo& f, const std::vector<float>& row, int b) {
  std::vector<float> x(std::size_t(f.block));
  gather_padded_block(row.data(), int(row.size()), f.block, b, x.data());
  std::vector<std::uint8_t> code(std::size_t(f.bytes));
  f.encode(x.data(), code.data(), {});
  return code;
}

// Nibble i of a 4-bit block whose quants start at `offset` (element j low in byte j,
// j + block/2 high, as ggml).
int nibble(const std::vector<std::uint8_t>& code, int offset, int block, int i) {
  return i < block / 2 ? code[offset + i] & 0x0F : code[offset + i - block / 2] >> 4;
}

// q4_0 written for a partial block of n elements (q4_0.h's rule over x[0..n) only).
struct PartialQ4_0 {
  std::uint16_t d16;
  std::vector<int> q;
};
PartialQ4_0 partial_q4_0(const float* x, int n) {
  float amax = 0, extreme = 0;
  for (int i = 0; i < n; ++i)
    if (amax < std::fabs(x[i])) amax = std::fabs(x[i]), extreme = x[i];
  const float d = extreme / -8.0f;
  const float id = d != 0 ? 1.0f / d : 0.0f;
  PartialQ4_0 r{num::f32_to_f16(d), {}};
  for (int i = 0; i < n; ++i) r.q.push_back(std::min(15, int(std::trunc(x[i] * id + 8.5f))));
  return r;
}

// int4a written for a partial block of n elements (int_asymmetric.h's rule).
struct PartialInt4a {
  std::uint16_t d16, m16;
  std::vector<int> q;
};
PartialInt4a partial_int4a(const float* x, int n) {
  int lo_at = 0, hi_at = 0;
  for (int i = 1; i < n; ++i) {
    if (x[i] < x[lo_at]) lo_at = i;
    if (x[hi_at] < x[i]) hi_at = i;
  }
  std::uint16_t m16 = num::f32_to_f16(x[lo_at]);
  if (m16 == 0x8000u) m16 = 0;
  PartialInt4a r{num::f32_to_f16((x[hi_at] - x[lo_at]) / 15.0f), m16, {}};
  const float m = num::f16_to_f32(r.m16), step = num::f16_to_f32(r.d16);
  for (int i = 0; i < n; ++i) {
    int q = 0;
    if (step != 0 && i != lo_at) q = i == hi_at ? 15 : std::clamp(int(std::nearbyint((x[i] - m) / step)), 0, 15);
    r.q.push_back(q);
  }
  return r;
}

// Row lengths with a padded last block: 16 and 40 against blocks of 32, 16 and 40
// (and 72: a full block then a padded one) against 64.
std::vector<int> padded_lengths(int block) { return block == 32 ? std::vector{16, 40} : std::vector{16, 40, 72}; }

TEST(RowBlocks, Q4_0PaddedBlockCodesTheRealElementsAsAPartialBlock) {
  SCOPED_TRACE(test::seed_trace());
  const FormatInfo& f = format_by_name("q4_0", "test");
  for (int n : padded_lengths(f.block))
    for (const std::vector<float>& row : probe_rows(n, test::test_seed())) {
      const int b = row_block_count(n, f.block) - 1, real = real_elements(n, f.block, b);
      ASSERT_LT(real, f.block);
      const std::vector<std::uint8_t> code = padded_code(f, row, b);
      const PartialQ4_0 want = partial_q4_0(row.data() + b * f.block, real);
      ASSERT_EQ(load_u16(code.data()), want.d16) << n;
      for (int i = 0; i < real; ++i) ASSERT_EQ(nibble(code, 2, f.block, i), want.q[i]) << n << " " << i;
    }
}

TEST(RowBlocks, Int4aPaddedBlockCodesTheRealElementsAsAPartialBlock) {
  SCOPED_TRACE(test::seed_trace());
  for (const char* name : {"int4a_32", "int4a_64"}) {
    const FormatInfo& f = format_by_name(name, "test");
    for (int n : padded_lengths(f.block))
      for (const std::vector<float>& row : probe_rows(n, test::test_seed() + 1)) {
        const int b = row_block_count(n, f.block) - 1, real = real_elements(n, f.block, b);
        const std::vector<std::uint8_t> code = padded_code(f, row, b);
        const PartialInt4a want = partial_int4a(row.data() + b * f.block, real);
        ASSERT_EQ(load_u16(code.data()), want.d16) << name << " " << n;
        ASSERT_EQ(load_u16(code.data() + 2), want.m16) << name << " " << n;
        for (int i = 0; i < real; ++i) ASSERT_EQ(nibble(code, 4, f.block, i), want.q[i]) << name << " " << n << " " << i;
      }
  }
}

// Every registered block codec: each real element stays within the codec's bound for
// the padded block; and for the repeat-invariant ones (all but tq*), filling the padding
// with any real element instead of the last gives the real elements the same decoded
// values, so what they get depends on the real elements alone.
TEST(RowBlocks, EveryCodecsRealElementsIgnoreWhichRealElementPads) {
  SCOPED_TRACE(test::seed_trace());
  for (const FormatInfo& f : all_formats()) {
    if (f.block == 1) continue;
    for (int n : padded_lengths(f.block))
      for (const std::vector<float>& row : probe_rows(n, test::test_seed() + 2)) {
        const int b = row_block_count(n, f.block) - 1, real = real_elements(n, f.block, b);
        const float* reals = row.data() + b * f.block;
        std::vector<float> padded(std::size_t(f.block));
        gather_padded_block(row.data(), n, f.block, b, padded.data());
        const std::vector<std::uint8_t> code = padded_code(f, row, b);
        for (int i = 0; i < real; ++i) {
          const double decoded = f.decode_exact(code.data(), i, {});
          ASSERT_TRUE(std::isfinite(decoded)) << f.name;
          ASSERT_LE(std::fabs(decoded - reals[i]), f.error_bound(padded.data(), i, {})) << f.name << " " << n << " " << i;
        }
        if (!f.repeat_invariant) continue;  // its codes see the repeats (codec.h's kRepeatInvariant)
        for (int filler : {0, real / 2}) {
          std::vector<float> other(padded);
          std::fill(other.begin() + real, other.end(), reals[filler]);
          std::vector<std::uint8_t> other_code(std::size_t(f.bytes));
          f.encode(other.data(), other_code.data(), {});
          for (int i = 0; i < real; ++i)
            ASSERT_EQ(f.decode_exact(other_code.data(), i, {}), f.decode_exact(code.data(), i, {}))
                << f.name << " n " << n << " filler " << filler << " element " << i;
        }
      }
  }
}

}  // namespace
}  // namespace kvfid::ref::quant
