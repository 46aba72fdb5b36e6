#pragma once
// Float64 log-softmax of an FP32 row and a derived bound on the error of the engine's
// FP32 one (num::log_softmax_host / the GPU kernel, cuda/common/log_softmax.h).
#include <vector>

namespace kvfid::test {

struct LogSoftmaxReference {
  std::vector<double> exact;  // [n] log-softmax of the FP32 inputs, in float64
  std::vector<double> bound;  // [n] bound on |engine value - exact|
  double sum_bound = 0;       // bound on |sum_k exp(engine value_k) - 1|
};

// Error model (u = 2^-24, d_j = x_j - max, S = sum_j exp(d_j) >= 1):
//  - each exp term: the rounding of d_j (<= u|d_j|, magnified by exp into a relative
//    expm1(u|d_j|)), times exp_portable's kExpMaxUlp (one ulp <= 2u relative); results
//    in the subnormal range add kExpSubnormalMaxUnits * 2^-149 absolute each;
//  - the sum: every term passes at most D = ceil(n / 256) + 5 + 7 roundings (its
//    thread's adds, the butterfly, the warp fold): relative gamma_D = D u / (1 - D u);
//  - log: the relative error sigma of S becomes -log(1 - sigma) absolute, plus
//    log_portable's kLogMaxUlp ulps;
//  - lp_k = (d_k rounded) - log(S) rounded: u|d_k| + the log error + u|lp_k|.
// The float64 reference itself is good to ~n 2^-53 relative; 2^-52 n (1 + |d_k| +
// log S) is added for it.
LogSoftmaxReference log_softmax_reference(const float* x, int n);

}  // namespace kvfid::test
