// Matrix views: every stored type decodes to its exact value, remapped rows and the
// storage rounding read the same bytes differently, and writes never reach storage
// another matrix (or a file) shares.
#include "reference/model/matrix.h"

#include <bit>
#include <cmath>
#include <cstring>
#include <limits>
#include <memory>
#include <vector>

#include <gtest/gtest.h>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/registry.h"

namespace kvfid::ref {
namespace {

// Little-endian bytes of `values` encoded as `type`; returns them and a view of them.
struct Stored {
  std::shared_ptr<std::vector<std::uint8_t>> bytes;
  Matrix view;
};

Stored store(const std::vector<double>& values, int rows, int cols, WeightType type) {
  auto bytes = std::make_shared<std::vector<std::uint8_t>>(values.size() * weight_type_bytes(type));
  for (std::size_t i = 0; i < values.size(); ++i) {
    std::uint8_t* p = bytes->data() + i * weight_type_bytes(type);
    if (type == WeightType::f32) {
      const float f = float(values[i]);
      std::memcpy(p, &f, 4);
    } else if (type == WeightType::f64) {
      std::memcpy(p, &values[i], 8);
    } else {
      const std::uint16_t h = type == WeightType::f16 ? double_to_f16(values[i]) : double_to_bf16(values[i]);
      std::memcpy(p, &h, 2);
    }
  }
  return {bytes, Matrix::view(rows, cols, type, bytes->data(), bytes)};
}

// Values each type holds exactly, subnormals and extremes included.
std::vector<double> exact_values(WeightType type) {
  switch (type) {
    case WeightType::f16: return {0.0, -0.0, 1.0, -2.5, 65504.0, std::ldexp(1.0, -24), 0.333251953125, -1025.0};
    case WeightType::bf16:
      return {0.0, -0.0, 1.0, -2.5, std::ldexp(1.0, -133), std::ldexp(255.0, 120), 0.333984375, -1.0078125};
    default:
      return {0.0, -0.0, 1.0, -2.5, double(std::numeric_limits<float>::denorm_min()), double(0.1f),
              double(std::numeric_limits<float>::max()), double(-1e-30f)};
  }
}

TEST(Matrix, EveryStoredTypeDecodesExactly) {
  for (WeightType type : {WeightType::f64, WeightType::f32, WeightType::f16, WeightType::bf16}) {
    const std::vector<double> v = exact_values(type);
    const Stored s = store(v, 2, 4, type);
    std::vector<double> row(4);
    for (int r = 0; r < 2; ++r) {
      s.view.decode_row(r, row.data());
      for (int c = 0; c < 4; ++c) {
        const double want = v[std::size_t(r * 4 + c)];
        EXPECT_EQ(std::bit_cast<std::uint64_t>(row[std::size_t(c)]), std::bit_cast<std::uint64_t>(want))
            << int(type) << " " << r << " " << c;
        EXPECT_EQ(std::bit_cast<std::uint64_t>(s.view.at(r, c)), std::bit_cast<std::uint64_t>(want));
      }
    }
    EXPECT_EQ(s.view.values(), v);
  }
}

TEST(Matrix, CopiesShareStorageAndWritesCopyFirst) {
  const Stored s = store({1, 2, 3, 4, 5, 6}, 2, 3, WeightType::bf16);
  Matrix copy = s.view;
  EXPECT_TRUE(copy.same_view(s.view));
  copy.element(1, 2) = 7;  // a view is never written through
  EXPECT_EQ(copy.at(1, 2), 7);
  EXPECT_EQ(s.view.at(1, 2), 6);
  EXPECT_EQ(bf16_to_double(std::uint16_t((*s.bytes)[10] | (*s.bytes)[11] << 8)), 6);
  EXPECT_FALSE(copy.same_view(s.view));
  EXPECT_FALSE(same_values(copy, s.view));

  Matrix owned(2, 2);
  owned.element(0, 1) = 5;
  Matrix shared = owned;  // owned storage is shared too, and copied before a write
  shared.element(0, 1) = 9;
  EXPECT_EQ(owned.at(0, 1), 5);
  EXPECT_EQ(shared.at(0, 1), 9);
}

TEST(Matrix, RemappedRowsReadTheSameStorage) {
  const Stored s = store({1, 2, 3, 4, 5, 6}, 3, 2, WeightType::f32);
  const Matrix m = s.view.with_rows({2, 0, 1});
  EXPECT_EQ(m.values(), (std::vector<double>{5, 6, 1, 2, 3, 4}));
  const Matrix twice = m.with_rows({2, 0, 1});  // composes: row r of m's row source_row[r]
  EXPECT_EQ(twice.values(), (std::vector<double>{3, 4, 5, 6, 1, 2}));
  EXPECT_FALSE(m.plain_view());
  EXPECT_THROW(m.stored_row(0), std::logic_error);
  EXPECT_TRUE(same_values(s.view.with_rows({0, 1, 2}), s.view));
}

TEST(Matrix, PlainRoundingRoundsEachElementOnDecode) {
  const std::vector<double> v = {0.1, 1.0 + std::ldexp(1.0, -9), -3.14159, 65519.0};
  const Stored s = store(v, 2, 2, WeightType::f64);
  const Matrix r = s.view.rounded({FloatFormat::f16, -1});
  for (int i = 0; i < 4; ++i) EXPECT_EQ(r.at(i / 2, i % 2), round_to_format(v[std::size_t(i)], FloatFormat::f16)) << i;
  EXPECT_EQ(s.view.values(), v);  // the stored values are untouched
  // Rounding a rounded view rounds its values again, not the stored ones.
  const Matrix again = r.rounded({FloatFormat::bf16, -1});
  for (int i = 0; i < 4; ++i)
    EXPECT_EQ(again.at(i / 2, i % 2), round_to_format(round_to_format(v[std::size_t(i)], FloatFormat::f16), FloatFormat::bf16));
}

TEST(Matrix, BlockRoundingEncodesEachRowsBlocks) {
  const quant::FormatInfo& q8 = quant::format_by_name("q8_0", "test");
  const int cols = 2 * q8.block;
  std::vector<double> v(std::size_t(3 * cols));
  for (std::size_t i = 0; i < v.size(); ++i) v[i] = std::sin(double(i) * 0.7) * (i % 5 == 0 ? 9.0 : 1.0);
  const Stored s = store(v, 3, cols, WeightType::f32);
  const Matrix r = s.view.rounded({std::nullopt, q8.index});
  std::vector<float> x(std::size_t(q8.block));
  std::vector<std::uint8_t> code(std::size_t(q8.bytes));
  int moved = 0;
  for (int row = 0; row < 3; ++row)
    for (int b = 0; b < 2; ++b) {
      for (int i = 0; i < q8.block; ++i) x[std::size_t(i)] = float(v[std::size_t(row * cols + b * q8.block + i)]);
      q8.encode(x.data(), code.data(), {});
      for (int i = 0; i < q8.block; ++i) {
        const int c = b * q8.block + i;
        ASSERT_EQ(r.at(row, c), q8.decode_exact(code.data(), i, {})) << row << " " << c;
        moved += r.at(row, c) != double(x[std::size_t(i)]);
      }
    }
  EXPECT_GT(moved, cols);  // the rounding did something
}

}  // namespace
}  // namespace kvfid::ref
