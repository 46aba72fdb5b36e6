#include "reference/mp/exact_accumulator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <gmp.h>

namespace kvfid::ref {

namespace {

static_assert(sizeof(mp_limb_t) == 8 && GMP_NUMB_BITS == 64, "the accumulator works in 64-bit limbs without nails");

constexpr std::int64_t kMaxWindowLimbs = ExactAccumulator::kMaxWindowBits / 64;
constexpr std::uint64_t kMaxTerms = std::uint64_t(1) << 63;  // see Range in the header
// Limbs added below and above a window when it grows, so terms a little smaller or larger
// than the first do not regrow it every time.
constexpr std::int64_t kGrowthSlackLimbs = 2;

// Serialized form, all little-endian: magic, version, terms (u64), sign (u8: 1 negative),
// base (i64: limb index of the lowest limb), limb count (u64), |value|'s limbs (u64 each),
// lowest and highest limb nonzero; zero is sign 0, base 0, no limbs.
constexpr char kMagic[4] = {'K', 'V', 'X', 'A'};
constexpr unsigned char kVersion = 1;
constexpr std::size_t kHeaderBytes = 4 + 1 + 8 + 1 + 8 + 8;

void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) out.push_back(char((v >> (8 * i)) & 0xff));
}

std::uint64_t get_u64(std::string_view in, std::size_t at) {
  std::uint64_t v = 0;
  for (int i = 0; i < 8; ++i) v |= std::uint64_t(static_cast<unsigned char>(in[at + i])) << (8 * i);
  return v;
}

const mp_limb_t* significand(mpfr_srcptr x) { return static_cast<const mp_limb_t*>(mpfr_custom_get_significand(x)); }

std::size_t limbs_of(mpfr_srcptr x) { return std::size_t((mpfr_get_prec(x) + 63) / 64); }

// Whether x contributes: false for a zero; throws for NaN and infinities.
bool regular(mpfr_srcptr x) {
  if (mpfr_regular_p(x)) return true;
  if (mpfr_zero_p(x)) return false;
  throw std::domain_error("exact dot product: an operand is NaN or infinite");
}

// *a += v + carry_in; returns the carry out.
inline mp_limb_t add_with_carry(mp_limb_t* a, mp_limb_t v, mp_limb_t carry) {
  const unsigned __int128 t = (unsigned __int128)*a + v + carry;
  *a = mp_limb_t(t);
  return mp_limb_t(t >> 64);
}

// The carry into a, up to (not past) end.
inline void propagate(mp_limb_t* a, const mp_limb_t* end, mp_limb_t carry) {
  for (; carry && a != end; ++a) carry = ++*a == 0;
}

// a[0..nq] += q[0..nq) * 2^s (0 <= s < 64), then the carry up to end.
void shift_add(mp_limb_t* a, const mp_limb_t* end, const mp_limb_t* q, std::size_t nq, unsigned s) {
  mp_limb_t prev = 0, carry = 0;
  for (std::size_t i = 0; i <= nq; ++i) {
    const mp_limb_t cur = i < nq ? q[i] : 0;
    // (prev >> 1) >> (63 - s) is prev >> (64 - s) for s > 0 and 0 for s = 0, without the
    // undefined shift by 64.
    carry = add_with_carry(a + i, (cur << s) | ((prev >> 1) >> (63 - s)), carry);
    prev = cur;
  }
  propagate(a + nq + 1, end, carry);
}

// a[0..nx+1] += m * X * 2^s, X = x[0..nx), then the carry up to end: multiply, shift and
// add in one pass, nothing stored between. kLimbs > 0 fixes nx (unrolled loops for the
// golden's common precisions); 0 takes it at run time.
template <std::size_t kLimbs>
void multiply_shift_add(mp_limb_t* a, const mp_limb_t* end, const mp_limb_t* x, std::size_t nx, std::uint64_t m,
                        unsigned s) {
  if constexpr (kLimbs > 0) nx = kLimbs;
  mp_limb_t mul_carry = 0, prev = 0, carry = 0;
  for (std::size_t i = 0; i < nx; ++i) {
    const unsigned __int128 p = (unsigned __int128)x[i] * m + mul_carry;
    mul_carry = mp_limb_t(p >> 64);
    const mp_limb_t cur = mp_limb_t(p);
    carry = add_with_carry(a + i, (cur << s) | ((prev >> 1) >> (63 - s)), carry);
    prev = cur;
  }
  carry = add_with_carry(a + nx, (mul_carry << s) | ((prev >> 1) >> (63 - s)), carry);
  carry = add_with_carry(a + nx + 1, (mul_carry >> 1) >> (63 - s), carry);
  propagate(a + nx + 2, end, carry);
}

}  // namespace

void ExactAccumulator::clear() {
  pos_.clear();
  neg_.clear();
  base_ = 0;
  terms_ = 0;
}

void ExactAccumulator::count_terms(std::uint64_t n) {
  if (n >= kMaxTerms - terms_) throw std::overflow_error("exact dot product: 2^63 terms or more");
  terms_ += n;
}

