#include "reference/mp/swiglu.h"

#include "reference/mp/ball_arith.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

void swiglu_in_place(MpArray& gate, const MpArray& up, const MpArith& arith, int threads, MpArray* gate_radii,
                     const MpArray* up_radii) {
  const MpArray one = mp_constant(1.0);
  const bool track = gate_radii != nullptr;
  parallel_for(std::int64_t(gate.size()), threads, [&](std::int64_t begin, std::int64_t end) {
    BallArith ball(arith);
    MpArray scratch(1, arith.precision());
    MpArray scratch_r = exact_radii(track ? 1 : 0);
    const Ball denominator{scratch[0], track ? scratch_r[0] : nullptr};
    for (std::int64_t i = begin; i < end; ++i) {
      const Ball z = ball_at(gate, gate_radii, std::size_t(i));
      mpfr_neg(denominator.m, z.m, MPFR_RNDN);  // exact, and so is its radius
      if (track) mpfr_set(denominator.r, z.r, MPFR_RNDU);
      ball.exp(denominator, cball(denominator));
      ball.add(denominator, cball(denominator), {one[0]});
      ball.div(z, cball(z), cball(denominator));
      ball.mul(z, cball(z), cball_at(up, up_radii, std::size_t(i)));
    }
  });
}

}  // namespace kvfid::ref
