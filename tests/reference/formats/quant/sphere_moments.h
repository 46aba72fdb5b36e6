#pragma once
// The moments of a scalar quantizer applied to one coordinate of a uniform random unit
// vector, by numerical integration against that coordinate's exact density: what the
// tq and tqp tests (turbo_mse_test.cpp, turbo_prod_test.cpp) compare their sampled
// distortions and inner-product biases with.
#include <algorithm>
#include <cmath>
#include <vector>

#include "reference/formats/quant/turbo_mse.h"

namespace kvfid::test {

// A sampled mean against its integral: within 4 standard errors (estimated from the
// sample), a two-sided normal false alarm rate of 6.3e-5 per check.
inline constexpr double kStandardErrors = 4;

// The positive FP32 levels L_m = fl32(c_m / sqrt(B)) of the b-bit TurboQuant quantizer,
// ascending, as turbo_mse.h's comment defines them: computed here in long double from
// the Lloyd-Max centroids and rounded once to FP32 (not from the header's tables).
inline std::vector<float> turbo_levels(int block, int bits) {
  std::vector<float> l(std::size_t(1) << (bits - 1));
  for (std::size_t m = 0; m < l.size(); ++m)
    l[m] = float((long double)ref::quant::kGaussianCentroids[bits - 1][m] / std::sqrt((long double)block));
  return l;
}

// For u = sqrt(B) x_1, x uniform on the unit sphere of R^B (density proportional to
// (1 - u^2/B)^((B-3)/2) on |u| < sqrt(B); E[u^2] = 1), and Q the symmetric quantizer
// with the levels +-sqrt(B) L_m split at the midpoints (nearest level):
//   distortion = E[(u - Q(u))^2], cross = E[u Q(u)], power = E[Q(u)^2].
// A block of unit norm quantized with these levels has E||x - x^||^2 = distortion and
// E<x, x^> = cross, summed over coordinates and divided by B, coordinate by coordinate.
// Under the centroid condition (each level the mean of its cell) cross = power and so
// cross = 1 - distortion; the Gaussian Lloyd-Max levels meet it for N(0, 1), and for
// the sphere's coordinate only up to O(1/B). Composite Simpson over each cell (the
// integrand is smooth there), 2000 panels each: error far below 1e-9.
struct CoordinateMoments {
  double distortion, cross, power;
};
inline CoordinateMoments sphere_coordinate_moments(int block, const std::vector<float>& levels) {
  const double B = block, top = std::sqrt(B);
  const int half = int(levels.size());
  std::vector<double> level(half), edge(half + 1);  // u-scale levels; cell m is [edge m, edge m+1]
  for (int m = 0; m < half; ++m) level[m] = top * double(levels[m]);
  edge[0] = 0;
  for (int m = 1; m < half; ++m) edge[m] = (level[m - 1] + level[m]) / 2;
  edge[half] = top;
  const auto density = [&](double u) { return std::pow(std::max(0.0, 1 - u * u / B), (B - 3) / 2); };
  const auto simpson = [](auto f, double a, double b) {
    constexpr int panels = 2000;
    const double h = (b - a) / panels;
    double s = f(a) + f(b);
    for (int k = 1; k < panels; ++k) s += (k % 2 ? 4 : 2) * f(a + k * h);
    return s * h / 3;
  };
  double mass = 0, error = 0, cross = 0, power = 0;  // the positive half: Q and the density are symmetric
  for (int m = 0; m < half; ++m) {
    const double l = level[m];
    mass += simpson(density, edge[m], edge[m + 1]);
    error += simpson([&](double u) { return (u - l) * (u - l) * density(u); }, edge[m], edge[m + 1]);
    cross += simpson([&](double u) { return u * l * density(u); }, edge[m], edge[m + 1]);
    power += simpson([&](double u) { return l * l * density(u); }, edge[m], edge[m + 1]);
  }
  return {error / mass, cross / mass, power / mass};
}

}  // namespace kvfid::test
