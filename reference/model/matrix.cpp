#include "reference/model/matrix.h"

#include <bit>
#include <cstring>
#include <stdexcept>

#include "reference/formats/minifloat.h"
#include "reference/formats/quant/registry.h"

static_assert(std::endian::native == std::endian::little, "stored weights are read in place as little-endian");

namespace kvfid::ref {

namespace {

template <class T>
T load(const std::uint8_t* p) {
  T v;
  std::memcpy(&v, p, sizeof(T));
  return v;
}

// BF16 is the top half of a binary32: widening it is exact (NaN, Inf and subnormals
// included), and so is binary32 -> float64.
double bf16_value(std::uint16_t bits) { return double(std::bit_cast<float>(std::uint32_t(bits) << 16)); }

}  // namespace

std::size_t weight_type_bytes(WeightType t) {
  switch (t) {
    case WeightType::f64: return 8;
    case WeightType::f32: return 4;
    case WeightType::f16:
    case WeightType::bf16: return 2;
  }
  throw std::logic_error("unknown weight type");
}

WeightType weight_type_of(FloatFormat f) {
  switch (f) {
    case FloatFormat::f32: return WeightType::f32;
    case FloatFormat::f16: return WeightType::f16;
    case FloatFormat::bf16: return WeightType::bf16;
  }
  throw std::logic_error("unknown float format");
}

Matrix::Matrix(int r, int c)
    : rows(r), cols(c), owned_(std::make_shared<std::vector<double>>(std::size_t(r) * std::size_t(c), 0.0)) {
  data_ = reinterpret_cast<const std::uint8_t*>(owned_->data());
}

Matrix Matrix::view(int rows, int cols, WeightType type, const std::uint8_t* data, std::shared_ptr<const void> owner) {
  Matrix m;
  m.rows = rows, m.cols = cols, m.type_ = type, m.data_ = data, m.owner_ = std::move(owner);
  return m;
}

Matrix Matrix::blocks_view(int rows, int cols, int codec, const std::uint8_t* data, std::shared_ptr<const void> owner) {
  const quant::FormatInfo& f = quant::all_formats().at(std::size_t(codec));
  if (cols % f.block != 0) throw std::logic_error("Matrix::blocks_view: columns not a multiple of the block");
  Matrix m = view(rows, cols, WeightType::f32, data, std::move(owner));
  m.block_codec_ = codec;
  return m;
}

const std::uint8_t* Matrix::stored_row(int r) const {
  if (!plain_view()) throw std::logic_error("Matrix::stored_row: the view remaps or rounds its rows");
  return data_ + std::size_t(r) * std::size_t(cols) * weight_type_bytes(type_);
}

std::span<const std::uint8_t> Matrix::stored_bytes() const {
  if (!plain_view()) throw std::logic_error("Matrix::stored_bytes: the view remaps or rounds its rows");
  return {data_, std::size_t(rows) * std::size_t(cols) * weight_type_bytes(type_)};
}

std::shared_ptr<const void> Matrix::storage_owner() const {
  if (owner_) return owner_;
  return owned_;
}

double Matrix::stored(std::size_t row, int c) const {
  if (block_codec_ >= 0) {
    const quant::FormatInfo& f = quant::all_formats()[std::size_t(block_codec_)];
    const std::size_t blocks_per_row = std::size_t(cols / f.block);
    const std::uint8_t* block = data_ + (row * blocks_per_row + std::size_t(c / f.block)) * std::size_t(f.bytes);
    return f.decode_exact(block, c % f.block, quant::CodecParams{});
  }
  const std::size_t i = row * std::size_t(cols) + std::size_t(c);
  switch (type_) {
    case WeightType::f64: return load<double>(data_ + 8 * i);
    case WeightType::f32: return load<float>(data_ + 4 * i);
    case WeightType::f16: return f16_to_double(load<std::uint16_t>(data_ + 2 * i));
    case WeightType::bf16: return bf16_value(load<std::uint16_t>(data_ + 2 * i));
  }
  throw std::logic_error("unknown weight type");
}

void Matrix::decode_stored_row(std::size_t row, double* out) const {
  if (block_codec_ >= 0) {
    const quant::FormatInfo& f = quant::all_formats()[std::size_t(block_codec_)];
    const std::uint8_t* block = data_ + row * std::size_t(cols / f.block) * std::size_t(f.bytes);
    const quant::CodecParams params;
    for (int b = 0; b < cols; b += f.block, block += f.bytes)
      for (int i = 0; i < f.block; ++i) out[b + i] = f.decode_exact(block, i, params);
    return;
  }
  const std::uint8_t* p = data_ + row * std::size_t(cols) * weight_type_bytes(type_);
  switch (type_) {
    case WeightType::f64: std::memcpy(out, p, std::size_t(cols) * 8); return;
    case WeightType::f32:
      for (int c = 0; c < cols; ++c) out[c] = load<float>(p + 4 * std::size_t(c));
      return;
    case WeightType::f16:
      for (int c = 0; c < cols; ++c) out[c] = f16_to_double(load<std::uint16_t>(p + 2 * std::size_t(c)));
      return;
    case WeightType::bf16:
      for (int c = 0; c < cols; ++c) out[c] = bf16_value(load<std::uint16_t>(p + 2 * std::size_t(c)));
      return;
  }
}

void Matrix::decode_row(int r, double* out) const {
  decode_stored_row(storage_row(r), out);
  if (rounding_.plain) {
    for (int c = 0; c < cols; ++c) out[c] = round_to_format(out[c], *rounding_.plain);
  } else if (rounding_.codec >= 0) {
    // As ggml quantizes an F32 tensor: each block from its elements rounded to FP32,
    // default CodecParams; the decode is the block's exact value (decode_exact).
    const quant::FormatInfo& f = quant::all_formats()[std::size_t(rounding_.codec)];
    std::vector<float> x(std::size_t(f.block));          // [block]
    std::vector<std::uint8_t> code(std::size_t(f.bytes));  // one block
    const quant::CodecParams params;
    for (int b = 0; b + f.block <= cols; b += f.block) {
      for (int i = 0; i < f.block; ++i) x[std::size_t(i)] = float(out[b + i]);  // RN to FP32
      f.encode(x.data(), code.data(), params);
      for (int i = 0; i < f.block; ++i) out[b + i] = f.decode_exact(code.data(), i, params);
    }
  }
}

double Matrix::at(int r, int c) const {
  if (!rounding_.any()) return stored(storage_row(r), c);
  if (rounding_.plain) return round_to_format(stored(storage_row(r), c), *rounding_.plain);
  std::vector<double> row(static_cast<std::size_t>(cols));  // a block format rounds whole blocks
  decode_row(r, row.data());
  return row[std::size_t(c)];
}

std::vector<double> Matrix::values() const {
  std::vector<double> v(std::size_t(rows) * std::size_t(cols));  // [rows, cols]
  for (int r = 0; r < rows; ++r) decode_row(r, v.data() + std::size_t(r) * std::size_t(cols));
  return v;
}

std::span<double> Matrix::mutable_values() {
  if (!(owned_ && owned_.use_count() == 1 && plain_view())) {
    auto own = std::make_shared<std::vector<double>>(values());
    const int r = rows, c = cols;
    *this = Matrix();
    rows = r, cols = c, owned_ = std::move(own);
    data_ = reinterpret_cast<const std::uint8_t*>(owned_->data());
  }
  return {owned_->data(), owned_->size()};
}

Matrix Matrix::with_rows(std::vector<int> source_row) const {
  if (int(source_row.size()) != rows) throw std::logic_error("Matrix::with_rows: one source row per row");
  for (int& s : source_row) {
    if (s < 0 || s >= rows) throw std::logic_error("Matrix::with_rows: source row out of range");
    s = int(storage_row(s));
  }
  Matrix m = *this;
  m.row_map_ = std::make_shared<const std::vector<int>>(std::move(source_row));
  return m;
}

Matrix Matrix::rounded(const ElementRounding& rounding) const {
  Matrix m = *this;
  if (rounding_.any()) {
    m = Matrix(rows, cols);
    const std::vector<double> v = values();
    std::copy(v.begin(), v.end(), m.mutable_values().begin());
  }
  m.rounding_ = rounding;
  return m;
}

bool Matrix::same_view(const Matrix& o) const {
  return rows == o.rows && cols == o.cols && type_ == o.type_ && block_codec_ == o.block_codec_ && data_ == o.data_ &&
         row_map_ == o.row_map_ &&
         rounding_.plain == o.rounding_.plain && rounding_.codec == o.rounding_.codec;
}

bool same_values(const Matrix& a, const Matrix& b) {
  if (a.same_view(b)) return true;
  if (a.rows != b.rows || a.cols != b.cols) return false;
  std::vector<double> x(std::size_t(a.cols)), y(std::size_t(a.cols));  // [cols] each
  for (int r = 0; r < a.rows; ++r) {
    a.decode_row(r, x.data());
    b.decode_row(r, y.data());
    if (x != y) return false;
  }
  return true;
}

}  // namespace kvfid::ref
