#include "reference/mp/mp_weights.h"

namespace kvfid {

namespace {

struct Store {
  const std::function<double(double)>& value;
  mpfr_prec_t precision;
};

MpArray convert(const std::vector<double>& v, const Store& store) {
  MpArray out(v.size(), store.precision);
  for (std::size_t i = 0; i < v.size(); ++i) mpfr_set_d(out[i], store.value(v[i]), MPFR_RNDN);  // exact
  return out;
}

MpMatrix convert(const Matrix& m, const Store& store) {
  return MpMatrix{m.rows, m.cols, convert(m.data, store)};
}

}  // namespace

MpWeights to_mp_weights(const Model& model, const std::function<double(double)>& store_value, mpfr_prec_t precision) {
  const Store store{store_value, precision};
  MpWeights w;
  w.embedding = convert(model.embedding, store);
  for (const LayerWeights& l : model.layers)
    w.layers.push_back(MpLayerWeights{convert(l.attn_norm, store), convert(l.wq, store), convert(l.wk, store),
                                      convert(l.wv, store), convert(l.bq, store), convert(l.bk, store),
                                      convert(l.bv, store), convert(l.wo, store), convert(l.ffn_norm, store),
                                      convert(l.w1, store), convert(l.w3, store), convert(l.w2, store)});
  w.final_norm = convert(model.final_norm, store);
  w.classifier = convert(model.classifier, store);
  return w;
}

MpArray mp_constant(double value) {
  MpArray c(1, kWeightPrecisionBits);
  mpfr_set_d(c[0], value, MPFR_RNDN);
  return c;
}

}  // namespace kvfid
