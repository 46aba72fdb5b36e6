// The exact accumulator against an independent oracle (MPFR products at P + 53 bits and
// a sum at a precision covering every term's bits, both checked exact by their ternary
// values, then one rounding to P), and its order independence: permutations, splits
// over threads, merges in any order and byte round trips give the same bits.
// Properties run under RapidCheck with KVFID_SEED (default test::kDefaultSeed); a
// failure prints the counterexample and the seed.
#include "reference/mp/exact_accumulator.h"

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <sstream>
#include <stdexcept>
#include <thread>
#include <vector>

#include <gmp.h>
#include <gtest/gtest.h>
#include <rapidcheck.h>

#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/projection.h"
#include "tests/common/test_env.h"

namespace kvfid::ref {
namespace {

constexpr int kCases = 150;  // per property: a few seconds in all

template <class Property>
void check_property(Property&& property) {
  rc::detail::TestParams params = rc::detail::configuration().testParams;
  params.seed = test::test_seed();
  params.maxSuccess = kCases;
  rc::detail::TestMetadata metadata;
  metadata.id = ::testing::UnitTest::GetInstance()->current_test_info()->name();
  const rc::detail::TestResult result = rc::detail::checkTestable(std::forward<Property>(property), metadata, params);
  if (!result.is<rc::detail::SuccessResult>()) {
    std::ostringstream message;
    rc::detail::printResultMessage(result, message);
    ADD_FAILURE() << message.str() << "\n" << test::seed_trace();
  }
}

// One term w * x, x described by its significand limbs so RapidCheck can print and shrink it.
struct Term {
  double w = 0;
  std::vector<std::uint64_t> x_limbs;  // little-endian integer significand, empty for x = 0
  long x_exp = 0;                      // x = (+-) integer * 2^x_exp
  bool x_negative = false;
};

std::ostream& operator<<(std::ostream& o, const Term& t) {
  o << "{w " << t.w << ", x " << (t.x_negative ? "-" : "+") << "[";
  for (std::uint64_t l : t.x_limbs) o << std::hex << l << std::dec << " ";
  return o << "] * 2^" << t.x_exp << "}";
}

// x_limbs as an integer of at most `precision` bits (the top bits beyond it cleared).
void set_x(mpfr_ptr x, const Term& t, mpfr_prec_t precision) {
  if (t.x_limbs.empty()) {
    mpfr_set_zero(x, t.x_negative ? -1 : 1);
    return;
  }
  std::vector<mp_limb_t> limbs(t.x_limbs.begin(), t.x_limbs.end());
  const std::size_t used = std::size_t(precision / 64), extra = std::size_t(precision % 64);
  if (limbs.size() > used) {
    limbs.resize(used + (extra ? 1 : 0));
    if (extra) limbs.back() &= (mp_limb_t(1) << extra) - 1;
  }
  while (!limbs.empty() && limbs.back() == 0) limbs.pop_back();
  mpz_t z;
  mpz_roinit_n(z, limbs.data(), t.x_negative ? -mp_size_t(limbs.size()) : mp_size_t(limbs.size()));
  const int ternary = mpfr_set_z_2exp(x, z, t.x_exp, MPFR_RNDN);
  RC_ASSERT(ternary == 0);  // at most `precision` bits: exact
}

// Exponents within +-span; weights with all 53 bits, a few bits (stored formats), zeros
// and subnormals; activations with random significands of P bits and zeros.
rc::Gen<Term> gen_term(mpfr_prec_t precision, int span) {
  return rc::gen::exec([=] {
    Term t;
    const int w_kind = *rc::gen::inRange(0, 10);
    const double sign = *rc::gen::arbitrary<bool>() ? -1.0 : 1.0;
    if (w_kind == 0) {
      t.w = 0.0 * sign;
    } else if (w_kind == 1) {  // subnormal
      t.w = sign * std::ldexp(double(*rc::gen::inRange<std::uint64_t>(1, std::uint64_t(1) << 52)), -1074);
    } else {
      std::uint64_t m = *rc::gen::inRange<std::uint64_t>(0, std::uint64_t(1) << 53);
      if (w_kind == 2) m >>= 45;  // 8 bits, like a bf16 weight
      t.w = sign * std::ldexp(double(m), *rc::gen::inRange(-span, span + 1) - 52);
    }
    if (*rc::gen::inRange(0, 10) != 0) {
      const std::size_t limbs = std::size_t((precision + 63) / 64);
      for (std::size_t i = 0; i < limbs; ++i) t.x_limbs.push_back(*rc::gen::arbitrary<std::uint64_t>());
      t.x_exp = *rc::gen::inRange(-span, span + 1) - long(precision);
    }
    t.x_negative = *rc::gen::arbitrary<bool>();
    return t;
  });
}

// Terms, then exact negations of some of them (cancellation), shuffled.
rc::Gen<std::vector<Term>> gen_terms(mpfr_prec_t precision, int span) {
  return rc::gen::exec([=] {
    std::vector<Term> terms = *rc::gen::container<std::vector<Term>>(gen_term(precision, span));
    const std::size_t n = terms.size();
    for (std::size_t i = 0; i < n; ++i)
      if (*rc::gen::inRange(0, 3) == 0) {
        Term negated = terms[i];
        negated.w = -negated.w;
        terms.push_back(negated);
      }
    return terms;
  });
}

struct Inputs {
  std::vector<double> w;  // [n]
  MpArray x;              // [n] at P
};

Inputs build(const std::vector<Term>& terms, mpfr_prec_t precision) {
  Inputs in{std::vector<double>(terms.size()), MpArray(terms.size(), precision)};
  for (std::size_t i = 0; i < terms.size(); ++i) {
    in.w[i] = terms[i].w;
    set_x(in.x[i], terms[i], precision);
  }
  return in;
}

// The oracle: every product exactly (at the sum of the operands' precisions), summed at a
// precision spanning all of their bits (plus carries), so no operation rounds (each
// ternary checked), then one rounding to y's precision.
int oracle_sum(mpfr_ptr y, const MpArray& products, mpfr_rnd_t rnd) {
  long top = std::numeric_limits<long>::min(), bottom = std::numeric_limits<long>::max();
  for (std::size_t i = 0; i < products.size(); ++i) {
    if (mpfr_zero_p(products[i])) continue;
    top = std::max(top, long(mpfr_get_exp(products[i])));
    bottom = std::min(bottom, long(mpfr_get_exp(products[i])) - long(products.precision()));
  }
  if (top < bottom) return mpfr_set_zero(y, 1), 0;
  MpArray sum(1, mpfr_prec_t(top - bottom + 64));  // 64 carry bits: far more than log2(n)
  for (std::size_t i = 0; i < products.size(); ++i) RC_ASSERT(mpfr_add(sum[0], sum[0], products[i], MPFR_RNDN) == 0);
  return mpfr_set(y, sum[0], rnd);
}

int oracle_dot(mpfr_ptr y, const Inputs& in, mpfr_rnd_t rnd) {
  MpArray products(in.w.size(), in.x.precision() + 53), w(1, 53);
  for (std::size_t i = 0; i < in.w.size(); ++i) {
    mpfr_set_d(w[0], in.w[i], MPFR_RNDN);
    RC_ASSERT(mpfr_mul(products[i], w[0], in.x[i], MPFR_RNDN) == 0);
  }
  return oracle_sum(y, products, rnd);
}

bool same_bits(mpfr_srcptr a, mpfr_srcptr b) {
  return mpfr_equal_p(a, b) && mpfr_signbit(a) == mpfr_signbit(b) && mpfr_get_prec(a) == mpfr_get_prec(b);
}

ExactAccumulator accumulate(const Inputs& in, const std::vector<std::size_t>& order) {
  ExactAccumulator acc;
  for (std::size_t i : order) acc.add(in.w[i], in.x[i]);
  return acc;
}

std::vector<std::size_t> identity(std::size_t n) {
  std::vector<std::size_t> order(n);
  for (std::size_t i = 0; i < n; ++i) order[i] = i;
  return order;
}

const std::vector<mpfr_rnd_t> kModes = {MPFR_RNDN, MPFR_RNDZ, MPFR_RNDU, MPFR_RNDD, MPFR_RNDA};

TEST(ExactAccumulator, EqualsTheOracleForEveryRoundingMode) {
  ExponentRangeScope range;
  check_property([] {
    const mpfr_prec_t p = *rc::gen::element<mpfr_prec_t>(53, 128, 192);
    const int span = *rc::gen::element(4, 60, 700);
    const Inputs in = build(*gen_terms(p, span), p);
    const mpfr_rnd_t rnd = *rc::gen::elementOf(kModes);
    MpArray got(1, p), want(1, p);
    const int got_ternary = accumulate(in, identity(in.w.size())).round_to(got[0], rnd);
    const int want_ternary = oracle_dot(want[0], in, rnd);
    RC_ASSERT(same_bits(got[0], want[0]));
    RC_ASSERT((got_ternary > 0) == (want_ternary > 0));
    RC_ASSERT((got_ternary < 0) == (want_ternary < 0));
    if (rnd == MPFR_RNDN) {  // the convenience entry point, on the MpArray's contiguous elements
      ExactAccumulator scratch;
      exact_dot(got[0], in.w.data(), in.x.data(), in.w.size(), scratch);
      RC_ASSERT(same_bits(got[0], want[0]));
    }
  });
}

// MPFR x MPFR products (the attention's and RMSNorm's dots), operands of two precisions.
TEST(ExactAccumulator, MpfrProductsEqualTheOracle) {
  ExponentRangeScope range;
  check_property([] {
    const mpfr_prec_t pa = *rc::gen::element<mpfr_prec_t>(64, 128, 192), pb = *rc::gen::element<mpfr_prec_t>(53, 128);
    const std::vector<Term> a_terms = *gen_terms(pa, 300);
    const std::vector<Term> b_terms = *rc::gen::container<std::vector<Term>>(a_terms.size(), gen_term(pb, 300));
    const Inputs a = build(a_terms, pa), b = build(b_terms, pb);
    ExactAccumulator acc;
    MpArray products(a.w.size(), pa + pb);
    for (std::size_t i = 0; i < a.w.size(); ++i) {
      acc.add(a.x[i], b.x[i]);
      RC_ASSERT(mpfr_mul(products[i], a.x[i], b.x[i], MPFR_RNDN) == 0);
    }
    MpArray got(1, pa), want(1, pa);
    acc.round_to(got[0], MPFR_RNDN);
    oracle_sum(want[0], products, MPFR_RNDN);
    RC_ASSERT(same_bits(got[0], want[0]));
  });
}

TEST(ExactAccumulator, AnyPermutationGivesTheSameBits) {
  check_property([] {
    const mpfr_prec_t p = *rc::gen::element<mpfr_prec_t>(128, 192);
    const Inputs in = build(*gen_terms(p, *rc::gen::element(10, 700)), p);
    std::vector<std::size_t> order = identity(in.w.size());
    std::shuffle(order.begin(), order.end(), std::mt19937_64(*rc::gen::arbitrary<std::uint64_t>()));
    const ExactAccumulator a = accumulate(in, identity(in.w.size())), b = accumulate(in, order);
    RC_ASSERT(a.to_bytes() == b.to_bytes());
    MpArray ya(1, p), yb(1, p);
    a.round_to(ya[0], MPFR_RNDN);
    b.round_to(yb[0], MPFR_RNDN);
    RC_ASSERT(same_bits(ya[0], yb[0]));
  });
}

// Terms dealt to 1..3 threads, each with its own accumulator; the partials merged in a
// random order, some of them after a trip through bytes.
TEST(ExactAccumulator, ThreadSplitsAndMergeOrdersGiveTheSameBits) {
  check_property([] {
    const mpfr_prec_t p = *rc::gen::element<mpfr_prec_t>(128, 192);
    const Inputs in = build(*gen_terms(p, *rc::gen::element(10, 700)), p);
    const int parts = *rc::gen::inRange(1, 4);
    std::vector<std::vector<std::size_t>> dealt(static_cast<std::size_t>(parts));
    for (std::size_t i = 0; i < in.w.size(); ++i) dealt[std::size_t(*rc::gen::inRange(0, parts))].push_back(i);
    std::vector<ExactAccumulator> partial(static_cast<std::size_t>(parts));
    std::vector<std::thread> threads;
    for (int k = 0; k < parts; ++k)
      threads.emplace_back([&, k] { partial[std::size_t(k)] = accumulate(in, dealt[std::size_t(k)]); });
    for (std::thread& t : threads) t.join();
    std::vector<std::size_t> merge_order = identity(static_cast<std::size_t>(parts));
    std::shuffle(merge_order.begin(), merge_order.end(), std::mt19937_64(*rc::gen::arbitrary<std::uint64_t>()));
    const bool via_bytes = *rc::gen::arbitrary<bool>();
    ExactAccumulator merged;
    for (std::size_t k : merge_order)
      merged.merge(via_bytes ? ExactAccumulator::from_bytes(partial[k].to_bytes()) : partial[k]);
    const ExactAccumulator whole = accumulate(in, identity(in.w.size()));
    RC_ASSERT(merged.to_bytes() == whole.to_bytes());
    RC_ASSERT(merged.terms() == in.w.size());
    MpArray ym(1, p), yw(1, p);
    merged.round_to(ym[0], MPFR_RNDN);
    whole.round_to(yw[0], MPFR_RNDN);
    RC_ASSERT(same_bits(ym[0], yw[0]));
  });
}

TEST(ExactAccumulator, BytesRoundTrip) {
  check_property([] {
    const mpfr_prec_t p = *rc::gen::element<mpfr_prec_t>(53, 128);
    const Inputs in = build(*gen_terms(p, 700), p);
    const ExactAccumulator a = accumulate(in, identity(in.w.size()));
    const std::string bytes = a.to_bytes();
    const ExactAccumulator b = ExactAccumulator::from_bytes(bytes);
    RC_ASSERT(b.to_bytes() == bytes);
    RC_ASSERT(b.terms() == a.terms());
    MpArray ya(1, p), yb(1, p);
    a.round_to(ya[0], MPFR_RNDN);
    b.round_to(yb[0], MPFR_RNDN);
    RC_ASSERT(same_bits(ya[0], yb[0]));
  });
}

// Sums exactly halfway between two P-bit numbers: s * (v + ulp(v)/2), built from a P-bit
// v > 0, the half ulp split into two pieces and a large cancelling pair, in any order.
// Round to nearest must pick the neighbour with an even significand.
TEST(ExactAccumulator, TiesRoundToEven) {
  ExponentRangeScope range;
  check_property([] {
    const mpfr_prec_t p = *rc::gen::element<mpfr_prec_t>(128, 192);
    Term v_term = *gen_term(p, 40);
    RC_PRE(!v_term.x_limbs.empty());
    v_term.x_limbs.back() |= std::uint64_t(1) << 63;  // exactly p bits (p a multiple of 64): ulp = 2^x_exp
    v_term.x_negative = false;
    const double s = *rc::gen::arbitrary<bool>() ? -1.0 : 1.0;
    MpArray v(1, p), one(1, 53), want(1, p), got(1, p);
    set_x(v[0], v_term, p);
    mpfr_set_ui(one[0], 1, MPFR_RNDN);
    const double quarter = std::ldexp(1.0, int(v_term.x_exp - 2));  // two of them make half an ulp
    const double big = std::ldexp(1.0, int(v_term.x_exp) + int(p) + 100);
    std::vector<std::pair<double, mpfr_srcptr>> terms = {
        {s, v[0]}, {s * quarter, one[0]}, {big, one[0]}, {s * quarter, one[0]}, {-big, one[0]}};
    std::shuffle(terms.begin(), terms.end(), std::mt19937_64(*rc::gen::arbitrary<std::uint64_t>()));
    ExactAccumulator acc;
    for (const auto& [w, x] : terms) acc.add(w, x);
    acc.round_to(got[0], MPFR_RNDN);
    mpfr_set(want[0], v[0], MPFR_RNDN);
    if (v_term.x_limbs[0] & 1) mpfr_nextabove(want[0]);  // v odd: the even neighbour is v + ulp
    if (s < 0) mpfr_neg(want[0], want[0], MPFR_RNDN);
    RC_ASSERT(same_bits(got[0], want[0]));
  });
}

TEST(ExactAccumulator, ExactZeroSumIsPositiveZero) {
  MpArray x(2, 128), y(1, 128);
  mpfr_set_d(x[0], 3.0, MPFR_RNDN);
  mpfr_set_d(x[1], -0.0, MPFR_RNDN);
  ExactAccumulator acc;
  acc.add(-1.5, x[0]);
  acc.add(1.5, x[0]);
  acc.add(2.0, x[1]);
  EXPECT_EQ(acc.round_to(y[0], MPFR_RNDN), 0);
  EXPECT_TRUE(mpfr_zero_p(y[0]) && !mpfr_signbit(y[0]));
  EXPECT_EQ(acc.terms(), 3u);
  EXPECT_EQ(acc.to_bytes().size(), ExactAccumulator().to_bytes().size());  // no limbs: a canonical zero
}

TEST(ExactAccumulator, NonFiniteOperandsAreRejected) {
  MpArray x(2, 128);
  mpfr_set_d(x[0], 1.0, MPFR_RNDN);
  mpfr_set_nan(x[1]);
  ExactAccumulator acc;
  EXPECT_THROW(acc.add(std::nan(""), x[0]), std::domain_error);
  EXPECT_THROW(acc.add(std::numeric_limits<double>::infinity(), x[0]), std::domain_error);
  EXPECT_THROW(acc.add(1.0, x[1]), std::domain_error);
  EXPECT_THROW(acc.add(x[0], x[1]), std::domain_error);
  mpfr_set_inf(x[1], -1);
  EXPECT_THROW(acc.add(0.0, x[1]), std::domain_error);
}

TEST(ExactAccumulator, AnAbsurdExponentSpanIsRefused) {
  ExponentRangeScope range;
  MpArray x(2, 128);
  mpfr_set_ui_2exp(x[0], 1, -(ExactAccumulator::kMaxWindowBits / 2), MPFR_RNDN);
  mpfr_set_ui_2exp(x[1], 1, ExactAccumulator::kMaxWindowBits / 2, MPFR_RNDN);
  ExactAccumulator acc;
  acc.add(1.0, x[0]);
  EXPECT_THROW(acc.add(1.0, x[1]), std::range_error);
}

TEST(ExactAccumulator, MalformedBytesAreRejected) {
  MpArray x(1, 128);
  mpfr_set_d(x[0], -0.75, MPFR_RNDN);
  ExactAccumulator acc;
  acc.add(3.0, x[0]);
  const std::string good = acc.to_bytes();
  EXPECT_NO_THROW(ExactAccumulator::from_bytes(good));
  EXPECT_THROW(ExactAccumulator::from_bytes(good.substr(0, good.size() - 1)), std::invalid_argument);
  EXPECT_THROW(ExactAccumulator::from_bytes(good.substr(0, 10)), std::invalid_argument);
  std::string wrong_magic = good;
  wrong_magic[0] = 'X';
  EXPECT_THROW(ExactAccumulator::from_bytes(wrong_magic), std::invalid_argument);
  std::string redundant = good;  // one more zero limb on top: not canonical
  redundant[22] = char(redundant[22] + 1);  // the limb count's low byte
  redundant += std::string(8, '\0');
  EXPECT_THROW(ExactAccumulator::from_bytes(redundant), std::invalid_argument);
  std::string bad_sign = good;
  bad_sign[13] = 2;
  EXPECT_THROW(ExactAccumulator::from_bytes(bad_sign), std::invalid_argument);
}

// The forward's uses: MpArith::exact's dot and the projection equal the oracle, for 1 and
// 2 threads, with a bias inside the one rounding.
TEST(ExactAccumulator, ProjectionAndArithDotAreCorrectlyRounded) {
  SCOPED_TRACE(test::seed_trace());
  ExponentRangeScope range;
  constexpr mpfr_prec_t p = 128;
  constexpr int rows = 5, cols = 37, tokens = 3;
  std::mt19937_64 rng(test::test_seed());
  auto draw = [&](mpfr_ptr v, int spread) {
    mpfr_set_si_2exp(v, long(rng() >> 11) - (1l << 52), int(rng() % unsigned(2 * spread)) - spread - 52, MPFR_RNDN);
  };
  MpArray wv(std::size_t(rows) * cols, p);  // [rows, cols] the weights in MPFR (float64 values)
  MpArray x(std::size_t(tokens) * cols, p), bias(rows, p);
  for (std::size_t i = 0; i < wv.size(); ++i) draw(wv[i], 30);
  Matrix wm(rows, cols);  // the same weights as the model holds them
  for (std::size_t i = 0; i < wv.size(); ++i) wm.mutable_values()[i] = mpfr_get_d(wv[i], MPFR_RNDN);  // exact
  for (std::size_t i = 0; i < x.size(); ++i) {
    draw(x[i], 30);
    mpfr_mul_2si(x[i], x[i], long(rng() % 40), MPFR_RNDN);  // P-bit values, not float64s
    mpfr_nextabove(x[i]);
  }
  for (int r = 0; r < rows; ++r) draw(bias[r], 10);
  const MpArith arith = MpArith::exact(p);
  MpArray one_thread(std::size_t(tokens) * rows, p), two_threads(std::size_t(tokens) * rows, p), want(1, p),
      dot(1, p);
  project(one_thread, MpMatrixRef{wm, p}, x, bias, tokens, arith, 1);
  project(two_threads, MpMatrixRef{wm, p}, x, bias, tokens, arith, 2);
  for (int t = 0; t < tokens; ++t)
    for (int r = 0; r < rows; ++r) {
      Inputs in{std::vector<double>(cols + 1), MpArray(cols + 1, p)};
      for (int c = 0; c < cols; ++c) {
        in.w[c] = mpfr_get_d(wv[std::size_t(r) * cols + c], MPFR_RNDN);
        mpfr_set(in.x[c], x[std::size_t(t) * cols + c], MPFR_RNDN);
      }
      in.w[cols] = 1.0;
      mpfr_set(in.x[cols], bias[r], MPFR_RNDN);
      oracle_dot(want[0], in, MPFR_RNDN);
      const std::size_t i = std::size_t(t) * rows + r;
      EXPECT_TRUE(same_bits(one_thread[i], want[0])) << "token " << t << " row " << r;
      EXPECT_TRUE(same_bits(two_threads[i], want[0])) << "token " << t << " row " << r;
      // The same dot through MpArith (MPFR x MPFR products), without the bias.
      arith.dot(dot[0], wv[std::size_t(r) * cols], 1, x[std::size_t(t) * cols], 1, cols, nullptr);
      in.w[cols] = 0.0;
      oracle_dot(want[0], in, MPFR_RNDN);
      EXPECT_TRUE(same_bits(dot[0], want[0])) << "token " << t << " row " << r;
    }
}

}  // namespace
}  // namespace kvfid::ref
