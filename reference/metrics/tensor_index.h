#pragma once
// Where in a tap a finding lies: a flat row-major index shown as a coordinate.
#include <cstdint>
#include <string>
#include <vector>

namespace kvfid::ref {

// "[2, 0, 7]" for flat index 2*s1*s2 + 0*s2 + 7 of shape [s0, s1, s2].
std::string format_index(const std::vector<std::int64_t>& shape, std::int64_t flat);

}  // namespace kvfid::ref
