#include "reference/mp/rope.h"

#include <optional>
#include <stdexcept>

#include "reference/mp/ball_arith.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

namespace {

// Llama 3 scaling of one frequency on balls: rope_scaling.h's formula, operation by
// operation in its order, each rounded as MpArith rounds and enclosed by its rule.
class Llama3Scaling {
 public:
  Llama3Scaling(const RopeScaling& s, BallArith& ball, bool radii)
      : s_(s), ball_(ball), lo_(mp_constant(s.low_freq_factor)), hi_(mp_constant(s.high_freq_factor)),
        factor_(mp_constant(s.factor)), one_(mp_constant(1)), v_(4, ball.arith().precision()),
        r_(exact_radii(radii ? 4 : 0)) {
    ball_.pi(at(0));
    ball_.mul_si(at(0), cball(at(0)), 2);  // 2 pi
    ball_.sub(at(1), {hi_[0]}, {lo_[0]});  // hi - lo
  }

  void apply(Ball f) {
    const Ball band = at(2), t = at(3);
    ball_.mul_si(band, cball(f), s_.original_max_positions);  // L f
    ball_.div(band, cball(band), cball(at(0)));               // / (2 pi)
    ball_.sub(band, cball(band), {lo_[0]});                   // - lo
    ball_.div(band, cball(band), cball(at(1)));               // / (hi - lo)
    ball_.clamp01(band, cball(band));                         // s
    ball_.sub(t, {one_[0]}, cball(band));                     // 1 - s
    ball_.mul(t, cball(t), cball(f));                         // (1 - s) f
    ball_.div(t, cball(t), {factor_[0]});                     // / factor
    ball_.mul(f, cball(band), cball(f));                      // s f
    ball_.add(f, cball(t), cball(f));                         // the sum
  }

 private:
  Ball at(int i) { return {v_[i], r_.size() ? r_[i] : nullptr}; }

  const RopeScaling& s_;
  BallArith& ball_;
  MpArray lo_, hi_, factor_, one_;  // lo, hi, factor, 1: exact
  MpArray v_, r_;                   // [4] 2 pi, hi - lo, the band s, a product; and their radii
};

}  // namespace

RopeTable make_rope_table(int tokens, int head_dim, mpfr_srcptr theta, const RopeScaling& scaling, const MpArith& arith,
                          bool radii, int first_position) {
  const int half = head_dim / 2;
  const std::size_t n = std::size_t(tokens) * half;
  RopeTable table{half, MpArray(n, arith.precision()), MpArray(n, arith.precision()), exact_radii(radii ? n : 0),
                  exact_radii(radii ? n : 0)};
  const MpArray d = mp_constant(head_dim);
  MpArray minus_2i(1, kWeightPrecisionBits);  // exact integers
  MpArray scratch(3, arith.precision());
  MpArray scratch_r = exact_radii(radii ? 3 : 0);
  const Ball exponent{scratch[0], radii ? scratch_r[0] : nullptr}, frequency{scratch[1], radii ? scratch_r[1] : nullptr},
      angle{scratch[2], radii ? scratch_r[2] : nullptr};
  BallArith ball(arith);
  std::optional<Llama3Scaling> llama3;
  if (scaling.active()) llama3.emplace(scaling, ball, radii);
  for (int i = 0; i < half; ++i) {
    mpfr_set_si(minus_2i[0], -2 * i, MPFR_RNDN);
    ball.div(exponent, {minus_2i[0]}, {d[0]});
    ball.pow_of_exact(frequency, theta, cball(exponent));
    if (llama3) llama3->apply(frequency);
    for (int t = 0; t < tokens; ++t) {
      const std::size_t at = std::size_t(t) * half + i;
      ball.mul_si(angle, cball(frequency), long(first_position) + t);
      ball.sin(ball_at(table.sin, radii ? &table.sin_radii : nullptr, at), cball(angle));
      ball.cos(ball_at(table.cos, radii ? &table.cos_radii : nullptr, at), cball(angle));
    }
  }
  return table;
}

void apply_rope(MpArray& x, const RopeTable& table, int tokens, int heads, RopeStyle style, const MpArith& arith,
                int threads, MpArray* x_radii) {
  if (x_radii && table.cos_radii.size() != table.cos.size())
    throw std::logic_error("apply_rope: radii tracked but the table has none");
  const int half = table.half, head_dim = 2 * half;
  const bool track = x_radii != nullptr;
  parallel_for(std::int64_t(tokens) * heads, threads, [&](std::int64_t begin, std::int64_t end) {
    BallArith ball(arith);
    MpArray scratch(4, arith.precision());
    MpArray scratch_r = exact_radii(track ? 4 : 0);
    auto tmp = [&](int i) { return Ball{scratch[i], track ? scratch_r[i] : nullptr}; };
    const Ball a_cos = tmp(0), b_sin = tmp(1), a_sin = tmp(2), b_cos = tmp(3);
    const MpArray* cos_r = track ? &table.cos_radii : nullptr;
    const MpArray* sin_r = track ? &table.sin_radii : nullptr;
    for (std::int64_t item = begin; item < end; ++item) {
      const int t = int(item / heads);
      const std::size_t head = std::size_t(item) * head_dim;
      for (int i = 0; i < half; ++i) {
        const bool interleaved = style == RopeStyle::interleaved;
        const Ball a = ball_at(x, x_radii, head + (interleaved ? 2 * i : i));
        const Ball b = ball_at(x, x_radii, head + (interleaved ? 2 * i + 1 : i + half));
        const CBall c = cball_at(table.cos, cos_r, std::size_t(t) * half + i);
        const CBall s = cball_at(table.sin, sin_r, std::size_t(t) * half + i);
        ball.mul(a_cos, cball(a), c);
        ball.mul(b_sin, cball(b), s);
        ball.mul(a_sin, cball(a), s);
        ball.mul(b_cos, cball(b), c);
        ball.sub(a, cball(a_cos), cball(b_sin));
        ball.add(b, cball(a_sin), cball(b_cos));
      }
    }
  });
}

}  // namespace kvfid::ref
