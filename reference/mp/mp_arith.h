#pragma once
// How every operation of the MPFR forward rounds its result. Two policies share one
// algorithm:
//   exact(P)      the golden: round to P bits; a dot product is summed exactly and
//                 rounded once (ExactAccumulator), so it is correctly rounded and
//                 independent of the summation order
//   ieee(format)  the emulation: round to the format exactly as IEEE hardware would
//                 (its precision, its exponent range, its subnormals); dot products
//                 multiply and add separately, in order.
// Operands may have any precision (weights and constants are exact float64 values);
// only results are rounded. Threads using an MpArith must run inside an
// ExponentRangeScope (MPFR keeps the exponent range per thread).
#include <cstddef>
#include <initializer_list>
#include <optional>

#include <mpfr.h>

#include "reference/formats/float_format.h"

namespace kvfid::ref {

// Puts the calling thread in MPFR's widest exponent range and restores the previous
// range on exit. Computation happens in the wide range; an IEEE policy narrows it only
// while it rounds a result into its format.
class ExponentRangeScope {
 public:
  ExponentRangeScope();
  ~ExponentRangeScope();
  ExponentRangeScope(const ExponentRangeScope&) = delete;
  ExponentRangeScope& operator=(const ExponentRangeScope&) = delete;

 private:
  mpfr_exp_t saved_emin_;
  mpfr_exp_t saved_emax_;
};

class MpArith {
 public:
  static MpArith exact(mpfr_prec_t precision_bits);
  static MpArith ieee(FloatFormat format);

  mpfr_prec_t precision() const { return precision_; }
  std::optional<FloatFormat> format() const { return format_; }

  // Rounds r (just computed with ternary value `ternary` at this precision) into the
  // format's exponent range, subnormals included. Nothing to do for exact(). Every
  // operation returns the ternary value of its result's one rounding (0: exact), which
  // the golden's enclosures read (enclosure.h); for ieee() it is the first rounding's.
  int finish(mpfr_ptr r, int ternary) const {
    if (format_) round_into_format(r, ternary);
    return ternary;
  }

  int set(mpfr_ptr r, mpfr_srcptr a) const { return finish(r, mpfr_set(r, a, MPFR_RNDN)); }
  int set_d(mpfr_ptr r, double a) const { return finish(r, mpfr_set_d(r, a, MPFR_RNDN)); }
  int add(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) const { return finish(r, mpfr_add(r, a, b, MPFR_RNDN)); }
  int sub(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) const { return finish(r, mpfr_sub(r, a, b, MPFR_RNDN)); }
  int mul(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) const { return finish(r, mpfr_mul(r, a, b, MPFR_RNDN)); }
  int div(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) const { return finish(r, mpfr_div(r, a, b, MPFR_RNDN)); }
  int sqrt(mpfr_ptr r, mpfr_srcptr a) const { return finish(r, mpfr_sqrt(r, a, MPFR_RNDN)); }
  int exp(mpfr_ptr r, mpfr_srcptr a) const { return finish(r, mpfr_exp(r, a, MPFR_RNDN)); }
  int sin(mpfr_ptr r, mpfr_srcptr a) const { return finish(r, mpfr_sin(r, a, MPFR_RNDN)); }
  int cos(mpfr_ptr r, mpfr_srcptr a) const { return finish(r, mpfr_cos(r, a, MPFR_RNDN)); }
  int tanh(mpfr_ptr r, mpfr_srcptr a) const { return finish(r, mpfr_tanh(r, a, MPFR_RNDN)); }
  int pow(mpfr_ptr r, mpfr_srcptr a, mpfr_srcptr b) const { return finish(r, mpfr_pow(r, a, b, MPFR_RNDN)); }

  // One run of terms of a dot product: a[j*a_stride] * b[j*b_stride] for j = 0..n-1.
  struct DotTerms {
    mpfr_srcptr a;
    std::ptrdiff_t a_stride;
    mpfr_srcptr b;
    std::ptrdiff_t b_stride;
    int n;
  };
  // out = the sum of the terms of every run (the attention reads values from two stores
  // as two runs of one sum). exact(): summed exactly in an ExactAccumulator and rounded
  // once, so out is the correctly rounded dot product whatever the order; ieee(): each
  // product and each partial sum rounded into the format, in order, starting from +0.
  // `product` is scratch of this precision (used by the ieee policy only).
  // Returns the ternary value of exact()'s one rounding (ieee(): 0).
  int dot(mpfr_ptr out, std::initializer_list<DotTerms> runs, mpfr_ptr product) const;
  int dot(mpfr_ptr out, mpfr_srcptr a, std::ptrdiff_t a_stride, mpfr_srcptr b, std::ptrdiff_t b_stride, int n,
          mpfr_ptr product) const {
    return dot(out, {DotTerms{a, a_stride, b, b_stride, n}}, product);
  }

 private:
  MpArith(mpfr_prec_t precision, std::optional<FloatFormat> format, mpfr_exp_t emin, mpfr_exp_t emax)
      : precision_(precision), format_(format), emin_(emin), emax_(emax) {}
  void round_into_format(mpfr_ptr r, int ternary) const;

  mpfr_prec_t precision_;
  std::optional<FloatFormat> format_;
  mpfr_exp_t emin_;  // MPFR exponents (value in [2^(e-1), 2^e)) of the format's
  mpfr_exp_t emax_;  // smallest subnormal and of its largest finite value
};

}  // namespace kvfid::ref
