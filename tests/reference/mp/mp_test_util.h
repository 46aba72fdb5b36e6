#pragma once
// Helpers shared by the MPFR forward tests.
#include <cstdint>
#include <cstring>
#include <vector>

#include "reference/golden/taps.h"
#include "reference/model/config.h"
#include "reference/mp/mp_array.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

// A small Llama shape for fast forwards: GQA (2 query heads per KV head), one layer.
inline ModelConfig tiny_config(int layers = 1) {
  ModelConfig c;
  c.vocab = 32, c.dim = 16, c.n_layers = layers, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 8, c.hidden = 24;
  c.max_seq = 32, c.rms_norm_eps = 1e-5, c.rope_theta = 10000.0, c.rope = RopeStyle::interleaved;
  c.tied_classifier = false, c.qkv_bias = false;
  return c;
}

// Values in [-2, 2) with 20 significant bits or fewer, from a seeded stream.
inline MpArray random_mp_array(std::size_t n, mpfr_prec_t precision, std::uint64_t seed) {
  MpArray a(n, precision);
  std::uint64_t s = seed;
  for (std::size_t i = 0; i < n; ++i) {
    s = s * 6364136223846793005ull + 1442695040888963407ull;
    mpfr_set_si_2exp(a[i], long(s >> 44) - (1l << 19), -18, MPFR_RNDN);
  }
  return a;
}

inline bool mp_identical(const MpArray& a, const MpArray& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i)
    if (!mpfr_equal_p(a[i], b[i]) || mpfr_signbit(a[i]) != mpfr_signbit(b[i])) return false;
  return true;
}

// Every tap of a and b with the same name, shape and float64 bits.
inline bool same_tap_bits(const TapSet& a, const TapSet& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].name != b[i].name || a[i].shape != b[i].shape || a[i].values.size() != b[i].values.size()) return false;
    if (std::memcmp(a[i].values.data(), b[i].values.data(), a[i].values.size() * sizeof(double)) != 0) return false;
  }
  return true;
}

}  // namespace kvfid::test
