// Soundness of the enclosures (reference/mp/enclosure.h): for every rule, a true value
// drawn anywhere in the operands' balls, pushed through the same operation at 4 P,
// lands inside the result's ball computed at P; end to end, a whole forward at 4 P lies
// inside the enclosures of the forward at P, tap by tap, with and without a KV policy.
// A radius one bit too narrow (the rounding term halved, a dropped product term) is
// caught here: the rules are checked at a small P with exact and inexact operands, where
// the rounding term is the whole radius.
#include "reference/mp/enclosure.h"

#include <algorithm>
#include <climits>
#include <cmath>
#include <functional>
#include <random>
#include <utility>

#include <gtest/gtest.h>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/mp/ball_arith.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/scaled_bounds.h"
#include "reference/mp/softmax.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "tests/common/test_env.h"
#include "tests/reference/mp/mp_test_util.h"

namespace kvfid::ref {
namespace {

constexpr mpfr_prec_t kP = 40;            // small, so that roundings dominate the radii
constexpr mpfr_prec_t kTruth = 4 * kP;    // "the truth": the same operation at 4 P
constexpr int kCasesPerRule = 3000;

// |truth - mid| <= radius, decided exactly (kTruth + kP bits hold the difference of a
// kTruth-bit and a kP-bit number at any realistic exponent gap; RNDA only overstates it).
bool inside(mpfr_srcptr truth, mpfr_srcptr mid, mpfr_srcptr radius) {
  MpArray d(1, 8 * kTruth);
  mpfr_sub(d[0], truth, mid, MPFR_RNDA);
  mpfr_abs(d[0], d[0], MPFR_RNDA);
  return mpfr_number_p(radius) && mpfr_lessequal_p(d[0], radius);
}

struct Operand {
  MpArray mid{1, kP}, radius = exact_radii(1), truth{1, kTruth};
};

// A midpoint of kP bits in +-[2^lo, 2^hi), a radius of 0 (one case in three) or a few
// ulps at kP, and a true value anywhere in the ball (its ends included).
void draw(Operand& o, std::mt19937_64& rng, int lo, int hi, bool positive = false) {
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const double magnitude = std::ldexp(1.0 + unit(rng), int(lo + (hi - lo) * unit(rng)));
  mpfr_set_d(o.mid[0], (positive || rng() % 2) ? magnitude : -magnitude, MPFR_RNDN);
  if (rng() % 3 == 0) {
    mpfr_set_zero(o.radius[0], 1);
  } else {
    mpfr_set_ui_2exp(o.radius[0], 1 + rng() % 7, mpfr_get_exp(o.mid[0]) - kP + int(rng() % 4) - 2, MPFR_RNDU);
  }
  const int end = int(rng() % 5);  // 0: lower end, 1: upper end, else inside
  const double u = end == 0 ? -1.0 : end == 1 ? 1.0 : 2 * unit(rng) - 1;
  mpfr_mul_d(o.truth[0], o.radius[0], u, MPFR_RNDN);
  mpfr_add(o.truth[0], o.truth[0], o.mid[0], MPFR_RNDN);
}

using BinaryRule = std::function<void(BallArith&, Ball, CBall, CBall)>;
using TruthBinary = std::function<void(mpfr_ptr, mpfr_srcptr, mpfr_srcptr)>;

void check_binary(const char* name, const BinaryRule& rule, const TruthBinary& truth, int lo_b = -4, int hi_b = 4,
                  bool b_positive = false) {
  SCOPED_TRACE(test::seed_trace());
  SCOPED_TRACE(name);
  ExponentRangeScope range;
  std::mt19937_64 rng(test::test_seed());
  const MpArith arith = MpArith::exact(kP);
  BallArith ball(arith);
  Operand a, b;
  MpArray out(1, kP), out_r = exact_radii(1), t(1, kTruth);
  int bounded = 0;
  for (int i = 0; i < kCasesPerRule; ++i) {
    draw(a, rng, -4, 4);
    draw(b, rng, lo_b, hi_b, b_positive);
    rule(ball, {out[0], out_r[0]}, {a.mid[0], a.radius[0]}, {b.mid[0], b.radius[0]});
    if (!mpfr_number_p(out_r[0])) continue;  // unbounded: sound by definition
    ++bounded;
    truth(t[0], a.truth[0], b.truth[0]);
    ASSERT_TRUE(inside(t[0], out[0], out_r[0])) << "case " << i;
  }
  EXPECT_GT(bounded, kCasesPerRule * 9 / 10);
}

TEST(Enclosure, SumsAndDifferencesHoldTheTruth) {
  check_binary("add", [](BallArith& b, Ball o, CBall x, CBall y) { b.add(o, x, y); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr y) { mpfr_add(r, x, y, MPFR_RNDN); });
  check_binary("sub", [](BallArith& b, Ball o, CBall x, CBall y) { b.sub(o, x, y); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr y) { mpfr_sub(r, x, y, MPFR_RNDN); });
}

TEST(Enclosure, ProductsAndQuotientsHoldTheTruth) {
  check_binary("mul", [](BallArith& b, Ball o, CBall x, CBall y) { b.mul(o, x, y); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr y) { mpfr_mul(r, x, y, MPFR_RNDN); });
  check_binary("div", [](BallArith& b, Ball o, CBall x, CBall y) { b.div(o, x, y); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr y) { mpfr_div(r, x, y, MPFR_RNDN); });
}

TEST(Enclosure, ElementaryFunctionsHoldTheTruth) {
  // The second operand is unused by the unary rules (drawn for the shared harness).
  check_binary("sqrt", [](BallArith& b, Ball o, CBall, CBall y) { b.sqrt(o, y); },
               [](mpfr_ptr r, mpfr_srcptr, mpfr_srcptr y) { mpfr_sqrt(r, y, MPFR_RNDN); }, -6, 6, true);
  check_binary("exp", [](BallArith& b, Ball o, CBall x, CBall) { b.exp(o, x); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { mpfr_exp(r, x, MPFR_RNDN); });
  check_binary("sin", [](BallArith& b, Ball o, CBall x, CBall) { b.sin(o, x); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { mpfr_sin(r, x, MPFR_RNDN); });
  check_binary("cos", [](BallArith& b, Ball o, CBall x, CBall) { b.cos(o, x); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { mpfr_cos(r, x, MPFR_RNDN); });
  check_binary("mul_si", [](BallArith& b, Ball o, CBall x, CBall) { b.mul_si(o, x, -37); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { mpfr_mul_si(r, x, -37, MPFR_RNDN); });
  // Llama 3 RoPE scaling's clamp, from below 0 to beyond 1 (the whole ball clamped, or
  // straddling an end), and pi (a rounded constant: its truth is pi at 4 P).
  check_binary("clamp01", [](BallArith& b, Ball o, CBall x, CBall) { b.clamp01(o, x); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) {
                 if (mpfr_sgn(x) < 0) mpfr_set_zero(r, 1);
                 else if (mpfr_cmp_ui(x, 1) > 0) mpfr_set_ui(r, 1, MPFR_RNDN);
                 else mpfr_set(r, x, MPFR_RNDN);
               });
  check_binary("pi", [](BallArith& b, Ball o, CBall, CBall) { b.pi(o); },
               [](mpfr_ptr r, mpfr_srcptr, mpfr_srcptr) { mpfr_const_pi(r, MPFR_RNDN); });
  // Gemma 2: tanh, the soft-cap cap * tanh(x / cap) with the cap exact (a division,
  // tanh and a product: their rules composed), and GeGLU's decimal constant (rounded).
  check_binary("tanh", [](BallArith& b, Ball o, CBall x, CBall) { b.tanh(o, x); },
               [](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { mpfr_tanh(r, x, MPFR_RNDN); });
  for (const double c : {4.0, 30.0, 0.75}) {
    const MpArray cap = [&] {
      MpArray v(1, 53);
      mpfr_set_d(v[0], c, MPFR_RNDN);
      return v;
    }();
    check_binary("soft_cap", [&](BallArith& b, Ball o, CBall x, CBall) { b.soft_cap(o, x, cap[0]); },
                 [&](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) {
                   mpfr_div(r, x, cap[0], MPFR_RNDN);
                   mpfr_tanh(r, r, MPFR_RNDN);
                   mpfr_mul(r, r, cap[0], MPFR_RNDN);
                 });
  }
  check_binary("decimal", [](BallArith& b, Ball o, CBall, CBall) { b.decimal(o, "0.044715"); },
               [](mpfr_ptr r, mpfr_srcptr, mpfr_srcptr) { mpfr_set_str(r, "0.044715", 10, MPFR_RNDN); });
  for (const double c : {10000.0, 1e6, 0.375}) {
    const MpArray base = [&] {
      MpArray v(1, 53);
      mpfr_set_d(v[0], c, MPFR_RNDN);
      return v;
    }();
    check_binary("pow_of_exact", [&](BallArith& b, Ball o, CBall x, CBall) { b.pow_of_exact(o, base[0], x); },
                 [&](mpfr_ptr r, mpfr_srcptr x, mpfr_srcptr) { mpfr_pow(r, base[0], x, MPFR_RNDN); });
  }
}

// The softmax rule bounds a row as a whole (enclosure.h). softmax_j is increasing in x_j
// and decreasing in every other input, so the extremes of P_j over the balls are exact
// corners: x_j + r_j with every other x_k - r_k, and the reverse. Both, and the softmax of
// the midpoints themselves, computed at 4 P, lie in the ball of p~_j. Rows of exact inputs
// (the radius is then the roundings alone, rho), peaked rows (one probability near 1) and
// lone keys (exactly 1, radius 0) included.
TEST(Enclosure, SoftmaxRowHoldsEveryTruthItsBallsAllow) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  std::mt19937_64 rng(test::test_seed());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  const MpArith arith = MpArith::exact(kP), truth_arith = MpArith::exact(kTruth);
  BallArith ball(arith), truth_ball(truth_arith);
  MpArray scratch(2, kP), truth_scratch(2, kTruth);
  int inexact = 0;
  for (int row = 0; row < 410; ++row) {
    // The last ten rows are long rows of exact inputs, where the sum's own rounding error
    // (gamma) takes its share of the radius.
    const bool long_row = row >= 400;
    const int n = long_row ? 1000 : row % 10 == 0 ? 1 : 1 + int(rng() % 40);
    const int kind = long_row ? 0 : row % 4;  // 0: exact inputs; 1: a few ulps; 2: wide radii; 3: peaked
    MpArray x(std::size_t(n), kP), r_in = exact_radii(std::size_t(n));
    MpArray p(std::size_t(n), kP), r = exact_radii(std::size_t(n));
    for (int j = 0; j < n; ++j) {
      mpfr_set_d(x[j], kind == 3 && j == 0 ? 40.0 : 8 * (2 * unit(rng) - 1), MPFR_RNDN);
      if (kind == 1 || kind == 3)
        mpfr_set_ui_2exp(r_in[j], 1 + rng() % 7, mpfr_get_exp(x[j]) - kP + int(rng() % 4) - 2, MPFR_RNDU);
      if (kind == 2) mpfr_set_d(r_in[j], std::ldexp(unit(rng), -6), MPFR_RNDU);
      mpfr_set(p[j], x[j], MPFR_RNDN);
      mpfr_set(r[j], r_in[j], MPFR_RNDU);
    }
    softmax_in_place(p.data(), n, ball, scratch[0], r.data());  // r: now the probabilities' radii
    if (n == 1) {
      EXPECT_TRUE(mpfr_zero_p(r[0]) && mpfr_cmp_ui(p[0], 1) == 0) << "row " << row << ": a lone key's probability is 1";
    }
    MpArray mid(std::size_t(n), kTruth), t(std::size_t(n), kTruth);  // the midpoints' softmax; a corner's
    for (int k = 0; k < n; ++k) mpfr_set(mid[k], x[k], MPFR_RNDN);
    softmax_in_place(mid.data(), n, truth_ball, truth_scratch[0]);
    for (int j = 0; j < n; ++j) {
      ASSERT_TRUE(mpfr_number_p(r[j])) << "row " << row << " j " << j;
      inexact += !mpfr_zero_p(r[j]);
      ASSERT_TRUE(inside(mid[j], p[j], r[j])) << "row " << row << " (kind " << kind << ", n " << n << ") j " << j;
      if (kind == 0) continue;  // exact inputs: the midpoints are the only truth
      for (const int sign : {1, -1}) {  // P_j's largest, its smallest
        for (int k = 0; k < n; ++k) {
          // Exact at kTruth: a kP-bit midpoint plus a kRadiusBits radius a few binades apart.
          if ((k == j) == (sign > 0)) mpfr_add(t[k], x[k], r_in[k], MPFR_RNDN);
          else mpfr_sub(t[k], x[k], r_in[k], MPFR_RNDN);
        }
        softmax_in_place(t.data(), n, truth_ball, truth_scratch[0]);
        ASSERT_TRUE(inside(t[j], p[j], r[j])) << "row " << row << " (kind " << kind << ", n " << n << ") j " << j
                                              << " corner " << sign;
      }
    }
  }
  // Nearly every one of the ~17,000 radii is inexact (each row rounds): far fewer would
  // mean the rule left them 0, and the checks above tested nothing.
  EXPECT_GT(inexact, 1000);
}

// A dot product's radius terms summed in float64 (scaled_bounds.h) never fall below the
// exact sum, subnormal products and long sums included, and overstate it by little.
TEST(Enclosure, FloatSumBoundsAreUpperBounds) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  std::mt19937_64 rng(test::test_seed());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  MpArray exact(1, 4096), product(1, 4096), bound = exact_radii(1), tmp = exact_radii(1);
  for (int trial = 0; trial < 200; ++trial) {
    const int n = 1 + int(rng() % 5000);
    const int scale_exp = trial % 2 ? -1070 : 0;  // half the trials deep in the subnormal range
    std::vector<double> a(n), b(n);
    for (int j = 0; j < n; ++j) a[j] = std::ldexp(unit(rng), scale_exp / 2), b[j] = std::ldexp(unit(rng), scale_exp / 2);
    mpfr_set_zero(exact[0], 1);
    for (int j = 0; j < n; ++j) {
      mpfr_set_d(product[0], a[j], MPFR_RNDN);
      mpfr_mul_d(product[0], product[0], b[j], MPFR_RNDN);  // exact at 4096 bits
      mpfr_add(exact[0], exact[0], product[0], MPFR_RNDN);  // exact: the window is within 4096 bits
    }
    mpfr_set_zero(bound[0], 1);
    add_sum_bound(bound[0], a.data(), 1, b.data(), 1, n, 7, tmp[0]);
    mpfr_mul_2si(exact[0], exact[0], 7, MPFR_RNDN);
    ASSERT_TRUE(mpfr_lessequal_p(exact[0], bound[0])) << "trial " << trial << " n " << n;
    if (scale_exp == 0 && mpfr_regular_p(exact[0])) {
      mpfr_div(product[0], bound[0], exact[0], MPFR_RNDN);
      EXPECT_LT(mpfr_get_d(product[0], MPFR_RNDN), 1.0 + 0x1p-18) << "trial " << trial;
    }
  }
}

// A radius summed in float64 over terms at several scales (scaled_bounds.h's RadiusSum:
// the three sums of a dot product's product rule, scales apart by up to twice float64's
// whole exponent range, so that shifting one to another's scale underflows) is never
// below the exact total, and overstates it by little when no term vanishes.
TEST(Enclosure, RadiusSumOverScalesBoundsTheExactTotal) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  std::mt19937_64 rng(test::test_seed());
  std::uniform_real_distribution<double> unit(0.0, 1.0);
  std::uniform_int_distribution<long> scale_of(-2500, 2500);
  MpArray exact(1, 8192), term(1, 8192), bound = exact_radii(1), tmp = exact_radii(1);
  for (int trial = 0; trial < 300; ++trial) {
    const int sums = 1 + int(rng() % 3);
    const bool near = trial % 2 == 0;  // scales within 40 of each other: every term counts
    const long base = scale_of(rng);
    RadiusSum sum;
    mpfr_set_zero(exact[0], 1);
    for (int k = 0; k < sums; ++k) {
      const int n = 1 + int(rng() % 50);
      const long scale = near ? base + long(rng() % 40) : scale_of(rng);
      std::vector<double> a(n), b(n);
      for (int j = 0; j < n; ++j) a[j] = unit(rng), b[j] = unit(rng);
      sum.add_products(a.data(), 1, b.data(), 1, n, scale);
      for (int j = 0; j < n; ++j) {
        mpfr_set_d(term[0], a[j], MPFR_RNDN);
        mpfr_mul_d(term[0], term[0], b[j], MPFR_RNDN);  // exact: 106 bits
        mpfr_mul_2si(term[0], term[0], scale, MPFR_RNDN);
        mpfr_add(exact[0], exact[0], term[0], MPFR_RNDN);  // exact: 8192 bits span every scale
      }
    }
    mpfr_set_zero(bound[0], 1);
    sum.flush_into(bound[0], tmp[0]);
    ASSERT_TRUE(mpfr_greaterequal_p(bound[0], exact[0])) << "trial " << trial;
    if (near && mpfr_regular_p(exact[0])) {
      mpfr_div(term[0], bound[0], exact[0], MPFR_RNDN);
      EXPECT_LT(mpfr_get_d(term[0], MPFR_RNDN), 1.0 + 0x1p-18) << "trial " << trial;
    }
  }
  RadiusSum empty;  // no terms: the radius stays exactly what it was
  mpfr_set_zero(bound[0], 1);
  empty.add_products(nullptr, 1, nullptr, 1, 0, 7);
  empty.flush_into(bound[0], tmp[0]);
  EXPECT_TRUE(mpfr_zero_p(bound[0]));
}

// The same model forwarded at P with enclosures and at 4 P without: every value of the
// 4 P run (the truth, to within 2^-4P relative) lies in its ball.
// kForwardFirstP bits first; a stored value whose rounding the balls leave undecided (a KV policy's
// discontinuity, possible for some seed) retries at twice the precision, as the golden does.
constexpr mpfr_prec_t kForwardFirstP = 96, kForwardMaxP = 384;

void check_forward(const Model& model, const std::vector<int>& tokens, const std::optional<std::string>& kv_spec,
                   mpfr_prec_t precision = kForwardFirstP) {
  SCOPED_TRACE(kv_spec.value_or("no KV policy"));
  ExponentRangeScope range;
  MpForwardOptions low, high;
  low.arith = MpArith::exact(precision);
  low.enclose = true;
  low.threads = 2;
  high.arith = MpArith::exact(4 * precision);
  high.threads = 2;
  if (kv_spec) {
    low.kv = high.kv = quant::resolve_kv_policy(quant::parse_kv_policy_spec(*kv_spec, "test"), {}, model.config);
  }
  const MpWeights low_w = to_mp_weights(model, weight_precision_for(precision));
  const MpWeights high_w = to_mp_weights(model, weight_precision_for(4 * precision));
  std::vector<MpTap> enclosed;
  try {
    enclosed = mp_forward(model, low_w, tokens, low);
  } catch (const UndecidedRounding& u) {
    ASSERT_LT(precision, kForwardMaxP) << "a stored value's rounding stays undecided: " << u.what();
    return check_forward(model, tokens, kv_spec, 2 * precision);
  }
  const std::vector<MpTap> truth = mp_forward(model, high_w, tokens, high);
  ASSERT_EQ(enclosed.size(), truth.size());
  std::int64_t inexact = 0;
  for (std::size_t t = 0; t < truth.size(); ++t) {
    ASSERT_EQ(enclosed[t].radii.size(), enclosed[t].values.size()) << enclosed[t].name;
    for (std::size_t i = 0; i < truth[t].values.size(); ++i) {
      ASSERT_TRUE(inside(truth[t].values[i], enclosed[t].values[i], enclosed[t].radii[i]))
          << enclosed[t].name << " index " << i;
      inexact += !mpfr_zero_p(enclosed[t].radii[i]);
    }
  }
  EXPECT_GT(inexact, 0) << "every radius zero: nothing was checked";
}

TEST(Enclosure, ForwardAtFourTimesThePrecisionLiesInsideTheBalls) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = test::tiny_config(2);
  c.qkv_bias = true;
  const Model model = make_synthetic_model(c, test::test_seed());
  const std::vector<int> tokens = {3, 17, 0, 31, 17, 9, 4};
  check_forward(model, tokens, std::nullopt);
  check_forward(model, tokens, "q8_0");
  check_forward(model, tokens, "q4_0+hot=3");
  check_forward(model, tokens, "q8_0+rot=orthogonal:3");  // the rotations' projections and model-basis taps
  // Llama 3 RoPE scaling (every band: see tiny-llama3), through its clamp and constants.
  c.qkv_bias = false, c.rope_theta = 500000.0, c.rope_scaling = RopeScaling{8, 1, 4, 64};
  check_forward(make_synthetic_model(c, test::test_seed()), tokens, std::nullopt);
}

// An evicting cache (a KV policy's eviction on its stored forms): the scores, softmax
// and outputs over the keys kept, with every decision proven on the scores' balls
// (evicting_attention.h), so the 4 P forward, deciding on its own values, evicts the same
// keys and lies inside the balls. Each score-based policy and the positional one.
TEST(Enclosure, EvictingCacheForwardAtFourTimesThePrecisionLiesInsideTheBalls) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(2), test::test_seed());
  const std::vector<int> tokens = {3, 17, 0, 31, 17, 9, 4};
  for (const char* spec : {"q8_0+evict=h2o:3", "f32+evict=tova:3", "bf16+evict=snapkv:3,2,3", "int8_32+evict=knorm:3",
                           "f16+evict=streaming:1,3"})
    check_forward(model, tokens, spec);
}

// Gemma 2's block (tiny-gemma2: embed scale, 1 + w gains, post-norms, GeGLU, the score
// scale, both soft-caps, a window on layer 0), with and without a KV policy.
TEST(Enclosure, Gemma2ForwardAtFourTimesThePrecisionLiesInsideTheBalls) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(synthetic_shape("tiny-gemma2"), test::test_seed());
  const std::vector<int> tokens = {3, 17, 0, 31, 17, 9, 4};
  check_forward(model, tokens, std::nullopt);
  check_forward(model, tokens, "q8_0+hot=2");
}

