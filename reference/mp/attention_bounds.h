#pragma once
// The radii of attention's two dot products (q.k and p.v) under enclosures
// (enclosure.h's product rule summed in float64, scaled_bounds.h), shared by the full
// cache's attention (attention.cpp) and the evicting one (evicting_attention.cpp).
#include <cstddef>
#include <optional>

#include "reference/mp/attention.h"
#include "reference/mp/enclosure.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/scaled_bounds.h"

namespace kvfid::ref {

// The float64 bounds the dot products read, computed once per call: magnitudes of every
// operand, radii of the inexact ones.
struct DotBounds {
  ScaledBounds q_mag, k_cold_mag, k_hot_mag, v_cold_mag, v_hot_mag;
  std::optional<ScaledBounds> q_rad, k_rad, v_rad;

  DotBounds(const MpArray& q, const AttentionKv& kv, const AttentionRadii& radii);
};

// sum += the n terms of |a| rb + |b| ra + ra rb, each vector at its offset and stride
// (a null radius: exact).
void add_product_rule(RadiusSum& sum, const ScaledBounds& a_mag, const ScaledBounds* a_rad, std::size_t a_at,
                      std::ptrdiff_t a_stride, const ScaledBounds& b_mag, const ScaledBounds* b_rad, std::size_t b_at,
                      std::ptrdiff_t b_stride, int n);

inline const ScaledBounds* opt(const std::optional<ScaledBounds>& b) { return b ? &*b : nullptr; }

// r := the radius of the rounded-once dot product m (ternary: MPFR's for it): the
// product rule's terms summed in `sum`, plus m's rounding. tmp: scratch of kRadiusBits.
void set_dot_radius(mpfr_ptr r, const RadiusSum& sum, mpfr_srcptr m, int ternary, Enclosure& enc, mpfr_ptr tmp);

}  // namespace kvfid::ref
