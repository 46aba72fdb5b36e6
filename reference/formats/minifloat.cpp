#include "reference/formats/minifloat.h"

#include <cmath>

namespace kvfid {

double minifloat_decode(std::uint32_t bits, MiniFloatSpec s) {
  const std::uint32_t man_mask = (1u << s.man_bits) - 1;
  const std::uint32_t exp_max = (1u << s.exp_bits) - 1;
  const bool negative = (bits >> (s.exp_bits + s.man_bits)) & 1u;
  const std::uint32_t e = (bits >> s.man_bits) & exp_max;
  const std::uint32_t m = bits & man_mask;
  double v;
  if (e == exp_max) {
    v = m ? std::nan("") : INFINITY;
  } else if (e == 0) {
    v = std::ldexp(double(m), 1 - s.bias() - s.man_bits);
  } else {
    v = std::ldexp(double(m | (1u << s.man_bits)), int(e) - s.bias() - s.man_bits);
  }
  return negative ? -v : v;
}

std::uint32_t minifloat_encode_rne(double x, MiniFloatSpec s) {
  const std::uint32_t sign = std::signbit(x) ? 1u << (s.exp_bits + s.man_bits) : 0u;
  const std::uint32_t exp_max = (1u << s.exp_bits) - 1;
  const std::uint32_t inf = sign | (exp_max << s.man_bits);
  if (std::isnan(x)) return (exp_max << s.man_bits) | (1u << (s.man_bits - 1));
  const double a = std::fabs(x);
  if (std::isinf(a)) return inf;
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
  if (biased >= exp_max) return inf;
  return sign | (biased << s.man_bits) | (mi & ((1u << s.man_bits) - 1));
}

}  // namespace kvfid
