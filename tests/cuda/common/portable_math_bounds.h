#pragma once
// The accuracy claims of exp_portable and log_portable (cuda/common/portable_math.h),
// checked on sweeps in portable_math_test.cpp and relied on by the error bounds that
// other engine tests derive (log-softmax).
namespace kvfid::test {

// Measured on the sweep in portable_math_test.cpp: 0.918 ulp at most (normal results).
// The claim is a faithful exp: below 1 ulp. Error model: Taylor truncation < 0.1 ulp;
// r = x - k ln2 carries ~2^-24 |r| from the ln2 split; the Horner fmas add ~0.5 ulp (the
// last one) plus smaller terms damped by powers of |r| < 0.35; scaling by 2^k is exact.
// A wrong coefficient or split costs far more than one ulp.
inline constexpr double kExpMaxUlp = 1.0;
// Subnormal results carry fewer bits; in units of 2^-149 the measured error is 0.81:
// the normal-range error plus the one final rounding (0.5) stays below 1 unit.
inline constexpr double kExpSubnormalMaxUnits = 1.0;

// Measured over every 7th positive finite float (3e8 of them): 0.840 ulp at most, at
// x = 0x1.69cf3ep+0 just below sqrt(2), where |f| is largest and the damped terms weigh
// most. The claim is a faithful log: below 1 ulp. Error model: f = m - 1 is exact; the
// result is one rounding (0.5 ulp) of f plus terms below 0.21 |f| whose own roundings
// (s: two, the correction: about three) reach the result scaled by at most 0.21, about
// 0.25 ulp; the 4-term atanh series leaves < 0.04 ulp; k ln2hi is exact and the ln2lo
// part rides in the small terms. A wrong coefficient, split or reduction costs far more
// than one ulp.
inline constexpr double kLogMaxUlp = 1.0;

}  // namespace kvfid::test
