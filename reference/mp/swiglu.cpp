#include "reference/mp/swiglu.h"

#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

void swiglu_in_place(MpArray& gate, const MpArray& up, const MpArith& arith, int threads) {
  const MpArray one = mp_constant(1.0);
  parallel_for(std::int64_t(gate.size()), threads, [&](std::int64_t begin, std::int64_t end) {
    MpArray scratch(1, arith.precision());
    mpfr_ptr denominator = scratch[0];
    for (std::int64_t i = begin; i < end; ++i) {
      mpfr_ptr z = gate[i];
      mpfr_neg(denominator, z, MPFR_RNDN);  // exact
      arith.exp(denominator, denominator);
      arith.add(denominator, denominator, one[0]);
      arith.div(z, z, denominator);
      arith.mul(z, z, up[i]);
    }
  });
}

}  // namespace kvfid::ref
