#include "reference/mp/certify.h"

#include <algorithm>
#include <stdexcept>

#include "reference/mp/enclosure.h"
#include "reference/mp/mp_array.h"

namespace kvfid::ref {

std::optional<long> certified_error_bits(mpfr_srcptr low, mpfr_srcptr high, mpfr_prec_t low_precision,
                                         mpfr_ptr difference) {
  if (!mpfr_number_p(high) || !mpfr_number_p(low) || mpfr_zero_p(high)) return std::nullopt;
  if (mpfr_equal_p(low, high)) {
    // Bound: one ulp at P, 2^(EXP(y)-P), whose EXP is EXP(y)-P+1.
    return long(low_precision) - 2;
  }
  mpfr_sub(difference, low, high, MPFR_RNDA);
  return long(mpfr_get_exp(high) - mpfr_get_exp(difference) - 1);
}

std::string describe_error_bits(const std::optional<long>& error_bits) {
  return error_bits ? std::to_string(*error_bits) + " correct bits" : std::string("no bounded error");
}

bool rounds_correctly(mpfr_srcptr y, long error_bits) {
  if (mpfr_can_round(y, error_bits, MPFR_RNDN, MPFR_RNDZ, kCertifiedBits)) return true;
  // The directed test also decides on which side of y the truth lies, which it cannot
  // when the truth is itself a float64 (probabilities of exactly 1; sums of FP8-stored
  // values), whether y landed on it or a rounding error away from it. Round-to-nearest
  // only needs the interval y +- 2^(EXP(y)-err) to stay clear of the midpoints between
  // float64 neighbours, which mpfr_can_round checks with RNDN at 53 bits; kept to the
  // normal float64 range, whose grid has 53 bits.
  const bool normal_range = mpfr_get_exp(y) >= -1021 && mpfr_get_exp(y) <= 1024;
  return normal_range && mpfr_can_round(y, error_bits, MPFR_RNDN, MPFR_RNDN, 53);
}

std::optional<UncertifiedValue> certify_values(const std::string& tap, const MpArray& low, const MpArray& high,
                                               std::int64_t first_index, mpfr_prec_t low_precision,
                                               CertificationTally& tally) {
  if (low.size() != high.size()) throw std::logic_error("certify_values: tap '" + tap + "' differs in size between the runs");
  MpArray difference(1, kDifferencePrecisionBits);
  for (std::size_t i = 0; i < high.size(); ++i) {
    mpfr_srcptr y = high[i];
    if (mpfr_zero_p(y) && mpfr_zero_p(low[i])) {
      ++tally.values_certified;
      continue;
    }
    const std::optional<long> err = certified_error_bits(low[i], y, low_precision, difference[0]);
    if (!err || !rounds_correctly(y, *err)) return UncertifiedValue{tap, first_index + std::int64_t(i), err};
    const long margin = *err - kCertifiedBits;
    tally.min_margin_bits = std::min(margin, tally.min_margin_bits.value_or(margin));
    ++tally.values_certified;
  }
  return std::nullopt;
}

std::optional<UncertifiedValue> certify_balls(const std::string& tap, const MpArray& values, const MpArray& radii,
                                              std::int64_t first_index, CertificationTally& tally) {
  if (values.size() != radii.size()) throw std::logic_error("certify_balls: tap '" + tap + "' has no radius per value");
  for (std::size_t i = 0; i < values.size(); ++i) {
    mpfr_srcptr y = values[i], r = radii[i];
    if (!ball_rounds_correctly(y, r)) {
      const bool bounded = mpfr_regular_p(y) && mpfr_number_p(r) && !mpfr_zero_p(r);
      return UncertifiedValue{tap, first_index + std::int64_t(i),
                              bounded ? std::optional<long>(long(mpfr_get_exp(y)) - long(mpfr_get_exp(r)))
                                      : std::nullopt};
    }
    ++tally.values_certified;
    if (mpfr_zero_p(r)) continue;
    const long margin = long(mpfr_get_exp(y)) - long(mpfr_get_exp(r)) - kCertifiedBits;
    tally.min_margin_bits = std::min(margin, tally.min_margin_bits.value_or(margin));
    tally.max_radius_half_ulps = std::max(tally.max_radius_half_ulps, radius_in_half_ulps(y, r));
  }
  return std::nullopt;
}

std::optional<UncertifiedValue> certify_taps(const std::vector<MpTap>& low, const std::vector<MpTap>& high,
                                             mpfr_prec_t low_precision, CertificationTally& tally) {
  if (low.size() != high.size()) throw std::logic_error("certify_taps: the two runs produced different taps");
  for (std::size_t t = 0; t < high.size(); ++t) {
    if (low[t].name != high[t].name) throw std::logic_error("certify_taps: tap '" + high[t].name + "' differs in name between the runs");
    if (auto failure = certify_values(high[t].name, low[t].values, high[t].values, 0, low_precision, tally)) return failure;
  }
  return std::nullopt;
}

}  // namespace kvfid::ref