void ExactAccumulator::grow(std::int64_t lo, std::int64_t hi) {
  const std::int64_t top = base_ + std::int64_t(pos_.size());  // first limb above the window
  const std::int64_t new_lo = pos_.empty() ? lo - kGrowthSlackLimbs : std::min(base_, lo - kGrowthSlackLimbs);
  const std::int64_t new_top = pos_.empty() ? hi + 2 + kGrowthSlackLimbs : std::max(top, hi + 2 + kGrowthSlackLimbs);
  if (new_top - new_lo > kMaxWindowLimbs)
    throw std::range_error("exact dot product: the terms' exponents span more than " +
                           std::to_string(kMaxWindowBits) + " bits");
  if (pos_.empty()) {  // keeps the capacity a cleared accumulator still holds
    pos_.assign(std::size_t(new_top - new_lo), 0);
    neg_.assign(std::size_t(new_top - new_lo), 0);
    base_ = new_lo;
    return;
  }
  for (std::vector<mp_limb_t>* v : {&pos_, &neg_}) {
    std::vector<mp_limb_t> grown(std::size_t(new_top - new_lo), 0);
    std::copy(v->begin(), v->end(), grown.begin() + (base_ - new_lo));
    v->swap(grown);
  }
  base_ = new_lo;
}

void ExactAccumulator::add(double w, mpfr_srcptr x) {
  if (!std::isfinite(w)) throw std::domain_error("exact dot product: a weight is NaN or infinite");
  const bool x_regular = regular(x);
  count_terms(1);
  if (w == 0.0 || !x_regular) return;
  // w = m * 2^ew with m an integer below 2^53 (subnormals: biased exponent 0, no hidden bit).
  const std::uint64_t bits = std::bit_cast<std::uint64_t>(w);
  const int biased = int((bits >> 52) & 0x7ff);
  const std::uint64_t m = (bits & ((std::uint64_t(1) << 52) - 1)) | (biased ? std::uint64_t(1) << 52 : 0);
  const std::int64_t ew = (biased ? biased : 1) - 1075;
  const std::size_t nx = limbs_of(x);
  // |x| = X * 2^(EXP(x) - 64 nx); EXP(x) lies within +-2^62, so e cannot overflow. The
  // product m * X has nx + 1 limbs; shifted by e mod 64 it spans limbs k..k+nx+1.
  const std::int64_t e = ew + std::int64_t(mpfr_get_exp(x)) - 64 * std::int64_t(nx);
  const std::int64_t k = e >> 6;  // floor(e / 64): C++20 shifts signed values arithmetically
  cover(k, k + std::int64_t(nx) + 1);
  std::vector<mp_limb_t>& sum = (bits >> 63) != std::uint64_t(mpfr_signbit(x) ? 1 : 0) ? neg_ : pos_;
  mp_limb_t* a = sum.data() + (k - base_);
  const mp_limb_t* end = sum.data() + sum.size();
  const mp_limb_t* xs = significand(x);
  const unsigned s = unsigned(e & 63);
  switch (nx) {
    case 1: return multiply_shift_add<1>(a, end, xs, nx, m, s);
    case 2: return multiply_shift_add<2>(a, end, xs, nx, m, s);
    case 3: return multiply_shift_add<3>(a, end, xs, nx, m, s);
    case 4: return multiply_shift_add<4>(a, end, xs, nx, m, s);
    default: return multiply_shift_add<0>(a, end, xs, nx, m, s);
  }
}

void ExactAccumulator::add(mpfr_srcptr a, mpfr_srcptr b) {
  const bool a_regular = regular(a), b_regular = regular(b);
  count_terms(1);
  if (!a_regular || !b_regular) return;
  std::size_t na = limbs_of(a), nb = limbs_of(b);
  const mp_limb_t *as = significand(a), *bs = significand(b);
  if (na < nb) {  // mpn_mul wants the longer operand first
    std::swap(na, nb);
    std::swap(as, bs);
  }
  product_.resize(na + nb);
  mpn_mul(product_.data(), as, mp_size_t(na), bs, mp_size_t(nb));
  std::int64_t e = 0;
  if (__builtin_add_overflow(std::int64_t(mpfr_get_exp(a)), std::int64_t(mpfr_get_exp(b)), &e) ||
      __builtin_sub_overflow(e, 64 * std::int64_t(na + nb), &e))
    throw std::range_error("exact dot product: a product's exponent is out of range");
  const std::int64_t k = e >> 6;
  cover(k, k + std::int64_t(na + nb));
  std::vector<mp_limb_t>& sum = mpfr_signbit(a) != mpfr_signbit(b) ? neg_ : pos_;
  shift_add(sum.data() + (k - base_), sum.data() + sum.size(), product_.data(), na + nb, unsigned(e & 63));
}

