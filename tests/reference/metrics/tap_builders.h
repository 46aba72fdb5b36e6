#pragma once
// Small hand-made taps for the metrics tests.
#include <cstdint>
#include <string>
#include <vector>

#include "reference/golden/taps.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

inline TapTensor make_tap(const std::string& name, std::vector<std::int64_t> shape, std::vector<double> values) {
  return {name, std::move(shape), std::move(values)};
}

// The same tap with every value v replaced by v + scale * offsets[i].
inline TapTensor perturbed(const TapTensor& tap, const std::vector<double>& offsets, double scale) {
  TapTensor out = tap;
  for (std::size_t i = 0; i < out.values.size(); ++i) out.values[i] += scale * offsets[i % offsets.size()];
  return out;
}

}  // namespace kvfid::test
