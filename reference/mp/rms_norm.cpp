#include "reference/mp/rms_norm.h"

#include "reference/mp/ball_arith.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

void rms_norm(MpArray& out, const MpArray& x, const MpArray& weight, mpfr_srcptr eps, int tokens, const MpArith& arith,
              int threads, const MpArray* x_radii, MpArray* out_radii) {
  const int dim = int(weight.size());
  const MpArray n = mp_constant(dim);
  const bool track = out_radii != nullptr;
  parallel_for(tokens, threads, [&](std::int64_t begin, std::int64_t end) {
    BallArith ball(arith);
    MpArray scratch(2, arith.precision());
    MpArray scratch_r = exact_radii(track ? 3 : 0);
    const Ball rms{scratch[0], track ? scratch_r[0] : nullptr};
    mpfr_ptr product = scratch[1];
    for (std::int64_t t = begin; t < end; ++t) {
      const std::size_t row = std::size_t(t) * dim;
      const int ternary = arith.dot(rms.m, x[row], 1, x[row], 1, dim, product);  // sum of squares
      if (track) {
        // Each term x_i * x_i by the product rule: 2 |x_i| r_i + r_i^2.
        mpfr_set_zero(rms.r, 1);
        if (x_radii)
          for (int i = 0; i < dim; ++i) {
            ball.enclosure().mul(scratch_r[1], x[row + i], (*x_radii)[row + i], x[row + i], (*x_radii)[row + i], x[row + i], 0);
            mpfr_add(rms.r, rms.r, scratch_r[1], MPFR_RNDU);
          }
        ball.enclosure().add_rounding(rms.r, rms.m, ternary);
      }
      ball.div(rms, cball(rms), {n[0]});
      ball.add(rms, cball(rms), {eps});
      ball.sqrt(rms, cball(rms));
      for (int i = 0; i < dim; ++i) {
        const Ball o = ball_at(out, out_radii, row + i);
        ball.div(o, cball_at(x, x_radii, row + i), cball(rms));
        ball.mul(o, cball(o), {weight[i]});
      }
    }
  });
}

}  // namespace kvfid::ref
