#include "reference/mp/mp_weights.h"

#include <algorithm>
#include <stdexcept>

namespace kvfid::ref {

namespace {

MpArray convert(const std::vector<double>& v, mpfr_prec_t precision) {
  MpArray out(v.size(), precision);
  for (std::size_t i = 0; i < v.size(); ++i) mpfr_set_d(out[i], v[i], MPFR_RNDN);  // exact
  return out;
}

// A norm's gains: w itself, or 1 + w exactly. 1 + w spans from its own leading bit down
// to w's last, at most 2^1 .. 2^-1074 for a float64 w; it is formed at that width and
// the array takes the widest element's precision (mpfr_min_prec), at least `precision`.
MpArray gains(const std::vector<double>& w, mpfr_prec_t precision, bool unit_offset) {
  if (!unit_offset) return convert(w, precision);
  constexpr mpfr_prec_t kWide = 1100;  // > 1076 bits: 1 + w exact for every float64 w
  MpArray wide(w.size(), kWide);
  mpfr_prec_t need = precision;
  for (std::size_t i = 0; i < w.size(); ++i) {
    mpfr_set_d(wide[i], w[i], MPFR_RNDN);
    if (mpfr_add_ui(wide[i], wide[i], 1, MPFR_RNDN) != 0) throw std::logic_error("gains: 1 + w rounded");
    need = std::max(need, mpfr_min_prec(wide[i]));
  }
  MpArray out(w.size(), need);
  for (std::size_t i = 0; i < w.size(); ++i) mpfr_set(out[i], wide[i], MPFR_RNDN);  // exact: need bits suffice
  return out;
}

}  // namespace

MpWeights to_mp_weights(const Model& model, mpfr_prec_t precision) {
  const mpfr_prec_t p = precision;
  MpWeights w;
  w.model = &model;
  w.precision = p;
  const bool offset = model.config.norm_unit_offset;
  for (const LayerWeights& l : model.layers)
    w.layers.push_back(MpLayerVectors{gains(l.attn_norm, p, offset), convert(l.bq, p), convert(l.bk, p),
                                      convert(l.bv, p), gains(l.q_norm, p, offset), gains(l.k_norm, p, offset),
                                      gains(l.ffn_norm, p, offset), gains(l.post_attn_norm, p, offset),
                                      gains(l.post_ffn_norm, p, offset), gains(l.q_a_norm, p, offset),
                                      gains(l.kv_a_norm, p, offset)});
  w.final_norm = gains(model.final_norm, p, offset);
  return w;
}

MpArray mp_constant(double value) {
  MpArray c(1, kWeightPrecisionBits);
  mpfr_set_d(c[0], value, MPFR_RNDN);
  return c;
}

}  // namespace kvfid::ref
