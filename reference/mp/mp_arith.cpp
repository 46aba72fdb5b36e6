#include "reference/mp/mp_arith.h"

#include "reference/formats/minifloat.h"
#include "reference/mp/exact_accumulator.h"

namespace kvfid::ref {

ExponentRangeScope::ExponentRangeScope() : saved_emin_(mpfr_get_emin()), saved_emax_(mpfr_get_emax()) {
  mpfr_set_emin(mpfr_get_emin_min());
  mpfr_set_emax(mpfr_get_emax_max());
}

ExponentRangeScope::~ExponentRangeScope() {
  mpfr_set_emin(saved_emin_);
  mpfr_set_emax(saved_emax_);
}

MpArith MpArith::exact(mpfr_prec_t precision_bits) {
  return MpArith(precision_bits, std::nullopt, mpfr_get_emin_min(), mpfr_get_emax_max());
}

MpArith MpArith::ieee(FloatFormat format) {
  // A format with `man` stored bits and bias b: largest finite < 2^(b+1), so emax = b+1;
  // smallest subnormal 2^(1-b-man) = 0.5 * 2^(2-b-man), so emin = 2-b-man (for binary32:
  // emin -148, emax 128, as in MPFR's manual).
  const int man = significand_bits(format) - 1;
  const int bias = format == FloatFormat::f16 ? kFp16.bias() : kBf16.bias();  // bf16 shares binary32's exponent
  return MpArith(man + 1, format, 2 - bias - man, bias + 1);
}

int MpArith::dot(mpfr_ptr out, std::initializer_list<DotTerms> runs, mpfr_ptr product) const {
  if (!format_) {
    thread_local ExactAccumulator acc;  // one per thread: its limbs are reused by every dot
    acc.clear();
    for (const DotTerms& r : runs)
      for (int j = 0; j < r.n; ++j) acc.add(r.a + j * r.a_stride, r.b + j * r.b_stride);
    return acc.round_to(out, MPFR_RNDN);
  }
  mpfr_set_zero(out, 1);
  for (const DotTerms& r : runs)
    for (int j = 0; j < r.n; ++j) {
      mul(product, r.a + j * r.a_stride, r.b + j * r.b_stride);
      add(out, out, product);
    }
  return 0;
}

void MpArith::round_into_format(mpfr_ptr r, int ternary) const {
  // The operation rounded to the format's precision in the wide range; now bring the
  // result into the format's range: overflow to Inf, then the subnormal grid. Both
  // steps use the ternary value, so nothing is rounded twice.
  mpfr_set_emin(emin_);
  mpfr_set_emax(emax_);
  ternary = mpfr_check_range(r, ternary, MPFR_RNDN);
  mpfr_subnormalize(r, ternary, MPFR_RNDN);
  mpfr_set_emin(mpfr_get_emin_min());
  mpfr_set_emax(mpfr_get_emax_max());
}

}  // namespace kvfid::ref
