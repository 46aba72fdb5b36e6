#include "reference/metrics/tensor_index.h"

namespace kvfid::ref {

std::string format_index(const std::vector<std::int64_t>& shape, std::int64_t flat) {
  std::vector<std::int64_t> coord(shape.size(), 0);
  for (std::size_t d = shape.size(); d-- > 0;) {
    const std::int64_t extent = shape[d] > 0 ? shape[d] : 1;
    coord[d] = flat % extent;
    flat /= extent;
  }
  std::string s = "[";
  for (std::size_t d = 0; d < coord.size(); ++d) s += (d ? ", " : "") + std::to_string(coord[d]);
  return s + "]";
}

}  // namespace kvfid::ref
