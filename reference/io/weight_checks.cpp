#include "reference/io/weight_checks.h"

#include <cmath>

#include "reference/util/input_error.h"

namespace kvfid::ref {

namespace {

void check_values(const double* values, std::size_t n, std::size_t first_index, const std::string& source,
                  const std::string& tensor_name) {
  for (std::size_t i = 0; i < n; ++i) {
    const double v = values[i];
    if (std::isfinite(v)) continue;
    const char* what = std::isnan(v) ? "NaN" : (v > 0 ? "Inf" : "-Inf");
    throw InputError(source, "tensor '" + tensor_name + "' element " + std::to_string(first_index + i) + " is " + what);
  }
}

}  // namespace

void check_finite(const std::vector<double>& values, const std::string& source, const std::string& tensor_name) {
  check_values(values.data(), values.size(), 0, source, tensor_name);
}

void check_finite(const Matrix& m, const std::string& source, const std::string& tensor_name, std::size_t first_index) {
  std::vector<double> row(std::size_t(m.cols));  // [cols]
  for (int r = 0; r < m.rows; ++r) {
    m.decode_row(r, row.data());
    check_values(row.data(), row.size(), first_index + std::size_t(r) * std::size_t(m.cols), source, tensor_name);
  }
}

}  // namespace kvfid::ref