// Latent attention (tiny-mla: a low-rank query, the latent's norm, RoPE on the rope
// parts only, values narrower than keys), and its full-rank query form.
TEST(Enclosure, LatentAttentionForwardAtFourTimesThePrecisionLiesInsideTheBalls) {
  SCOPED_TRACE(test::seed_trace());
  ModelConfig c = synthetic_shape("tiny-mla");
  const std::vector<int> tokens = {3, 17, 0, 31, 17, 9, 4};
  check_forward(make_synthetic_model(c, test::test_seed()), tokens, std::nullopt);
  c.mla.q_lora_rank = 0;
  check_forward(make_synthetic_model(c, test::test_seed()), tokens, std::nullopt);
}

// The schedule's rule on hand-made rows of dim 4, x = {1, 0.5, -3, 0}: the largest |x|
// has EXP 2, so a largest radius of EXP e leaves 2 - e - 1 = 1 - e bits; the stage gets
// those bits + kScheduleGuardBits rounded up to whole limbs, between one limb and the
// ceiling, the fewest over the rows, and the ceiling when nothing bounds it.
constexpr mpfr_prec_t kScheduleCeiling = 256;

TEST(Enclosure, SchedulePicksTheLimbsTheRadiiLeaveWorthComputing) {
  ExponentRangeScope range;
  constexpr std::size_t kDim = 4;
  // One row per entry of radius_exp: its largest radius has that EXP (LONG_MIN: exact row).
  auto pick = [&](std::vector<long> radius_exp, mpfr_prec_t ceiling) {
    const std::size_t rows = radius_exp.size();
    MpArray x(rows * kDim, 64), r = exact_radii(rows * kDim);
    for (std::size_t t = 0; t < rows; ++t) {
      mpfr_set_d(x[t * kDim + 0], 1.0, MPFR_RNDN);
      mpfr_set_d(x[t * kDim + 1], 0.5, MPFR_RNDN);
      mpfr_set_d(x[t * kDim + 2], -3.0, MPFR_RNDN);
      mpfr_set_zero(x[t * kDim + 3], 1);
      if (radius_exp[t] != LONG_MIN) mpfr_set_ui_2exp(r[t * kDim + 1], 1, radius_exp[t] - 1, MPFR_RNDN);  // EXP = radius_exp
    }
    return scheduled_precision(x, r, rows, kDim, ceiling);
  };
  EXPECT_EQ(pick({-59}, kScheduleCeiling), 128);   // 60 bits + 8 = 68: two limbs (without the guard, one)
  EXPECT_EQ(pick({-119}, kScheduleCeiling), 128);  // 120 + 8 = 128: two limbs exactly
  EXPECT_EQ(pick({-120}, kScheduleCeiling), 192);  // 121 + 8 = 129: three
  EXPECT_EQ(pick({-499}, kScheduleCeiling), kScheduleCeiling);  // 500 + 8 bits: eight limbs, above the ceiling
  EXPECT_EQ(pick({6}, kScheduleCeiling), 64);           // the radius passed the value: one limb
  EXPECT_EQ(pick({-120, -59}, kScheduleCeiling), 128);  // the fewest bits over the rows
  EXPECT_EQ(pick({LONG_MIN, LONG_MIN}, kScheduleCeiling), kScheduleCeiling);  // exact rows bound nothing
  EXPECT_EQ(pick({-59}, 100), 100);                           // never above the run's precision
  MpArray x(kDim, 64), r = exact_radii(kDim);
  mpfr_set_d(x[0], 1.0, MPFR_RNDN);
  mpfr_set_inf(r[1], 1);
  EXPECT_EQ(scheduled_precision(x, r, 1, kDim, kScheduleCeiling), kScheduleCeiling);  // an unbounded radius
  mpfr_set_zero(x[0], 1);
  mpfr_set_ui_2exp(r[1], 1, -80, MPFR_RNDN);
  EXPECT_EQ(scheduled_precision(x, r, 1, kDim, kScheduleCeiling), kScheduleCeiling);  // a radius around zeros only
}

