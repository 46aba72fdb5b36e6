#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

namespace {

MpArray convert(const std::vector<double>& v, mpfr_prec_t precision) {
  MpArray out(v.size(), precision);
  for (std::size_t i = 0; i < v.size(); ++i) mpfr_set_d(out[i], v[i], MPFR_RNDN);  // exact
  return out;
}

MpMatrix convert(const Matrix& m, mpfr_prec_t precision) { return MpMatrix{m.rows, m.cols, convert(m.data, precision)}; }

}  // namespace

MpWeights to_mp_weights(const Model& model, mpfr_prec_t precision) {
  const mpfr_prec_t p = precision;
  MpWeights w;
  w.embedding = convert(model.embedding, p);
  for (const LayerWeights& l : model.layers)
    w.layers.push_back(MpLayerWeights{convert(l.attn_norm, p), convert(l.wq, p), convert(l.wk, p),
                                      convert(l.wv, p), convert(l.bq, p), convert(l.bk, p),
                                      convert(l.bv, p), convert(l.wo, p), convert(l.ffn_norm, p),
                                      convert(l.w1, p), convert(l.w3, p), convert(l.w2, p)});
  w.final_norm = convert(model.final_norm, p);
  w.classifier = convert(model.classifier, p);
  return w;
}

MpArray mp_constant(double value) {
  MpArray c(1, kWeightPrecisionBits);
  mpfr_set_d(c[0], value, MPFR_RNDN);
  return c;
}

}  // namespace kvfid::ref
