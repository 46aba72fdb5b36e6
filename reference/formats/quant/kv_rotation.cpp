#include "reference/formats/quant/kv_rotation.h"

#include <cmath>

#include <mpfr.h>

#include "reference/util/input_error.h"

namespace kvfid::ref::quant {

namespace {

// SplitMix64 (Steele, Lea and Flood 2014): a seeded stream of 64-bit words from integer
// operations only, so every platform draws the same matrix from a seed.
struct SplitMix64 {
  std::uint64_t state;
  std::uint64_t next() {
    std::uint64_t z = (state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
  }
  // Uniform in (-1, 1): a 53-bit integer over 2^52, minus 1, exact in float64.
  double symmetric_unit() { return double(next() >> 11) * 0x1p-52 - 1.0; }
};

// log of a float64, correctly rounded (MPFR): libm's log may differ between platforms
// in the last bit, and the matrix must not.
double log_rn(double x) {
  mpfr_t t;
  mpfr_init2(t, 53);
  mpfr_set_d(t, x, MPFR_RNDN);
  mpfr_log(t, t, MPFR_RNDN);
  const double r = mpfr_get_d(t, MPFR_RNDN);
  mpfr_clear(t);
  return r;
}

// Standard normal draws by Marsaglia's polar method: IEEE +, *, /, sqrt and the
// correctly rounded log only, so the draws are the same bits everywhere.
struct Gaussian {
  SplitMix64 rng;
  bool has_spare = false;
  double spare = 0;
  double next() {
    if (has_spare) {
      has_spare = false;
      return spare;
    }
    double u, v, s;
    do {
      u = rng.symmetric_unit();
      v = rng.symmetric_unit();
      s = u * u + v * v;
    } while (s >= 1.0 || s == 0.0);
    const double f = std::sqrt(-2.0 * log_rn(s) / s);
    spare = v * f;
    has_spare = true;
    return u * f;
  }
};

bool power_of_two(int d) { return d > 0 && (d & (d - 1)) == 0; }

// Rows of the result: the Gram-Schmidt orthonormalization, twice per vector (CGS2,
// Giraud et al. 2005: orthogonal to working precision), of the rows of a Gaussian
// matrix; the rows of an orthonormalized Gaussian matrix are Haar-distributed (the
// positive diagonal of R makes Q unique).
std::vector<float> haar_orthogonal(int d, std::uint64_t seed) {
  Gaussian g{SplitMix64{seed}};
  std::vector<double> q(std::size_t(d) * d);
  for (double& x : q) x = g.next();
  for (int i = 0; i < d; ++i) {
    double* row = q.data() + std::size_t(i) * d;
    for (int pass = 0; pass < 2; ++pass)
      for (int k = 0; k < i; ++k) {
        const double* prev = q.data() + std::size_t(k) * d;
        double dot = 0;
        for (int j = 0; j < d; ++j) dot += prev[j] * row[j];
        for (int j = 0; j < d; ++j) row[j] -= dot * prev[j];
      }
    double norm2 = 0;
    for (int j = 0; j < d; ++j) norm2 += row[j] * row[j];
    const double inv = 1.0 / std::sqrt(norm2);
    for (int j = 0; j < d; ++j) row[j] *= inv;
  }
  return std::vector<float>(q.begin(), q.end());
}

}  // namespace

std::string to_string(const RotationSpec& spec) {
  const std::string seed = spec.seed ? ":" + std::to_string(*spec.seed) : "";
  switch (spec.kind) {
    case RotationKind::none: return "";
    case RotationKind::hadamard: return "hadamard" + seed;
    case RotationKind::orthogonal: return "orthogonal" + seed;
  }
  return "";
}

Rotation make_rotation(const RotationSpec& spec, int head_dim, const std::string& source) {
  Rotation r;
  r.kind = spec.kind;
  r.dim = head_dim;
  if (!r.active()) return r;
  if (head_dim < 1 || head_dim > kMaxRotationDim)
    throw InputError(source, "rotation " + to_string(spec) + " of head_dim " + std::to_string(head_dim) +
                                 ": rotations take head_dim 1.." + std::to_string(kMaxRotationDim));
  if (spec.kind == RotationKind::hadamard) {
    if (!power_of_two(head_dim))
      throw InputError(source, "a Hadamard rotation needs a power-of-two head_dim, and this model's is " +
                                   std::to_string(head_dim) + " (orthogonal:SEED takes any)");
    // fl32(1/sqrt(d)) through float64 (two roundings there, then one to FP32): the nearest
    // float for every power of two up to kMaxRotationDim, as KvRotation.HadamardScaleIsTheNearestFloat
    // checks against MPFR.
    r.scale = float(1.0 / std::sqrt(double(head_dim)));
    r.signs.assign(std::size_t(head_dim), 1.0f);
    if (spec.seed) {
      SplitMix64 rng{*spec.seed};
      for (float& s : r.signs) s = (rng.next() >> 63) ? -1.0f : 1.0f;
    }
  } else {
    r.matrix = haar_orthogonal(head_dim, spec.seed.value_or(0));
  }
  return r;
}

std::vector<float> dense_rotation(const Rotation& r) {
  const int d = r.dim;
  std::vector<float> m(std::size_t(d) * d, 0.0f);
  switch (r.kind) {
    case RotationKind::none:
      for (int i = 0; i < d; ++i) m[std::size_t(i) * d + i] = 1.0f;
      break;
    case RotationKind::hadamard:
      for (int i = 0; i < d; ++i)
        for (int j = 0; j < d; ++j)
          m[std::size_t(i) * d + j] = (__builtin_popcount(unsigned(i & j)) % 2 ? -r.scale : r.scale) * r.signs[j];
      break;
    case RotationKind::orthogonal: m = r.matrix; break;
  }
  return m;
}

double rotation_orthogonality_error(const Rotation& r) {
  const int d = r.dim;
  const std::vector<float> m = dense_rotation(r);
  double worst = 0;
  for (int i = 0; i < d; ++i)
    for (int j = 0; j < d; ++j) {
      double dot = 0;  // products of two floats are exact in float64
      for (int k = 0; k < d; ++k) dot += double(m[std::size_t(k) * d + i]) * double(m[std::size_t(k) * d + j]);
      worst = std::max(worst, std::fabs(dot - (i == j ? 1.0 : 0.0)));
    }
  return worst;
}

ModelBasis::ModelBasis(const Rotation& r) : dim_(r.dim) {
  if (r.active()) dense_ = dense_rotation(r);
}

void ModelBasis::apply(float* x, std::size_t vectors) const {
  if (!active()) return;
  const int d = dim_;
  std::vector<double> y(static_cast<std::size_t>(d));
  for (std::size_t v = 0; v < vectors; ++v) {
    float* row = x + v * d;
    for (int i = 0; i < d; ++i) {
      double acc = 0;
      for (int j = 0; j < d; ++j) acc += double(dense_[std::size_t(j) * d + i]) * double(row[j]);
      y[i] = acc;
    }
    for (int i = 0; i < d; ++i) row[i] = float(y[i]);
  }
}

}  // namespace kvfid::ref::quant