// The precision schedule (mp_forward.cpp): on a model deep enough for the radii to
// outgrow a limb of the working precision, the later layers and the logits compute at
// fewer limbs, never rising again; every value of the 4 P run still lies inside its ball
// (check_forward's run schedules the same way); and the radii stay those of the run
// without the schedule but for its guard: each scheduled stage adds at most
// 2^-kScheduleGuardBits of the radius its input carries, so over the 11 stages the
// logits' largest radius may grow by (1 + 2^-8)^11 < 1.05 -- kScheduledRadiusGrowth
// leaves room for the rows whose radii are below their row's largest.
constexpr int kScheduledLayers = 10;
constexpr mpfr_prec_t kScheduledP = 128;
constexpr double kScheduledRadiusGrowth = 1.25;

// The logits' largest radius of an enclosed run at kScheduledP, and the stage precisions.
std::pair<double, std::vector<int>> scheduled_run(const Model& model, const std::vector<int>& tokens, bool schedule) {
  ExponentRangeScope range;
  MpForwardOptions o;
  o.arith = MpArith::exact(kScheduledP);
  o.enclose = true;
  o.precision_schedule = schedule;
  const MpWeights weights = to_mp_weights(model, weight_precision_for(kScheduledP));
  MpForwardRun run(model, weights, tokens, o);
  while (run.layers_left() > 0) run.run_layer();
  MpArray radii;
  run.logits(0, int(tokens.size()), &radii);
  double largest = 0;
  for (std::size_t i = 0; i < radii.size(); ++i) largest = std::max(largest, mpfr_get_d(radii[i], MPFR_RNDU));
  return {largest, run.stage_precisions()};
}

