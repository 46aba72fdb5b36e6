#pragma once
// The float64 forwards multiply by a weight matrix a block of rows at a time, each block
// decoded from the stored view (reference/model/matrix.h) into a dense float64 buffer of
// at most kWeightBlockBytes: a large matrix (a real vocabulary's classifier) is never
// decoded whole. A matrix that fits is one block, the same product as before views.
#include <algorithm>
#include <cstddef>

#include "reference/f64/forward_trace.h"
#include "reference/model/matrix.h"

namespace kvfid::ref {

// 32 MiB: a few hidden x dim matrices of a 0.5B model decode at once, a 151936-row
// classifier in 37 blocks of 4681 rows.
inline constexpr std::size_t kWeightBlockBytes = std::size_t(32) << 20;

// Calls fn(first_row, block) for consecutive blocks covering w's rows; block is
// RowMatrix<double> [rows_in_block, w.cols] holding the exact values.
template <class Fn>
void for_each_weight_block(const Matrix& w, Fn&& fn) {
  const std::size_t row_bytes = std::max<std::size_t>(1, std::size_t(w.cols) * sizeof(double));
  const int step = int(std::clamp<std::size_t>(kWeightBlockBytes / row_bytes, 1, std::size_t(std::max(w.rows, 1))));
  RowMatrix<double> block;
  for (int first = 0; first < w.rows; first += step) {
    const int n = std::min(step, w.rows - first);
    block.resize(n, w.cols);  // [n, cols]
    for (int r = 0; r < n; ++r) w.decode_row(first + r, block.data() + std::size_t(r) * std::size_t(w.cols));
    fn(first, static_cast<const RowMatrix<double>&>(block));
  }
}

}  // namespace kvfid::ref
