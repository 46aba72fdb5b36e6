#include "reference/calibration/kv_calibration.h"

#include <algorithm>
#include <cmath>

#include "reference/formats/quant/registry.h"
#include "reference/util/input_error.h"

namespace kvfid::ref::quant {

namespace {

// Per head, max |x| of a [T, n_kv_heads, head_dim] tap.
std::vector<double> head_amax(const TapSet& taps, const std::string& name, const ModelConfig& c,
                              const std::string& source) {
  const TapTensor* tap = find_tap(taps, name);
  if (!tap) throw InputError(source, "no tap '" + name + "' to calibrate the KV scales from");
  const std::size_t row = std::size_t(c.n_kv_heads) * c.head_dim;
  if (tap->values.empty() || tap->values.size() % row != 0)
    throw InputError(source, "tap '" + name + "' has " + std::to_string(tap->values.size()) +
                                 " values, not a whole number of K/V rows of " + std::to_string(row));
  std::vector<double> amax(std::size_t(c.n_kv_heads), 0.0);
  for (std::size_t i = 0; i < tap->values.size(); ++i) {
    double& m = amax[i % row / std::size_t(c.head_dim)];
    m = std::max(m, std::abs(tap->values[i]));
  }
  return amax;
}

// The smallest float s with amax / s <= top, near amax / top.
float covering_scale(double amax, double top) {
  float s = float(amax / top);
  while (amax / double(s) > top) s = std::nextafter(s, INFINITY);
  return s;
}

}  // namespace

std::vector<float> amax_kv_scales(const KvPolicy& policy, const ModelConfig& c, const TapSet& taps,
                                  const std::string& source) {
  std::vector<float> scales(std::size_t(c.n_layers) * 2 * c.n_kv_heads, 1.0f);
  for (int l = 0; l < c.n_layers; ++l)
    for (int kv = 0; kv < 2; ++kv) {
      const double top = all_formats()[(kv ? policy.v : policy.k)[l].format].unit_scale_max;
      if (top == 0) continue;
      const std::vector<double> amax = head_amax(taps, tap_layer_name(l, kv ? "v" : "k"), c, source);
      for (int h = 0; h < c.n_kv_heads; ++h)
        if (amax[h] > 0) scales[(std::size_t(l) * 2 + kv) * c.n_kv_heads + h] = covering_scale(amax[h], top);
    }
  return scales;
}

}  // namespace kvfid::ref::quant
