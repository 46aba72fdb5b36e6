#include "reference/mp/projection.h"

#include <cmath>
#include <stdexcept>
#include <vector>

#include "reference/mp/enclosure.h"
#include "reference/mp/exact_accumulator.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/scaled_bounds.h"
#include "reference/mp/shards.h"

namespace kvfid::ref {

namespace {

// exact(): each weight row is decoded once from its stored form into float64s (exact)
// and dotted with every token's activations by the exact accumulator, the bias inside the
// same exact sum: each output is W x + b rounded once.
void project_exact(MpArray& out, const Matrix& m, const MpArray& x, const MpArray& bias, int tokens, int threads,
                   ItemRange mine, const MpArray* x_radii, MpArray* out_radii) {
  const int rows = m.rows, cols = m.cols;
  const ScaledBounds x_rad = x_radii ? scaled_magnitudes(*x_radii) : ScaledBounds{};  // [tokens, cols]
  parallel_for(mine.end - mine.begin, threads, [&](std::int64_t begin, std::int64_t end) {
    begin += mine.begin, end += mine.begin;
    std::vector<double> decoded(std::size_t(cols), 0.0);  // [cols] row r as stored (exact float64)
    std::vector<double> magnitude(out_radii ? std::size_t(cols) : 0);  // [cols] |row r|, exact
    ExactAccumulator acc;
    Enclosure enclosure;
    MpArray tmp = exact_radii(1);
    for (std::int64_t r = begin; r < end; ++r) {
      m.decode_row(int(r), decoded.data());
      for (std::size_t j = 0; j < magnitude.size(); ++j) magnitude[j] = std::fabs(decoded[j]);
      for (int t = 0; t < tokens; ++t) {
        const std::size_t at = std::size_t(t) * std::size_t(rows) + std::size_t(r);
        const int ternary = exact_dot(out[at], decoded.data(), x[std::size_t(t) * std::size_t(cols)], std::size_t(cols),
                                      acc, bias.size() ? bias[std::size_t(r)] : nullptr);
        if (!out_radii) continue;
        mpfr_ptr radius = (*out_radii)[at];
        mpfr_set_zero(radius, 1);
        if (x_radii)
          add_sum_bound(radius, magnitude.data(), 1, x_rad.d.data() + std::size_t(t) * std::size_t(cols), 1, cols,
                        x_rad.scale, tmp[0]);
        enclosure.add_rounding(radius, out[at], ternary);
      }
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
             int threads, Shards* shards, const MpArray* x_radii, MpArray* out_radii) {
  if (out_radii && arith.format()) throw std::logic_error("project: radii are tracked in exact arithmetic only");
  const std::int64_t rows = w.matrix.rows;
  // Under shards this rank computes a block of output rows (and so reads only those rows
  // of W), then every token's row blocks are exchanged.
  const ItemRange mine = shards ? share_of(rows, shards->rank(), shards->ranks()) : ItemRange{0, rows};
  if (arith.format())
    project_ieee(out, w, x, bias, tokens, arith, threads, mine);
  else
    project_exact(out, w.matrix, x, bias, tokens, threads, mine, x_radii, out_radii);
  if (!shards) return;
  auto runs_of = [&](int rank) {
    const ItemRange r = share_of(rows, rank, shards->ranks());
    std::vector<ElementRun> runs;  // [tokens] one block of rows per token
    for (int t = 0; t < tokens; ++t)
      runs.push_back({std::size_t(t) * std::size_t(rows) + std::size_t(r.begin), std::size_t(r.end - r.begin)});
    return runs;
  };
  shards->exchange(out, runs_of);
  if (out_radii) shards->exchange(*out_radii, runs_of);
}

}  // namespace kvfid::ref
