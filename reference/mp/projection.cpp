#include "reference/mp/projection.h"

#include <vector>

#include "reference/mp/exact_accumulator.h"
#include "reference/mp/mp_parallel.h"

namespace kvfid::ref {

namespace {

// exact(): each weight row is read once as float64s (the values MpWeights holds exactly)
// and dotted with every token's activations by the exact accumulator, the bias inside the
// same exact sum: each output is W x + b rounded once.
void project_exact(MpArray& out, const MpMatrix& w, const MpArray& x, const MpArray& bias, int tokens,
                   int threads) {
  parallel_for(w.rows, threads, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> row(std::size_t(w.cols));  // [cols]
    ExactAccumulator acc;
    for (std::int64_t r = begin; r < end; ++r) {
      mpfr_srcptr wr = w.row(int(r));
      for (int c = 0; c < w.cols; ++c) row[std::size_t(c)] = mpfr_get_d(wr + c, MPFR_RNDN);  // exact: a float64
      for (int t = 0; t < tokens; ++t) {
        exact_dot(out[std::size_t(t) * w.rows + std::size_t(r)], row.data(), x[std::size_t(t) * w.cols],
                  std::size_t(w.cols), acc, bias.size() ? bias[std::size_t(r)] : nullptr);
      }
    }
  });
}

}  // namespace

void project(MpArray& out, const MpMatrix& w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
             int threads) {
  if (!arith.format()) return project_exact(out, w, x, bias, tokens, threads);
  parallel_for(std::int64_t(tokens) * w.rows, threads, [&](std::int64_t begin, std::int64_t end) {
    MpArray product(1, arith.precision());  // scratch for the ieee dot
    for (std::int64_t i = begin; i < end; ++i) {
      const int t = int(i / w.rows), r = int(i % w.rows);
      mpfr_ptr y = out[i];
      arith.dot(y, w.row(r), 1, x[std::size_t(t) * w.cols], 1, w.cols, product[0]);
      if (bias.size()) arith.add(y, y, bias[r]);
    }
  });
}

}  // namespace kvfid::ref
