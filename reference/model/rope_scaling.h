#pragma once
// Llama 3.x RoPE scaling (HF config rope_scaling, rope_type "llama3"; transformers'
// _compute_llama3_parameters). Pair i's frequency f_i = theta^(-2i/head_dim) has the
// wavelength 2 pi / f_i; with L the original context, lo = low_freq_factor and
// hi = high_freq_factor, frequencies of wavelength above L / lo are divided by `factor`,
// those below L / hi are kept, and the band between is interpolated:
//   s_i  = clamp((L f_i / (2 pi) - lo) / (hi - lo), 0, 1)
//   f'_i = (1 - s_i) f_i / factor + s_i f_i
// The clamp is HF's three cases in one formula: L f / (2 pi) > hi is s > 1 (kept), < lo
// is s < 0 (divided) and the band's ends meet the cases beside them (s = 1 gives f,
// s = 0 gives f / factor), so the scaled frequency is continuous in f.
namespace kvfid::ref {

struct RopeScaling {
  double factor = 0;  // 0: no scaling (plain RoPE)
  double low_freq_factor = 0;
  double high_freq_factor = 0;
  int original_max_positions = 0;

  bool active() const { return factor != 0; }
  bool operator==(const RopeScaling&) const = default;
};

// f'_i from f_i in the arithmetic of Scalar (the engine's and the float64 path's host
// tables; the reference evaluates the same formula on balls in reference/mp/rope.cpp).
template <class Scalar>
Scalar llama3_scaled_frequency(const RopeScaling& r, Scalar f, Scalar pi) {
  const Scalar band = (Scalar(r.original_max_positions) * f / (2 * pi) - Scalar(r.low_freq_factor)) /
                      (Scalar(r.high_freq_factor) - Scalar(r.low_freq_factor));
  const Scalar s = band < 0 ? Scalar(0) : band > 1 ? Scalar(1) : band;
  return (1 - s) * f / Scalar(r.factor) + s * f;
}

}  // namespace kvfid::ref
