#include "cuda/engine/rope_table.h"

#include <cmath>

namespace kvfid::engine {

RopeTable make_rope_table(const ModelConfig& c, int positions) {
  RopeTable t;
  t.pairs = c.head_dim / 2;
  t.positions = positions;
  t.cos.resize(std::size_t(positions) * t.pairs);
  t.sin.resize(std::size_t(positions) * t.pairs);
  for (int i = 0; i < t.pairs; ++i) {
    const double inv_freq = std::pow(c.rope_theta, -2.0 * i / c.head_dim);
    for (int pos = 0; pos < positions; ++pos) {
      const double angle = pos * inv_freq;
      t.cos[std::size_t(pos) * t.pairs + i] = float(std::cos(angle));
      t.sin[std::size_t(pos) * t.pairs + i] = float(std::sin(angle));
    }
  }
  return t;
}

}  // namespace kvfid::engine
