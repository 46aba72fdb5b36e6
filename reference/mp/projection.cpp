#include "reference/mp/projection.h"

#include "reference/mp/mp_parallel.h"

namespace kvfid::ref {

void project(MpArray& out, const MpMatrix& w, const MpArray& x, const MpArray& bias, int tokens, const MpArith& arith,
             int threads) {
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
