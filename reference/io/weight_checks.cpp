#include "reference/io/weight_checks.h"

#include <cmath>

#include "reference/util/input_error.h"

namespace kvfid::ref {

void check_finite(const std::vector<double>& values, const std::string& source, const std::string& tensor_name) {
  for (std::size_t i = 0; i < values.size(); ++i) {
    const double v = values[i];
    if (std::isfinite(v)) continue;
    const char* what = std::isnan(v) ? "NaN" : (v > 0 ? "Inf" : "-Inf");
    throw InputError(source, "tensor '" + tensor_name + "' element " + std::to_string(i) + " is " + what);
  }
}

}  // namespace kvfid::ref
