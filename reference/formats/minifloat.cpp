#include "reference/formats/minifloat.h"

#include <cmath>

namespace kvfid::ref {

namespace {

std::uint32_t sign_bit(MiniFloatSpec s) { return 1u << (s.exp_bits + s.man_bits); }
std::uint32_t exp_all_ones(MiniFloatSpec s) { return (1u << s.exp_bits) - 1; }
std::uint32_t man_all_ones(MiniFloatSpec s) { return (1u << s.man_bits) - 1; }

// The quiet NaN an encoder produces (positive): the top mantissa bit for IEEE-style
// formats, the all-ones code for finite_only ones (their only NaN).
std::uint32_t quiet_nan(MiniFloatSpec s) {
  return (exp_all_ones(s) << s.man_bits) | (s.finite_only ? man_all_ones(s) : 1u << (s.man_bits - 1));
}

}  // namespace

double minifloat_decode(std::uint32_t bits, MiniFloatSpec s) {
  const std::uint32_t man_mask = man_all_ones(s);
  const std::uint32_t exp_max = exp_all_ones(s);
  const bool negative = (bits & sign_bit(s)) != 0;
  const std::uint32_t e = (bits >> s.man_bits) & exp_max;
  const std::uint32_t m = bits & man_mask;
  double v;
  if (e == exp_max && s.finite_only && m == man_mask) {
    v = std::nan("");
  } else if (e == exp_max && !s.finite_only) {
    v = m ? std::nan("") : INFINITY;
  } else if (e == 0) {
    v = std::ldexp(double(m), 1 - s.bias() - s.man_bits);
  } else {
    v = std::ldexp(double(m | (1u << s.man_bits)), int(e) - s.bias() - s.man_bits);
  }
  return negative ? -v : v;
}

std::uint32_t minifloat_encode_rne(double x, MiniFloatSpec s) {
  const std::uint32_t sign = std::signbit(x) ? sign_bit(s) : 0u;
  const std::uint32_t exp_max = exp_all_ones(s);
  // Overflow: Inf, or NaN for a format without Inf (OCP's non-saturating conversion).
  const std::uint32_t overflow = sign | (s.finite_only ? quiet_nan(s) : exp_max << s.man_bits);
  if (std::isnan(x)) return quiet_nan(s);
  const double a = std::fabs(x);
  if (std::isinf(a)) return overflow;
  const int emin = 1 - s.bias();
  int e = std::ilogb(a);  // unbiased exponent of a (a == 0 gives a huge negative value)
  if (a == 0 || e < emin) e = emin;
  // a / 2^(e - man_bits) is exact in float64 (a power-of-two scaling in range), and
  // nearbyint rounds it ties-to-even under the default rounding mode.
  double m = std::nearbyint(std::ldexp(a, s.man_bits - e));
  if (m == std::ldexp(1.0, s.man_bits + 1)) {  // rounded up into the next binade
    m /= 2;
    e += 1;
  }
  const std::uint32_t mi = std::uint32_t(m);
  if (mi < (1u << s.man_bits)) return sign | mi;  // subnormal (or zero)
  const std::uint32_t biased = std::uint32_t(e + s.bias());
  const std::uint32_t man = mi & man_all_ones(s);
  if (biased > exp_max || (biased == exp_max && (!s.finite_only || man == man_all_ones(s)))) return overflow;
  return sign | (biased << s.man_bits) | man;
}

}  // namespace kvfid::ref
