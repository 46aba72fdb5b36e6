#include "reference/mp/projection.h"

#include <vector>

#include "reference/mp/exact_accumulator.h"
#include "reference/mp/mp_parallel.h"

namespace kvfid::ref {

namespace {

// exact(): each weight row is decoded once from its stored form into float64s (exact)
// and dotted with every token's activations by the exact accumulator, the bias inside the
// same exact sum: each output is W x + b rounded once.
void project_exact(MpArray& out, const Matrix& m, const MpArray& x, const MpArray& bias, int tokens, int threads) {
  const int rows = m.rows, cols = m.cols;
  parallel_for(rows, threads, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> decoded(std::size_t(cols), 0.0);  // [cols] row r as stored (exact float64)
    ExactAccumulator acc;
    for (std::int64_t r = begin; r < end; ++r) {
      m.decode_row(int(r), decoded.data());
      for (int t = 0; t < tokens; ++t)
        exact_dot(out[std::size_t(t) * std::size_t(rows) + std::size_t(r)], decoded.data(),
                  x[std::size_t(t) * std::size_t(cols)], std::size_t(cols), acc, bias.size() ? bias[std::size_t(r)] : nullptr);
    }
  });
}

}  // namespace

void project(MpArray& out, MpMatrixRef w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
             int threads) {
  if (!arith.format()) return project_exact(out, w.matrix, x, bias, tokens, threads);
  const Matrix& m = w.matrix;
  const int rows = m.rows, cols = m.cols;
  parallel_for(rows, threads, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> decoded(std::size_t(cols), 0.0);  // [cols] row r as stored (exact float64)
    MpArray row(std::size_t(cols), w.precision);           // [cols] the same values in MPFR
    MpArray product(1, arith.precision());                 // scratch for the ieee dot
    for (std::int64_t r = begin; r < end; ++r) {
      m.decode_row(int(r), decoded.data());
      for (int j = 0; j < cols; ++j) mpfr_set_d(row[std::size_t(j)], decoded[std::size_t(j)], MPFR_RNDN);  // exact
      for (int t = 0; t < tokens; ++t) {
        mpfr_ptr y = out[std::size_t(t) * std::size_t(rows) + std::size_t(r)];
        arith.dot(y, row[0], 1, x[std::size_t(t) * std::size_t(cols)], 1, cols, product[0]);
        if (bias.size()) arith.add(y, y, bias[std::size_t(r)]);
      }
    }
  });
}

}  // namespace kvfid::ref
