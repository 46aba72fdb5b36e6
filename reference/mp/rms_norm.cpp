#include "reference/mp/rms_norm.h"

#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

void rms_norm(MpArray& out, const MpArray& x, const MpArray& weight, mpfr_srcptr eps, int tokens, const MpArith& arith,
              int threads) {
  const int dim = int(weight.size());
  const MpArray n = mp_constant(dim);
  parallel_for(tokens, threads, [&](std::int64_t begin, std::int64_t end) {
    MpArray scratch(2, arith.precision());
    mpfr_ptr rms = scratch[0], product = scratch[1];
    for (std::int64_t t = begin; t < end; ++t) {
      const std::size_t row = std::size_t(t) * dim;
      arith.dot(rms, x[row], 1, x[row], 1, dim, product);  // sum of squares
      arith.div(rms, rms, n[0]);
      arith.add(rms, rms, eps);
      arith.sqrt(rms, rms);
      for (int i = 0; i < dim; ++i) {
        arith.div(out[row + i], x[row + i], rms);
        arith.mul(out[row + i], out[row + i], weight[i]);
      }
    }
  });
}

}  // namespace kvfid::ref