void ExactAccumulator::merge(const ExactAccumulator& other) {
  count_terms(other.terms_);
  if (other.pos_.empty()) return;
  const std::int64_t other_top = other.base_ + std::int64_t(other.pos_.size());
  cover(other.base_, other_top - 1);  // every limb of other, and one above it
  const std::size_t offset = std::size_t(other.base_ - base_);
  for (auto [mine, theirs] : {std::pair{&pos_, &other.pos_}, std::pair{&neg_, &other.neg_}}) {
    mp_limb_t* a = mine->data() + offset;
    const mp_limb_t carry = mpn_add_n(a, a, theirs->data(), mp_size_t(theirs->size()));
    propagate(a + theirs->size(), mine->data() + mine->size(), carry);
  }
}

bool ExactAccumulator::difference() const {
  scratch_.resize(pos_.size());
  if (pos_.empty()) return false;
  const mp_size_t n = mp_size_t(pos_.size());
  if (mpn_sub_n(scratch_.data(), pos_.data(), neg_.data(), n) == 0) return false;
  mpn_neg(scratch_.data(), scratch_.data(), n);  // borrow out: pos < neg, scratch_ held 2^(64n) - |value|
  return true;
}

int ExactAccumulator::round_to(mpfr_ptr y, mpfr_rnd_t rnd) const {
  const bool negative = difference();
  std::size_t n = scratch_.size();
  while (n > 0 && scratch_[n - 1] == 0) --n;
  if (n == 0) {
    mpfr_set_zero(y, 1);
    return 0;
  }
  mpz_t z;
  mpz_roinit_n(z, scratch_.data(), negative ? -mp_size_t(n) : mp_size_t(n));
  // base_ stays within +-2^57 limbs (terms' exponents are MPFR exponents), so 64 * base_ is a valid mpfr_exp_t.
  return mpfr_set_z_2exp(y, z, mpfr_exp_t(64 * base_), rnd);
}

std::string ExactAccumulator::to_bytes() const {
  const bool negative = difference();
  std::size_t lo = 0, hi = scratch_.size();
  while (lo < hi && scratch_[lo] == 0) ++lo;
  while (hi > lo && scratch_[hi - 1] == 0) --hi;
  std::string out(kMagic, sizeof kMagic);
  out.push_back(char(kVersion));
  put_u64(out, terms_);
  out.push_back(char(lo < hi && negative ? 1 : 0));
  put_u64(out, std::uint64_t(lo < hi ? base_ + std::int64_t(lo) : 0));
  put_u64(out, hi - lo);
  for (std::size_t i = lo; i < hi; ++i) put_u64(out, scratch_[i]);
  return out;
}

ExactAccumulator ExactAccumulator::from_bytes(std::string_view bytes) {
  auto bad = [](const std::string& what) { return std::invalid_argument("exact accumulator bytes: " + what); };
  if (bytes.size() < kHeaderBytes) throw bad("truncated header (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) throw bad("wrong magic");
  if (static_cast<unsigned char>(bytes[4]) != kVersion) throw bad("unknown version");
  const std::uint64_t terms = get_u64(bytes, 5);
  const unsigned char sign = static_cast<unsigned char>(bytes[13]);
  const std::int64_t base = std::int64_t(get_u64(bytes, 14));
  const std::uint64_t count = get_u64(bytes, 22);
  if (terms >= kMaxTerms) throw bad("term count out of range");
  if (sign > 1) throw bad("sign byte " + std::to_string(sign));
  if (count >= std::uint64_t(kMaxWindowLimbs) || bytes.size() != kHeaderBytes + 8 * count)
    throw bad("limb count " + std::to_string(count) + " does not match " + std::to_string(bytes.size()) + " bytes");
  // Limb indices of sums of MPFR products stay within +-2^57 (exponents within +-2^63).
  constexpr std::int64_t kMaxBase = std::int64_t(1) << 57;
  if (base < -kMaxBase || base > kMaxBase) throw bad("exponent out of range");
  ExactAccumulator acc;
  acc.terms_ = terms;
  if (count == 0) {
    if (base != 0 || sign != 0) throw bad("non-canonical zero");
    return acc;
  }
  std::vector<mp_limb_t> magnitude(count + 1, 0);  // and the headroom limb
  for (std::uint64_t i = 0; i < count; ++i) magnitude[i] = get_u64(bytes, kHeaderBytes + 8 * i);
  if (magnitude[0] == 0 || magnitude[count - 1] == 0) throw bad("non-canonical (a zero end limb)");
  acc.base_ = base;
  (sign ? acc.neg_ : acc.pos_) = std::move(magnitude);
  (sign ? acc.pos_ : acc.neg_).assign(count + 1, 0);
  return acc;
}

int exact_dot(mpfr_ptr y, const double* w, mpfr_srcptr x, std::size_t n, ExactAccumulator& acc, mpfr_srcptr addend) {
  acc.clear();
  for (std::size_t j = 0; j < n; ++j) acc.add(w[j], x + j);
  if (addend) acc.add(1.0, addend);
  return acc.round_to(y, MPFR_RNDN);
}

}  // namespace kvfid::ref
