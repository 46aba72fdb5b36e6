#pragma once
// The gate: the engine may be at most k times as wrong as the plain algorithm at the
// same precision (the baseline), each bound held above a floor that rounding alone
// can reach.
#include "reference/formats/float_format.h"

namespace kvfid::ref {

// k. FlashAttention's rule: its tests assert that FlashAttention's error against an
// FP32 reference is at most twice the error of a plain PyTorch implementation at the
// same precision ("Check that FlashAttention's numerical error is at most twice the
// numerical error of a Pytorch implementation", Dao-AILab/flash-attention,
// tests/test_flash_attn.py). Here the reference is the exact golden.
inline constexpr double kGateFactor = 2.0;

// The floor of every bound, in ULPs of the tap's comparison format. Error model: an
// engine as good as its format allows, computing in a different but equally valid
// order than the baseline, still differs from the exact value by its last few
// roundings at full magnitude: the final store and up to three operations feeding it
// with gain about one (the last additions of a dot product, a residual add), each at
// most 0.5 ULP, so 2 ULPs. Times k, as for any error: 4 ULPs. Without a floor a
// baseline that happens to be exact (probabilities of 1 at the first position, zeros
// above the diagonal) would demand an exact engine.
inline constexpr double kFloorUlps = 4.0;

// How a metric grows with the underlying value errors, and so which power of k bounds it.
// KL is quadratic: for small logit errors d, KL(p || q) = 1/2 Var_p(d) + O(d^3), so
// logit errors k times the baseline's give a KL k^2 times the baseline's.
enum class GateOrder { linear, quadratic };

// max(k^order * baseline, floor); NaN (no bound, every value fails) when the baseline
// is not finite.
double gate_bound(double baseline, double floor, GateOrder order);

// value <= bound, false for NaN on either side.
bool within_bound(double value, double bound);

// Floor of a max-abs-error bound: kFloorUlps ULPs of `format` at the tap's max |golden|
// (an absolute metric over the whole tap, so its scale is the tap's largest value).
double max_abs_floor(double max_abs_golden, FloatFormat format);

// Floor of a sqrt(NMSE) bound: the same kFloorUlps per value, relative to each value.
// One ULP is at most 2^-(p-1) of the value it is taken at (p significand bits), and
// sqrt(NMSE) (RMS error over RMS value) is at most the largest relative error.
double relative_rms_floor(FloatFormat format);

// Floor of a KL bound from the logits' max-abs floor F (k already inside F): with
// every logit error at most F, Var_p(d) <= F^2, so KL <= F^2 / 2 to second order.
double kl_floor(double logits_max_abs_floor);

}  // namespace kvfid::ref
