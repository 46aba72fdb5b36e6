#pragma once
// Summary statistics of a sample of per-position values (one value per scored
// position of a prompt), as the quantization report states them: a mean with its
// standard error, percentiles and a correlation.
#include <span>

namespace kvfid::ref {

// A value with its standard error; the error is NaN when the sample cannot give one.
struct Estimate {
  double value = 0;
  double standard_error = 0;
};

// Mean of x and its standard error s / sqrt(n), with the sample variance
// s^2 = sum (x_i - mean)^2 / (n - 1) (two passes, sums in long double). This is the
// standard error llama.cpp's perplexity tool prints (sqrt((sum x^2/n - mean^2)/(n-1)),
// the same quantity), except that it prints 0 for n <= 10; here it is given for every
// n >= 2 and is NaN for n < 2. The mean is NaN for an empty sample.
Estimate mean_with_standard_error(std::span<const double> x);

// Percentile of a sample sorted ascending, fraction in [0, 1]: linear interpolation
// between the order statistics around position fraction * (n - 1), counted from 0
// (Hyndman and Fan's definition 7, numpy's default, and what llama.cpp's perplexity
// tool uses). fraction 0 is the minimum, 1 the maximum, and 0.5 the median (the mean
// of the two middle values when n is even). Throws std::invalid_argument for an empty
// sample or a fraction outside [0, 1].
double percentile_of_sorted(std::span<const double> sorted, double fraction);

// Pearson's correlation of paired samples of equal size; NaN when n < 2 or either
// sample has no spread. Throws std::invalid_argument when the sizes differ.
double pearson_correlation(std::span<const double> a, std::span<const double> b);

}  // namespace kvfid::ref
