// The KV rotations (kv_rotation.h): the `rot=` grammar and its refusals, what each
// matrix is (exactly orthogonal where it can be, else within FP32's rounding), that the
// engine's butterfly and fma chains compute that matrix, and that the model-basis
// conversion inverts them.
#include "reference/formats/quant/kv_rotation.h"

#include <cmath>
#include <random>

#include <gtest/gtest.h>
#include <mpfr.h>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/util/input_error.h"
#include "tests/common/test_env.h"

namespace kvfid::ref::quant {
namespace {

constexpr double kU = 0x1p-24;  // FP32's unit roundoff

RotationSpec spec_of(const std::string& policy) { return parse_kv_policy_spec(policy, "--kv").rot; }

TEST(KvRotationParse, EveryFormAndItsText) {
  EXPECT_EQ(spec_of("q4_0").kind, RotationKind::none);
  const RotationSpec h = spec_of("q4_0+rot=hadamard");
  EXPECT_EQ(h.kind, RotationKind::hadamard);
  EXPECT_FALSE(h.seed);
  EXPECT_EQ(to_string(h), "hadamard");
  const RotationSpec hs = spec_of("rot=hadamard:42+int4_32");
  EXPECT_EQ(hs.kind, RotationKind::hadamard);
  EXPECT_EQ(hs.seed, 42u);
  EXPECT_EQ(to_string(hs), "hadamard:42");
  const RotationSpec o = spec_of("f16+rot=orthogonal:0");
  EXPECT_EQ(o.kind, RotationKind::orthogonal);
  EXPECT_EQ(o.seed, 0u);
  EXPECT_EQ(to_string(o), "orthogonal:0");
}

TEST(KvRotationParse, RefusalsNameThePart) {
  const std::vector<std::pair<std::string, std::string>> bad = {
      {"q4_0+rot=givens", "unknown rotation 'givens'"},
      {"q4_0+rot=orthogonal", "needs its seed"},
      {"q4_0+rot=hadamard:", "seed ''"},
      {"q4_0+rot=hadamard:-1", "seed '-1'"},
      {"q4_0+rot=hadamard:1234567890123456789", "at most 18 digits"},
      {"q4_0+rot=hadamard+rot=hadamard", "a second rotation"},
      {"q4_0+rot=", "unknown rotation ''"},
  };
  for (const auto& [spec, why] : bad) {
    try {
      parse_kv_policy_spec(spec, "--kv");
      ADD_FAILURE() << spec << " was accepted";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find(why), std::string::npos) << spec << ": " << e.what();
      EXPECT_NE(std::string(e.what()).find("part 'rot="), std::string::npos) << e.what();
    }
  }
}

TEST(KvRotationParse, TheModelsHeadDimDecidesWhatFits) {
  ModelConfig c;
  c.n_layers = 1, c.n_heads = 2, c.n_kv_heads = 1, c.head_dim = 48, c.dim = 96;
  try {
    resolve_kv_policy(parse_kv_policy_spec("q4_0+rot=hadamard", "--kv"), {}, c);
    ADD_FAILURE() << "a Hadamard rotation of head_dim 48 was accepted";
  } catch (const InputError& e) {
    EXPECT_NE(std::string(e.what()).find("power-of-two head_dim, and this model's is 48"), std::string::npos) << e.what();
  }
  EXPECT_EQ(resolve_kv_policy(parse_kv_policy_spec("q4_0+rot=orthogonal:1", "--kv"), {}, c).rotation.dim, 48);
  c.head_dim = kMaxRotationDim * 2, c.dim = 2 * c.head_dim;
  EXPECT_THROW(resolve_kv_policy(parse_kv_policy_spec("q4_0+rot=hadamard", "--kv"), {}, c), InputError);
  EXPECT_FALSE(resolve_kv_policy(parse_kv_policy_spec("q4_0", "--kv"), {}, c).rotation.active());
}

// s is the FP32 number nearest 1/sqrt(d), checked against MPFR's correctly rounded value.
TEST(KvRotation, HadamardScaleIsTheNearestFloat) {
  for (int d = 1; d <= kMaxRotationDim; d *= 2) {
    mpfr_t t;
    mpfr_init2(t, 24);
    mpfr_set_ui(t, unsigned(d), MPFR_RNDN);
    mpfr_rec_sqrt(t, t, MPFR_RNDN);  // 1/sqrt(d) correctly rounded to 24 bits
    EXPECT_EQ(make_rotation({RotationKind::hadamard, {}}, d, "test").scale, mpfr_get_flt(t, MPFR_RNDN)) << d;
    mpfr_clear(t);
  }
}

// R^T R = I exactly where the matrix can be orthogonal in FP32 (Hadamard on a power of
// 4: s = 2^-k), and within a few FP32 roundings otherwise: Hadamard's s^2 d = 1 + e with
// |e| <= 2u (one rounding of s); the orthogonal matrix's rows are float64-orthonormal
// rounded to FP32, so each of the d products of a dot moves by <= 2u |r_i||r_j| and the
// whole by <= 2u + O(u^2) (Cauchy-Schwarz); 4u covers both with room.
TEST(KvRotation, OrthogonalExactlyOrWithinFp32Rounding) {
  constexpr double kOrthogonalityBound = 4 * kU;
  for (int d : {1, 4, 16, 64, 256})
    for (auto seed : {std::optional<std::uint64_t>{}, std::optional<std::uint64_t>{7}})
      EXPECT_EQ(rotation_orthogonality_error(make_rotation({RotationKind::hadamard, seed}, d, "test")), 0.0) << d;
  for (int d : {2, 8, 32, 128}) {
    const double e = rotation_orthogonality_error(make_rotation({RotationKind::hadamard, 3}, d, "test"));
    EXPECT_GT(e, 0.0) << d;  // 1/sqrt(d) is irrational: no FP32 s makes it exact
    EXPECT_LE(e, kOrthogonalityBound) << d;
  }
  for (int d : {1, 3, 8, 48, 64, 128})
    EXPECT_LE(rotation_orthogonality_error(make_rotation({RotationKind::orthogonal, 11}, d, "test")), kOrthogonalityBound)
        << d;
}

TEST(KvRotation, SeedsDecideTheMatrixAndNothingElseDoes) {
  const auto signs = [](std::optional<std::uint64_t> seed) {
    return make_rotation({RotationKind::hadamard, seed}, 64, "test").signs;
  };
  EXPECT_EQ(signs({}), std::vector<float>(64, 1.0f));
  EXPECT_EQ(signs(5), signs(5));
  EXPECT_NE(signs(5), signs(6));
  int negative = 0;
  for (float s : signs(5)) negative += s < 0;
  EXPECT_GT(negative, 16);  // a fair coin's 64 flips: P(<= 16 heads) ~ 5e-5
  EXPECT_LT(negative, 48);
  const auto matrix = [](std::uint64_t seed) { return make_rotation({RotationKind::orthogonal, seed}, 24, "test").matrix; };
  EXPECT_EQ(matrix(9), matrix(9));
  EXPECT_NE(matrix(9), matrix(10));
}

// The engine's functions compute the dense matrix: on a basis vector e_j every butterfly
// sum and fma is exact (one nonzero term), so R e_j is column j of R bit for bit, and
// R^T e_j is row j.
TEST(KvRotation, EngineFunctionsApplyTheDenseMatrix) {
  for (const RotationSpec& spec : std::vector<RotationSpec>{{RotationKind::hadamard, {}},
                                                            {RotationKind::hadamard, 99},
                                                            {RotationKind::orthogonal, 4}})
    for (int d : {1, 2, 8, 16, 32}) {
      const Rotation r = make_rotation(spec, d, "test");
      const std::vector<float> m = dense_rotation(r);
      std::vector<float> x(d), tmp(d);
      for (int j = 0; j < d; ++j)
        for (bool inverse : {false, true}) {
          std::fill(x.begin(), x.end(), 0.0f);
          x[j] = 1.0f;
          inverse ? unrotate_head(view_of(r), x.data(), tmp.data()) : rotate_head(view_of(r), x.data(), tmp.data());
          for (int i = 0; i < d; ++i)
            ASSERT_EQ(x[i], inverse ? m[std::size_t(j) * d + i] : m[std::size_t(i) * d + j])
                << to_string(spec) << " d " << d << " column " << j << (inverse ? " (transposed)" : "");
        }
    }
}

// On random vectors: the FP32 rotation is the dense product within its rounding (the
// butterfly's log2(d) levels of sums and the scaling: (log2 d + 1) u relative to
// sum_j |R_ij x_j| (Higham's bound for a sum tree of that depth); an fma chain of d
// terms: d u), and ModelBasis brings it back to x within that plus the double
// product's and the final FP32 rounding's.
TEST(KvRotation, RotateThenBackIsTheIdentityWithinRounding) {
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<double> normal;
  for (const RotationSpec& spec : std::vector<RotationSpec>{{RotationKind::hadamard, 1}, {RotationKind::orthogonal, 2}})
    for (int d : {8, 64, 128}) {
      const Rotation r = make_rotation(spec, d, "test");
      const std::vector<float> m = dense_rotation(r);
      const double levels = spec.kind == RotationKind::hadamard ? std::log2(double(d)) + 1 : d;
      for (int trial = 0; trial < 20; ++trial) {
        std::vector<float> x(d), y(d), tmp(d);
        for (float& v : x) v = float(normal(rng) * (trial % 3 == 0 ? 100 : 1));
        y = x;
        rotate_head(view_of(r), y.data(), tmp.data());
        double norm = 0;
        for (float v : x) norm += double(v) * v;
        norm = std::sqrt(norm);
        for (int i = 0; i < d; ++i) {
          double exact = 0, magnitude = 0;
          for (int j = 0; j < d; ++j) {
            exact += double(m[std::size_t(i) * d + j]) * x[j];
            magnitude += std::fabs(double(m[std::size_t(i) * d + j]) * x[j]);
          }
          ASSERT_LE(std::fabs(y[i] - exact), levels * kU * magnitude * (1 + 1e-6) + 1e-30)
              << to_string(spec) << " d " << d << " i " << i;
        }
        ModelBasis(r).apply(y.data(), 1);
        // |R^T fl(Rx) - x| <= |R^T| |fl(Rx) - Rx| + |R^T R - I| |x| + the roundings of
        // ModelBasis itself: each term below sqrt(d) (levels + 6) u |x|.
        for (int i = 0; i < d; ++i)
          ASSERT_LE(std::fabs(double(y[i]) - x[i]), std::sqrt(double(d)) * (levels + 6) * kU * norm)
              << to_string(spec) << " d " << d << " i " << i;
      }
    }
}

}  // namespace
}  // namespace kvfid::ref::quant
