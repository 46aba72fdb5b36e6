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

void gelu_tanh_constants(BallArith& ball, Ball c, Ball a) {
  const MpArray two = mp_constant(2.0);
  ball.pi(c);
  ball.div(c, {two[0]}, cball(c));
  ball.sqrt(c, cball(c));
  ball.decimal(a, "0.044715");
}

namespace {

// gate <- gelu_tanh(gate) * up, in swiglu.h's order.
void geglu_in_place(MpArray& gate, const MpArray& up, const MpArith& arith, int threads, MpArray* gate_radii,
                    const MpArray* up_radii) {
  const MpArray one = mp_constant(1.0), half = mp_constant(0.5);
  const bool track = gate_radii != nullptr;
  parallel_for(std::int64_t(gate.size()), threads, [&](std::int64_t begin, std::int64_t end) {
    BallArith ball(arith);
    MpArray scratch(4, arith.precision());  // C, A, z^3 and the tanh term
    MpArray scratch_r = exact_radii(track ? 4 : 0);
    auto at = [&](int i) { return Ball{scratch[std::size_t(i)], track ? scratch_r[std::size_t(i)] : nullptr}; };
    const Ball c = at(0), a = at(1), cube = at(2), term = at(3);
    gelu_tanh_constants(ball, c, a);
    for (std::int64_t i = begin; i < end; ++i) {
      const Ball z = ball_at(gate, gate_radii, std::size_t(i));
      ball.mul(cube, cball(z), cball(z));
      ball.mul(cube, cball(cube), cball(z));
      ball.mul(term, cball(a), cball(cube));
      ball.add(term, cball(z), cball(term));
      ball.mul(term, cball(c), cball(term));
      ball.tanh(term, cball(term));
      ball.add(term, {one[0]}, cball(term));
      ball.mul(z, {half[0]}, cball(z));
      ball.mul(z, cball(z), cball(term));
      ball.mul(z, cball(z), cball_at(up, up_radii, std::size_t(i)));
    }
  });
}

}  // namespace

void gated_in_place(Activation activation, MpArray& gate, const MpArray& up, const MpArith& arith, int threads,
                    MpArray* gate_radii, const MpArray* up_radii) {
  if (activation == Activation::silu) swiglu_in_place(gate, up, arith, threads, gate_radii, up_radii);
  else geglu_in_place(gate, up, arith, threads, gate_radii, up_radii);
}

}  // namespace kvfid::ref
