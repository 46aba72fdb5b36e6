#include "cuda/engine/rope_table.h"

#include <cmath>
#include <numbers>

namespace kvfid::engine {
namespace {

// Llama 3 scaling in float64 (rope_scaling.h's formula), or the frequency as it is.
double scaled(const ModelConfig& c, double f) {
  return c.rope_scaling.active() ? llama3_scaled_frequency(c.rope_scaling, f, std::numbers::pi) : f;
}

}  // namespace

RopeTable make_rope_table(const ModelConfig& c, int positions) {
  RopeTable t;
  t.pairs = c.rope_head_dim() / 2;
  t.positions = positions;
  t.cos.resize(std::size_t(positions) * t.pairs);
  t.sin.resize(std::size_t(positions) * t.pairs);
  for (int i = 0; i < t.pairs; ++i) {
    const double inv_freq = scaled(c, std::pow(c.rope_theta, -2.0 * i / c.rope_head_dim()));
    for (int pos = 0; pos < positions; ++pos) {
      const double angle = pos * inv_freq;
      t.cos[std::size_t(pos) * t.pairs + i] = float(std::cos(angle));
      t.sin[std::size_t(pos) * t.pairs + i] = float(std::sin(angle));
    }
  }
  return t;
}

}  // namespace kvfid::engine
