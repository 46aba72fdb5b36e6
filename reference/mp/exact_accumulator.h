#pragma once
// An exact, order-independent accumulator for dot products (a long accumulator in the
// spirit of Kulisch's; the window grows to the terms it is given).
//
// Exactness. A float64 w is M_w * 2^e_w with M_w an integer below 2^53; an MPFR number x
// of precision p is X * 2^(EXP(x) - 64*n) with X the integer held in its n = ceil(p/64)
// significand limbs (MPFR's documented representation, "Internals" in its manual: the
// significand limbs of a regular number, most significant bit set, bits below p zero;
// read through mpfr_custom_get_significand). Their product is the integer M_w * X (at
// most 64*(n+1) bits) times a power of two, computed exactly with 64x64->128-bit
// multiplies; an MPFR x MPFR product is the exact mpn_mul of the two significands. Every
// term is therefore an integer multiple of 2^(64*base), base being the lowest limb any
// term has touched. The accumulator holds two non-negative integers over limbs
// [base, base + size): the sum of the positive terms and the sum of the magnitudes of
// the negative ones (two sums, so the sign of a term chooses an array instead of a
// branch). Integer addition is exact, associative and commutative, so their difference,
// the state's value, is the same for every order of the terms, every split into partial
// accumulators and every order of merging them; round_to rounds that one exact value once
// (mpfr_set_z_2exp, correctly rounded in the caller's rounding mode). to_bytes writes the
// value (not the two sums) in a canonical sign-magnitude form, so equal sums give equal
// bytes, whatever the windows and splits.
//
// Range. No term is ever written into the top limb (one limb of headroom is kept above
// every term's highest limb), so every term is below 2^(64*(size-1)) and a sum of fewer
// than 2^63 terms is below 2^(64*size - 1): neither sum overflows its limbs (terms are
// counted; add and merge throw past that). The window spans the terms' exponents:
// (largest - smallest exponent) + the bits of one product + 5 limbs of slack and
// headroom. With weights and activations inside float64's range (2^-1074..2^1024) the
// products' exponents span under 4200 bits, so a window stays under 4200 + P + 53 + 320
// bits (under 1 KiB of limbs per array at P = 1024, the golden's limit); a
// window beyond kMaxWindowBits (terms whose exponents lie absurdly far apart) throws
// std::range_error instead of allocating without bound. NaN and infinite operands throw
// std::domain_error: an exact sum has no meaning for them (the model loaders already
// reject non-finite weights).
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <mpfr.h>

namespace kvfid::ref {

class ExactAccumulator {
 public:
  // 2^24 bits (2 MiB of limbs): far beyond any forward's span (see Range above), small
  // enough that a hostile input cannot exhaust memory through one accumulator.
  static constexpr std::int64_t kMaxWindowBits = std::int64_t(1) << 24;

  // Not for concurrent use, const members included (round_to and to_bytes use scratch):
  // one accumulator per thread, merged afterwards.
  ExactAccumulator() = default;

  void clear();  // back to an exact zero, keeping the allocation

  // += w * x, exactly. x must be finite (any precision).
  void add(double w, mpfr_srcptr x);
  // += a * b, exactly.
  void add(mpfr_srcptr a, mpfr_srcptr b);
  // += the other accumulator's sum, exactly.
  void merge(const ExactAccumulator& other);

  // y = the sum rounded once to y's precision in mode rnd (an exact zero sum gives +0);
  // returns MPFR's ternary value. The exponent range is the caller's (an ExponentRangeScope
  // for the forward).
  int round_to(mpfr_ptr y, mpfr_rnd_t rnd) const;

  // The sum in a canonical byte form (equal sums, equal bytes), for exchange between
  // ranks; from_bytes throws std::invalid_argument on anything to_bytes cannot have written.
  std::string to_bytes() const;
  static ExactAccumulator from_bytes(std::string_view bytes);

  std::uint64_t terms() const { return terms_; }

 private:
  // Makes limbs lo..hi (absolute limb indices) part of the window, with at least one
  // headroom limb above hi.
  void cover(std::int64_t lo, std::int64_t hi) {
    if (pos_.empty() || lo < base_ || hi + 1 >= base_ + std::int64_t(pos_.size())) grow(lo, hi);
  }
  void grow(std::int64_t lo, std::int64_t hi);
  void count_terms(std::uint64_t n);
  // |value| into scratch_ (the window's limbs); returns whether the value is negative.
  bool difference() const;

  // value = (sum pos_[i] - neg_[i]) * 2^(64*(base_+i)); both arrays span the same window.
  std::vector<mp_limb_t> pos_, neg_;
  std::int64_t base_ = 0;  // absolute index of pos_[0] and neg_[0]
  std::uint64_t terms_ = 0;
  std::vector<mp_limb_t> product_;          // scratch: one exact MPFR x MPFR product
  mutable std::vector<mp_limb_t> scratch_;  // scratch: |value| for round_to and to_bytes
};

// y = sum_{j<n} w[j] * x[j] (+ addend), correctly rounded to y's precision (round to
// nearest, ties to even) whatever the order of the terms; x: [n] consecutive MPFR numbers
// (MpArray elements); addend (a bias) is null or one finite MPFR number. `acc` is
// scratch (cleared first), reused so the hot loop never allocates. Returns MPFR's ternary
// value of the one rounding (0: y is the exact sum).
int exact_dot(mpfr_ptr y, const double* w, mpfr_srcptr x, std::size_t n, ExactAccumulator& acc,
               mpfr_srcptr addend = nullptr);

}  // namespace kvfid::ref