TEST(Enclosure, ScheduledLayersComputeAtFewerLimbsAndStaySound) {
  SCOPED_TRACE(test::seed_trace());
  const Model model = make_synthetic_model(test::tiny_config(kScheduledLayers), test::test_seed());
  const std::vector<int> tokens = {3, 17, 0, 31, 17, 9, 4};
  const auto [scheduled_radius, p] = scheduled_run(model, tokens, true);
  const auto [plain_radius, plain] = scheduled_run(model, tokens, false);
  ASSERT_EQ(p.size(), std::size_t(kScheduledLayers + 1));
  EXPECT_EQ(p.front(), kScheduledP);
  EXPECT_LT(p.back(), kScheduledP) << "no stage dropped a limb: the model is too shallow to test the schedule";
  EXPECT_TRUE(std::is_sorted(p.rbegin(), p.rend())) << "a stage rose again";
  for (int bits : p) EXPECT_EQ(bits % 64, 0);
  EXPECT_EQ(plain, std::vector<int>(kScheduledLayers + 1, int(kScheduledP)));
  EXPECT_GT(scheduled_radius, 0.0);
  EXPECT_LE(scheduled_radius, kScheduledRadiusGrowth * plain_radius) << "unscheduled " << plain_radius;
  check_forward(model, tokens, std::nullopt, kScheduledP);
}

