#include "reference/mp/rope.h"

#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

RopeTable make_rope_table(int tokens, int head_dim, mpfr_srcptr theta, const MpArith& arith) {
  const int half = head_dim / 2;
  RopeTable table{half, MpArray(std::size_t(tokens) * half, arith.precision()),
                  MpArray(std::size_t(tokens) * half, arith.precision())};
  const MpArray d = mp_constant(head_dim);
  MpArray minus_2i(1, kWeightPrecisionBits);  // exact integers
  MpArray scratch(2, arith.precision());
  mpfr_ptr exponent = scratch[0], frequency = scratch[1];
  for (int i = 0; i < half; ++i) {
    mpfr_set_si(minus_2i[0], -2 * i, MPFR_RNDN);
    arith.div(exponent, minus_2i[0], d[0]);
    arith.pow(frequency, theta, exponent);
    for (int t = 0; t < tokens; ++t) {
      const std::size_t at = std::size_t(t) * half + i;
      mpfr_ptr angle = table.cos[at];  // reused: sin consumes the angle before cos overwrites it
      arith.finish(angle, mpfr_mul_si(angle, frequency, t, MPFR_RNDN));
      arith.sin(table.sin[at], angle);
      arith.cos(table.cos[at], angle);
    }
  }
  return table;
}

void apply_rope(MpArray& x, const RopeTable& table, int tokens, int heads, RopeStyle style, const MpArith& arith,
                int threads) {
  const int half = table.half, head_dim = 2 * half;
  parallel_for(std::int64_t(tokens) * heads, threads, [&](std::int64_t begin, std::int64_t end) {
    MpArray scratch(4, arith.precision());
    mpfr_ptr a_cos = scratch[0], b_sin = scratch[1], a_sin = scratch[2], b_cos = scratch[3];
    for (std::int64_t item = begin; item < end; ++item) {
      const int t = int(item / heads);
      const std::size_t head = std::size_t(item) * head_dim;
      for (int i = 0; i < half; ++i) {
        const bool interleaved = style == RopeStyle::interleaved;
        mpfr_ptr a = x[head + (interleaved ? 2 * i : i)];
        mpfr_ptr b = x[head + (interleaved ? 2 * i + 1 : i + half)];
        mpfr_srcptr c = table.cos[std::size_t(t) * half + i];
        mpfr_srcptr s = table.sin[std::size_t(t) * half + i];
        arith.mul(a_cos, a, c);
        arith.mul(b_sin, b, s);
        arith.mul(a_sin, a, s);
        arith.mul(b_cos, b, c);
        arith.sub(a, a_cos, b_sin);
        arith.add(b, a_sin, b_cos);
      }
    }
  });
}

}  // namespace kvfid::ref
