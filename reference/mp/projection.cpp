#include "reference/mp/projection.h"

#include <vector>

#include "reference/mp/exact_accumulator.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/shards.h"

namespace kvfid::ref {

namespace {

// exact(): each weight row is decoded once from its stored form into float64s (exact)
// and dotted with every token's activations by the exact accumulator, the bias inside the
// same exact sum: each output is W x + b rounded once.
void project_exact(MpArray& out, const Matrix& m, const MpArray& x, const MpArray& bias, int tokens, int threads,
                   ItemRange mine) {
  const int rows = m.rows, cols = m.cols;
  parallel_for(mine.end - mine.begin, threads, [&](std::int64_t begin, std::int64_t end) {
    begin += mine.begin, end += mine.begin;
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

void project_ieee(MpArray& out, MpMatrixRef w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
                  int threads, ItemRange mine) {
  const Matrix& m = w.matrix;
  const int rows = m.rows, cols = m.cols;
  parallel_for(mine.end - mine.begin, threads, [&](std::int64_t begin, std::int64_t end) {
    begin += mine.begin, end += mine.begin;
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

}  // namespace

void project(MpArray& out, MpMatrixRef w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
             int threads, Shards* shards) {
  const std::int64_t rows = w.matrix.rows;
  // Under shards this rank computes a block of output rows (and so reads only those rows
  // of W), then every token's row blocks are exchanged.
  const ItemRange mine = shards ? share_of(rows, shards->rank(), shards->ranks()) : ItemRange{0, rows};
  if (arith.format())
    project_ieee(out, w, x, bias, tokens, arith, threads, mine);
  else
    project_exact(out, w.matrix, x, bias, tokens, threads, mine);
  if (!shards) return;
  shards->exchange(out, [&](int rank) {
    const ItemRange r = share_of(rows, rank, shards->ranks());
    std::vector<ElementRun> runs;  // [tokens] one block of rows per token
    for (int t = 0; t < tokens; ++t)
      runs.push_back({std::size_t(t) * std::size_t(rows) + std::size_t(r.begin), std::size_t(r.end - r.begin)});
    return runs;
  });
}

}  // namespace kvfid::ref