// A ball is certified exactly when both of its ends round to its midpoint's float64.
TEST(Enclosure, BallCertificationFollowsTheRoundingInterval) {
  ExponentRangeScope range;
  MpArray m(1, 128), r = exact_radii(1);
  // m = 1 + 2^-53 + 2^-70: 2^-70 above the midpoint between 1 and its successor.
  mpfr_set_ui(m[0], 1, MPFR_RNDN);
  mpfr_add_d(m[0], m[0], 0x1p-53, MPFR_RNDN);
  mpfr_add_d(m[0], m[0], 0x1p-70, MPFR_RNDN);
  mpfr_set_d(r[0], 0x1p-72, MPFR_RNDU);
  EXPECT_TRUE(ball_rounds_correctly(m[0], r[0]));
  mpfr_set_d(r[0], 0x1p-69, MPFR_RNDU);
  EXPECT_FALSE(ball_rounds_correctly(m[0], r[0]));
  mpfr_set_zero(r[0], 1);
  EXPECT_TRUE(ball_rounds_correctly(m[0], r[0]));  // exact
  mpfr_set_inf(r[0], 1);
  EXPECT_FALSE(ball_rounds_correctly(m[0], r[0]));
  mpfr_set_zero(m[0], 1);
  mpfr_set_ui_2exp(r[0], 1, -1100, MPFR_RNDU);
  EXPECT_FALSE(ball_rounds_correctly(m[0], r[0]));  // the sign of the zero is unknown
}

}  // namespace
}  // namespace kvfid::ref
