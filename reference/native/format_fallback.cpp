// The few operations format_arith.h cannot prove natively, computed by the emulation's
// own MpArith::ieee (its semantics by construction). Operands are float64 held exactly.
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/native/format_arith.h"

namespace kvfid::ref::native {

namespace {

template <class Op>
float through_mpfr(FloatFormat f, double a, double b, Op op) {
  const MpArith arith = MpArith::ieee(f);
  MpArray v(2, 53);
  mpfr_set_d(v[0], a, MPFR_RNDN);  // exact: 53 bits
  mpfr_set_d(v[1], b, MPFR_RNDN);
  MpArray r(1, arith.precision());
  op(arith, r[0], v[0], v[1]);
  return mpfr_get_flt(r[0], MPFR_RNDN);  // exact: the format embeds in binary32
}

}  // namespace

float mpfr_mul(FloatFormat f, double a, double b) {
  return through_mpfr(f, a, b, [](const MpArith& m, mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr y) { m.mul(r, x, y); });
}

float mpfr_div(FloatFormat f, double a, double b) {
  return through_mpfr(f, a, b, [](const MpArith& m, mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr y) { m.div(r, x, y); });
}

float mpfr_exp(FloatFormat f, float a) {
  return through_mpfr(f, a, 0, [](const MpArith& m, mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { m.exp(r, x); });
}

float mpfr_tanh(FloatFormat f, float a) {
  return through_mpfr(f, a, 0, [](const MpArith& m, mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { m.tanh(r, x); });
}

}  // namespace kvfid::ref::native
