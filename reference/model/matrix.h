#pragma once
// A weight matrix as the model file stores it: a typed view of its elements (F32, F16
// or BF16 in a memory-mapped file, or float64 owned in memory for synthetic models),
// decoded exactly to float64 where it is used. F32, F16 and BF16 all embed in float64
// exactly, so a decoded value is the stored value, bit for bit, and nothing holds the
// model twice: copying a Matrix copies the view and shares the storage.
//
// A view may also remap rows (llama2.c's interleaved RoPE turned into rotate-half is a
// row permutation) and round every element to an engine's weight storage on decode
// (reference/model/weight_storage.h), so the model an engine runs is the same bytes
// read differently rather than a second copy.
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <vector>

#include "reference/formats/float_format.h"

namespace kvfid::ref {

enum class WeightType { f64, f32, f16, bf16 };

std::size_t weight_type_bytes(WeightType t);
// The stored type whose elements are exactly the plain float format's.
WeightType weight_type_of(FloatFormat f);

// The rounding an engine's weight storage applies to each stored element: to a plain
// float format (round to nearest even), or through a block format of the quantized
// registry (each row's blocks encoded from the elements rounded to FP32, then decoded
// exactly). Neither set: the stored values themselves.
struct ElementRounding {
  std::optional<FloatFormat> plain;
  int codec = -1;  // index in quant::all_formats()
  bool any() const { return plain || codec >= 0; }
};

// Row-major [rows, cols]; a projection computes y = W x, so rows = out, cols = in.
class Matrix {
 public:
  int rows = 0;
  int cols = 0;

  Matrix() = default;
  // Zeros owned as float64, writable through element() (synthetic models, tests).
  Matrix(int rows, int cols);
  // Elements [rows, cols] of `type`, row-major and little-endian at `data`, which
  // `owner` keeps alive (a file mapping, say).
  static Matrix view(int rows, int cols, WeightType type, const std::uint8_t* data, std::shared_ptr<const void> owner);
  // Rows of blocks of a block format of the quantized registry (a GGUF file's Q8_0 and
  // Q4_0 tensors: ggml's layout, [rows, cols / block] blocks), decoded exactly
  // (decode_exact) where used. cols must be a multiple of the block. Their values are
  // binary32 values, so stored_type() says f32; they are never plain views (their bytes
  // are blocks, not elements).
  static Matrix blocks_view(int rows, int cols, int codec, const std::uint8_t* data, std::shared_ptr<const void> owner);

  WeightType stored_type() const { return type_; }
  const ElementRounding& rounding() const { return rounding_; }
  // True when this reads its elements exactly as stored: no row remap, no rounding, and
  // elements rather than blocks.
  bool plain_view() const { return !row_map_ && !rounding_.any() && block_codec_ < 0; }
  // The stored bytes of row r ([cols] elements of stored_type()); plain_view() only.
  const std::uint8_t* stored_row(int r) const;
  // All stored bytes, row-major [rows, cols] elements of stored_type(), and what keeps
  // them alive (the file mapping, or the owned float64 storage): a consumer that reads
  // the elements as stored borrows them instead of copying. plain_view() only.
  std::span<const std::uint8_t> stored_bytes() const;
  std::shared_ptr<const void> storage_owner() const;

  double at(int r, int c) const;
  // out: [cols], the exact values of row r.
  void decode_row(int r, double* out) const;
  // Every value, row-major [rows * cols]: a decoded copy, for tests and small models.
  std::vector<double> values() const;

  // Writable float64 storage [rows * cols]; a view (or storage shared with another
  // Matrix) is first copied into storage of its own, so writes never reach a file or
  // another matrix.
  std::span<double> mutable_values();
  double& element(int r, int c) { return mutable_values()[std::size_t(r) * cols + c]; }

  // Row r of the result is row source_row[r] of this one (same storage, no copy).
  Matrix with_rows(std::vector<int> source_row) const;
  // The same storage read through `rounding` (a view that already rounds is decoded
  // into float64 first: rounding twice is rare and small).
  Matrix rounded(const ElementRounding& rounding) const;

  // Same storage, row order and rounding: the same matrix without comparing values.
  bool same_view(const Matrix& other) const;

 private:
  double stored(std::size_t row, int c) const;  // element of storage row `row`
  void decode_stored_row(std::size_t row, double* out) const;
  std::size_t storage_row(int r) const { return row_map_ ? std::size_t((*row_map_)[std::size_t(r)]) : std::size_t(r); }

  WeightType type_ = WeightType::f64;
  const std::uint8_t* data_ = nullptr;                  // [rows, cols] elements of type_
  std::shared_ptr<const void> owner_;                   // keeps data_ alive (a view)
  std::shared_ptr<std::vector<double>> owned_;          // or holds it (owned float64)
  std::shared_ptr<const std::vector<int>> row_map_;     // [rows] storage row of each row; null: identity
  ElementRounding rounding_;
  int block_codec_ = -1;                                 // >= 0: data_ holds blocks of this registry format
};

// Every value equal (same_view first, so a tied classifier costs nothing).
bool same_values(const Matrix& a, const Matrix& b);

}  // namespace kvfid::ref
