#include "reference/metrics/kv_round_trip.h"

#include <cmath>
#include <cstddef>
#include <limits>

namespace kvfid::ref {

double RoundTripError::relative_rmse() const {
  if (rms_golden > 0) return rmse / rms_golden;
  return rmse == 0 ? 0.0 : std::numeric_limits<double>::infinity();
}

std::vector<RoundTripError> round_trip_error_per_head(std::span<const double> golden, std::span<const double> stored,
                                                      const AttentionShape& shape) {
  check_attention_shape(shape, "round_trip_error_per_head");
  check_values(golden, shape.kv_values(), "round_trip_error_per_head golden");
  check_values(stored, shape.kv_values(), "round_trip_error_per_head stored");
  const std::size_t heads = std::size_t(shape.n_kv_heads), dim = std::size_t(shape.head_dim);
  std::vector<RoundTripError> out(heads);  // [n_kv_heads]
  for (std::size_t h = 0; h < heads; ++h) {
    long double squared_error = 0, squared_golden = 0;
    for (std::size_t t = 0; t < std::size_t(shape.tokens); ++t)
      for (std::size_t d = 0; d < dim; ++d) {
        const std::size_t i = (t * heads + h) * dim + d;
        const double error = std::fabs(stored[i] - golden[i]);
        out[h].max_abs = std::fmax(out[h].max_abs, error);
        squared_error += (long double)error * error;
        squared_golden += (long double)golden[i] * golden[i];
      }
    const long double count = (long double)shape.tokens * (long double)dim;
    out[h].rmse = double(std::sqrt(squared_error / count));
    out[h].rms_golden = double(std::sqrt(squared_golden / count));
  }
  return out;
}

}  // namespace kvfid::ref
