#include "reference/mp/kv_rotate.h"

#include "reference/mp/enclosure.h"
#include "reference/mp/mp_weights.h"
#include "reference/mp/projection.h"

namespace kvfid::ref {

Matrix rotation_matrix(const quant::Rotation& r, bool transposed) {
  const std::vector<float> dense = quant::dense_rotation(r);
  Matrix m(r.dim, r.dim);
  for (int i = 0; i < r.dim; ++i)
    for (int j = 0; j < r.dim; ++j) m.element(i, j) = dense[transposed ? std::size_t(j) * r.dim + i : std::size_t(i) * r.dim + j];
  return m;
}

void rotate_rows(MpArray& x, const quant::Rotation& r, bool transposed, int rows, const MpArith& arith, int threads,
                 MpArray* radii) {
  const Matrix m = rotation_matrix(r, transposed);
  MpArray out(x.size(), arith.precision());
  MpArray out_r = radii ? exact_radii(radii->size()) : MpArray();
  project(out, {m, weight_precision_for(arith.precision())}, x, MpArray(), rows, arith, threads, nullptr, radii, radii ? &out_r : nullptr);
  x = std::move(out);
  if (radii) *radii = std::move(out_r);
}

MpArray to_model_basis(const MpArray& x, const quant::Rotation& r, int rows, int threads, MpArray* radii) {
  MpArray y(x.size(), x.precision());
  for (std::size_t i = 0; i < x.size(); ++i) mpfr_set(y[i], x[i], MPFR_RNDN);  // exact: same precision
  if (radii) *radii = exact_radii(x.size());  // x is exact: the result's radii are its roundings
  rotate_rows(y, r, true, rows, MpArith::exact(x.precision()), threads, radii);
  return y;
}

}  // namespace kvfid::ref
