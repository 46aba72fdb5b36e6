#include "reference/mp/attention_bounds.h"

namespace kvfid::ref {

DotBounds::DotBounds(const MpArray& q, const AttentionKv& kv, const AttentionRadii& radii)
    : q_mag(scaled_magnitudes(q)), k_cold_mag(scaled_magnitudes(kv.k_cold)),
      k_hot_mag(&kv.k_hot == &kv.k_cold ? k_cold_mag : scaled_magnitudes(kv.k_hot)),
      v_cold_mag(scaled_magnitudes(kv.v_cold)),
      v_hot_mag(&kv.v_hot == &kv.v_cold ? v_cold_mag : scaled_magnitudes(kv.v_hot)) {
  if (radii.q) q_rad = scaled_magnitudes(*radii.q);
  if (kv.k_radii) k_rad = scaled_magnitudes(*kv.k_radii);
  if (kv.v_radii) v_rad = scaled_magnitudes(*kv.v_radii);
}

void add_product_rule(RadiusSum& sum, const ScaledBounds& a_mag, const ScaledBounds* a_rad, std::size_t a_at,
                      std::ptrdiff_t a_stride, const ScaledBounds& b_mag, const ScaledBounds* b_rad, std::size_t b_at,
                      std::ptrdiff_t b_stride, int n) {
  if (b_rad)
    sum.add_products(a_mag.d.data() + a_at, a_stride, b_rad->d.data() + b_at, b_stride, n, a_mag.scale + b_rad->scale);
  if (a_rad)
    sum.add_products(b_mag.d.data() + b_at, b_stride, a_rad->d.data() + a_at, a_stride, n, b_mag.scale + a_rad->scale);
  if (a_rad && b_rad)
    sum.add_products(a_rad->d.data() + a_at, a_stride, b_rad->d.data() + b_at, b_stride, n, a_rad->scale + b_rad->scale);
}

void set_dot_radius(mpfr_ptr r, const RadiusSum& sum, mpfr_srcptr m, int ternary, Enclosure& enc, mpfr_ptr tmp) {
  mpfr_set_zero(r, 1);
  sum.flush_into(r, tmp);
  enc.add_rounding(r, m, ternary);
}

}  // namespace kvfid::ref
