#pragma once
// The correct-rounding checks of the golden, one per certification method
// (golden_forward.h):
//  * agreement (certify_values): a value y computed at P + guard bits is
// taken with the error bound |y_P - y_(P+guard)| (one ulp at P when both agree) and
// passes when mpfr_can_round proves every number within that bound rounds to the same
// float64 (to 53 + 1 bits toward zero, MPFR's own test idiom for round-to-nearest; see
// rounds_correctly for values that are float64s themselves).
// Exact zeros in both runs (the masked half of the attention probabilities) pass.
// The check does not depend on how each run rounds internally, so it is unchanged by the
// exact forward's dot products being correctly rounded (ExactAccumulator: one rounding of
// at most half an ulp per dot, where per-term fma rounding allowed up to n half-ulps).
// Measured: stories260K's medium golden's smallest margin went from 48 to 52 bits, its
// bytes unchanged.
//  * enclosure (certify_balls): each value is a ball (enclosure.h), midpoint y and a
// proven radius r with the true value in [y - r, y + r]; it passes when the whole ball
// rounds to nearest float64 as y does: rounds_correctly(y, EXP(y) - EXP(r)), since
// r <= 2^EXP(r). Exact values (r = 0: inputs, the masked probabilities, stored K and V)
// pass as they are; a zero midpoint with a nonzero radius never does (the sign of the
// zero the truth rounds to is unknown).
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "reference/mp/mp_forward.h"

namespace kvfid::ref {

inline constexpr int kCertifiedBits = 53 + 1;  // float64 significand, plus one for round-to-nearest

struct CertificationTally {
  std::int64_t values_certified = 0;
  std::optional<long> min_margin_bits;  // smallest (error bits - kCertifiedBits) over nonzero values
  double max_radius_half_ulps = 0;      // enclosure: largest radius in half-widths of float64's rounding interval
};

struct UncertifiedValue {
  std::string tap;
  std::int64_t index = 0;  // row-major
  std::optional<long> error_bits;  // what the bound allowed (needs > kCertifiedBits); none: no bound
};

// The difference only matters through its exponent; rounded away from zero it can only
// overstate the error.
inline constexpr mpfr_prec_t kDifferencePrecisionBits = 64;

// "N correct bits" for a failure's error bits, "no bounded error" without any.
std::string describe_error_bits(const std::optional<long>& error_bits);

// Error bits of y: EXP(y) - EXP(|y_P - y|) - 1; nullopt when no bound can be stated
// (y zero but not its companion, or not finite). `difference` is scratch of
// kDifferencePrecisionBits.
std::optional<long> certified_error_bits(mpfr_srcptr low, mpfr_srcptr high, mpfr_prec_t low_precision,
                                         mpfr_ptr difference);

// Whether every number within 2^(EXP(y) - error_bits) of y rounds to nearest float64 as
// y does: mpfr_can_round(y, err, RNDN, RNDZ, 54), or, when y is itself a normal float64
// (where that directed test must fail), mpfr_can_round(y, err, RNDN, RNDN, 53).
bool rounds_correctly(mpfr_srcptr y, long error_bits);

// Checks the values of one tap, or of a block of it whose first value is the tap's
// value `first_index` (the index a failure reports counts from there); returns the
// first that fails, or nullopt when all pass.
std::optional<UncertifiedValue> certify_values(const std::string& tap, const MpArray& low, const MpArray& high,
                                               std::int64_t first_index, mpfr_prec_t low_precision,
                                               CertificationTally& tally);

// The enclosure method's check of the balls (values[i], radii[i]), as certify_values.
std::optional<UncertifiedValue> certify_balls(const std::string& tap, const MpArray& values, const MpArray& radii,
                                              std::int64_t first_index, CertificationTally& tally);

// Checks every value of every tap, in order; returns the first that fails, or nullopt
// when all pass.
std::optional<UncertifiedValue> certify_taps(const std::vector<MpTap>& low, const std::vector<MpTap>& high,
                                             mpfr_prec_t low_precision, CertificationTally& tally);

}  // namespace kvfid::ref
