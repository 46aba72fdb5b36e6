#include "reference/mp/mp_array.h"

namespace kvfid::ref {

MpArray::MpArray(std::size_t size, mpfr_prec_t precision) : precision_(precision), numbers_(size) {
  const std::size_t bytes = mpfr_custom_get_size(precision);
  const std::size_t limbs = (bytes + sizeof(mp_limb_t) - 1) / sizeof(mp_limb_t);
  significands_ = std::make_unique<mp_limb_t[]>(size * limbs);
  for (std::size_t i = 0; i < size; ++i) {
    mp_limb_t* significand = significands_.get() + i * limbs;
    mpfr_custom_init(significand, precision);
    mpfr_custom_init_set(&numbers_[i], MPFR_ZERO_KIND, 0, precision, significand);
  }
}

std::vector<double> to_doubles(const MpArray& a) {
  std::vector<double> out(a.size());
  for (std::size_t i = 0; i < a.size(); ++i) out[i] = mpfr_get_d(a[i], MPFR_RNDN);
  return out;
}

}  // namespace kvfid::ref
