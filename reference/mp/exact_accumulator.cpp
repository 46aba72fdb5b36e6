#include "reference/mp/exact_accumulator.h"

#include <algorithm>
#include <bit>
#include <cmath>
#include <cstring>
#include <stdexcept>

#include <gmp.h>

namespace kvfid {

namespace {

static_assert(sizeof(mp_limb_t) == 8 && GMP_NUMB_BITS == 64, "the accumulator works in 64-bit limbs without nails");

constexpr std::int64_t kMaxWindowLimbs = ExactAccumulator::kMaxWindowBits / 64;
constexpr std::uint64_t kMaxTerms = std::uint64_t(1) << 63;  // see Range in the header
// Limbs added below and above a window when it grows, so terms a little smaller or larger
// than the first do not regrow it every time.
constexpr std::int64_t kGrowthSlackLimbs = 2;

// Serialized form: magic, version, terms (u64), base (i64), limb count (u64), limbs (u64
// each); all little-endian.
constexpr char kMagic[4] = {'K', 'V', 'X', 'A'};
constexpr unsigned char kVersion = 1;
constexpr std::size_t kHeaderBytes = 4 + 1 + 8 + 8 + 8;

bool negative_limbs(const std::vector<mp_limb_t>& limbs) { return !limbs.empty() && (limbs.back() >> 63) != 0; }

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

}  // namespace

void ExactAccumulator::clear() {
  limbs_.clear();
  base_ = 0;
  terms_ = 0;
}

void ExactAccumulator::count_terms(std::uint64_t n) {
  if (n >= kMaxTerms - terms_) throw std::overflow_error("exact dot product: 2^63 terms or more");
  terms_ += n;
}

void ExactAccumulator::cover(std::int64_t lo, std::int64_t hi) {
  const std::int64_t top = base_ + std::int64_t(limbs_.size());  // first limb above the window
  if (!limbs_.empty() && lo >= base_ && hi + 1 < top) return;    // hi + 1 < top: a headroom limb above hi
  const std::int64_t new_lo = limbs_.empty() ? lo - kGrowthSlackLimbs : std::min(base_, lo - kGrowthSlackLimbs);
  const std::int64_t new_top = limbs_.empty() ? hi + 2 + kGrowthSlackLimbs : std::max(top, hi + 2 + kGrowthSlackLimbs);
  if (new_top - new_lo > kMaxWindowLimbs)
    throw std::range_error("exact dot product: the terms' exponents span more than " +
                           std::to_string(kMaxWindowBits) + " bits");
  std::vector<mp_limb_t> grown(std::size_t(new_top - new_lo), 0);
  if (!limbs_.empty()) {  // the old limbs in place, sign-extended upwards
    std::copy(limbs_.begin(), limbs_.end(), grown.begin() + (base_ - new_lo));
    std::fill(grown.begin() + (top - new_lo), grown.end(), negative_limbs(limbs_) ? ~mp_limb_t(0) : 0);
  }
  limbs_.swap(grown);
  base_ = new_lo;
}

void ExactAccumulator::add_scaled(const mp_limb_t* q, std::size_t nq, std::int64_t e, bool negative) {
  const std::int64_t k = e >> 6;  // floor(e / 64): C++20 shifts signed values arithmetically
  const unsigned s = unsigned(e & 63);
  cover(k, k + std::int64_t(nq));  // q * 2^s fills limbs k..k+nq
  mp_limb_t* a = limbs_.data() + (k - base_);
  mp_limb_t* const end = limbs_.data() + limbs_.size();
  mp_limb_t prev = 0, carry = 0;
  for (std::size_t i = 0; i <= nq; ++i, ++a) {
    const mp_limb_t cur = i < nq ? q[i] : 0;
    const mp_limb_t v = s ? (cur << s) | (prev >> (64 - s)) : cur;
    prev = cur;
    const mp_limb_t old = *a;
    if (!negative) {
      const mp_limb_t t = old + v;
      *a = t + carry;
      carry = mp_limb_t(t < old) | mp_limb_t(*a < t);
    } else {
      const mp_limb_t t = old - v;
      *a = t - carry;
      carry = mp_limb_t(old < v) | mp_limb_t(t < carry);
    }
  }
  // The carry (or borrow) runs up, wrapping at the top: the two's-complement sum is exact
  // modulo 2^(64*size), and the headroom argument keeps the true sum inside that range.
  if (!negative)
    for (; carry && a != end; ++a) carry = ++*a == 0;
  else
    for (; carry && a != end; ++a) carry = (*a)-- == 0;
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
  const mp_limb_t* xs = significand(x);
  product_.resize(nx + 1);
  mp_limb_t carry = 0;
  for (std::size_t i = 0; i < nx; ++i) {
    const unsigned __int128 p = (unsigned __int128)xs[i] * m + carry;
    product_[i] = mp_limb_t(p);
    carry = mp_limb_t(p >> 64);
  }
  product_[nx] = carry;
  // |x| = X * 2^(EXP(x) - 64 nx); EXP(x) lies within +-2^62, so e cannot overflow.
  const std::int64_t e = ew + std::int64_t(mpfr_get_exp(x)) - 64 * std::int64_t(nx);
  add_scaled(product_.data(), nx + 1, e, (bits >> 63) != std::uint64_t(mpfr_signbit(x) ? 1 : 0));
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
  add_scaled(product_.data(), na + nb, e, mpfr_signbit(a) != mpfr_signbit(b));
}

void ExactAccumulator::merge(const ExactAccumulator& other) {
  count_terms(other.terms_);
  if (other.limbs_.empty()) return;
  const std::int64_t other_top = other.base_ + std::int64_t(other.limbs_.size());
  cover(other.base_, other_top - 1);  // every limb of other, and one above it
  const mp_limb_t extension = negative_limbs(other.limbs_) ? ~mp_limb_t(0) : 0;
  mp_limb_t carry = 0;
  for (std::size_t j = std::size_t(other.base_ - base_); j < limbs_.size(); ++j) {
    const std::int64_t i = base_ + std::int64_t(j) - other.base_;
    const mp_limb_t v = i < std::int64_t(other.limbs_.size()) ? other.limbs_[std::size_t(i)] : extension;
    const mp_limb_t t = limbs_[j] + v;
    const mp_limb_t r = t + carry;
    carry = mp_limb_t(t < v) | mp_limb_t(r < t);
    limbs_[j] = r;
  }
}

int ExactAccumulator::round_to(mpfr_ptr y, mpfr_rnd_t rnd) const {
  const bool negative = negative_limbs(limbs_);
  const mp_limb_t* mag = limbs_.data();
  if (negative) {  // |sum| = ~sum + 1
    magnitude_.resize(limbs_.size());
    mp_limb_t carry = 1;
    for (std::size_t i = 0; i < limbs_.size(); ++i) {
      magnitude_[i] = ~limbs_[i] + carry;
      carry = carry && magnitude_[i] == 0;
    }
    mag = magnitude_.data();
  }
  std::size_t n = limbs_.size();
  while (n > 0 && mag[n - 1] == 0) --n;
  if (n == 0) {
    mpfr_set_zero(y, 1);
    return 0;
  }
  mpz_t z;
  mpz_roinit_n(z, mag, negative ? -mp_size_t(n) : mp_size_t(n));
  // base_ stays within +-2^57 limbs (terms' exponents are MPFR exponents), so 64 * base_ is a valid mpfr_exp_t.
  return mpfr_set_z_2exp(y, z, mpfr_exp_t(64 * base_), rnd);
}

std::string ExactAccumulator::to_bytes() const {
  // Canonical: drop zero limbs below and limbs above that only repeat the sign.
  std::size_t lo = 0, hi = limbs_.size();
  while (lo < hi && limbs_[lo] == 0) ++lo;
  if (lo < hi) {
    const mp_limb_t extension = negative_limbs(limbs_) ? ~mp_limb_t(0) : 0;
    while (hi - lo >= 2 && limbs_[hi - 1] == extension && (limbs_[hi - 2] >> 63) == (extension >> 63)) --hi;
  }
  std::string out(kMagic, sizeof kMagic);
  out.push_back(char(kVersion));
  put_u64(out, terms_);
  put_u64(out, std::uint64_t(lo < hi ? base_ + std::int64_t(lo) : 0));
  put_u64(out, hi - lo);
  for (std::size_t i = lo; i < hi; ++i) put_u64(out, limbs_[i]);
  return out;
}

ExactAccumulator ExactAccumulator::from_bytes(std::string_view bytes) {
  auto bad = [](const std::string& what) {
    return std::invalid_argument("exact accumulator bytes: " + what);
  };
  if (bytes.size() < kHeaderBytes) throw bad("truncated header (" + std::to_string(bytes.size()) + " bytes)");
  if (std::memcmp(bytes.data(), kMagic, sizeof kMagic) != 0) throw bad("wrong magic");
  if (static_cast<unsigned char>(bytes[4]) != kVersion) throw bad("unknown version");
  const std::uint64_t terms = get_u64(bytes, 5);
  const std::int64_t base = std::int64_t(get_u64(bytes, 13));
  const std::uint64_t count = get_u64(bytes, 21);
  if (terms >= kMaxTerms) throw bad("term count out of range");
  if (count > std::uint64_t(kMaxWindowLimbs) || bytes.size() != kHeaderBytes + 8 * count)
    throw bad("limb count " + std::to_string(count) + " does not match " + std::to_string(bytes.size()) + " bytes");
  // Limb indices of sums of MPFR products stay within +-2^57 (exponents within +-2^63).
  constexpr std::int64_t kMaxBase = std::int64_t(1) << 57;
  if (base < -kMaxBase || base > kMaxBase) throw bad("exponent out of range");
  ExactAccumulator acc;
  acc.terms_ = terms;
  if (count == 0) {
    if (base != 0) throw bad("non-canonical zero");
    return acc;
  }
  acc.base_ = base;
  acc.limbs_.resize(count + 1);
  for (std::uint64_t i = 0; i < count; ++i) acc.limbs_[i] = get_u64(bytes, kHeaderBytes + 8 * i);
  const bool negative = (acc.limbs_[count - 1] >> 63) != 0;
  const mp_limb_t extension = negative ? ~mp_limb_t(0) : 0;
  if (acc.limbs_[0] == 0) throw bad("non-canonical (zero lowest limb)");
  if (count >= 2 && acc.limbs_[count - 1] == extension && (acc.limbs_[count - 2] >> 63) == (extension >> 63))
    throw bad("non-canonical (redundant sign limb)");
  acc.limbs_[count] = extension;  // the headroom limb
  return acc;
}

void exact_dot(mpfr_ptr y, const double* w, mpfr_srcptr x, std::size_t n, ExactAccumulator& acc, mpfr_srcptr addend) {
  acc.clear();
  for (std::size_t j = 0; j < n; ++j) acc.add(w[j], x + j);
  if (addend) acc.add(1.0, addend);
  acc.round_to(y, MPFR_RNDN);
}

}  // namespace kvfid
