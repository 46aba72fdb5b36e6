#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

namespace {

MpArray convert(const std::vector<double>& v, mpfr_prec_t precision) {
  MpArray out(v.size(), precision);
  for (std::size_t i = 0; i < v.size(); ++i) mpfr_set_d(out[i], v[i], MPFR_RNDN);  // exact
  return out;
}

}  // namespace

MpWeights to_mp_weights(const Model& model, mpfr_prec_t precision) {
  const mpfr_prec_t p = precision;
  MpWeights w;
  w.model = &model;
  w.precision = p;
  for (const LayerWeights& l : model.layers)
    w.layers.push_back(MpLayerVectors{convert(l.attn_norm, p), convert(l.bq, p), convert(l.bk, p), convert(l.bv, p),
                                      convert(l.q_norm, p), convert(l.k_norm, p), convert(l.ffn_norm, p)});
  w.final_norm = convert(model.final_norm, p);
  return w;
}

MpArray mp_constant(double value) {
  MpArray c(1, kWeightPrecisionBits);
  mpfr_set_d(c[0], value, MPFR_RNDN);
  return c;
}

}  // namespace kvfid::ref
