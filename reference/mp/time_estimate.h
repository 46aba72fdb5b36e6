#pragma once
// CPU time of the certified golden, estimated from the shape before it starts: its work
// counted from the config, at the rates measured for the MPFR kernels on this project's
// 2-core machine (docs/distributed.md, "Measured inputs"). Both certification runs (P and
// P + guard bits) are included. The estimate the CLI prints before a long run; the
// progress bar's ETA then follows the real rate.
#include <cstdint>

#include "reference/model/config.h"

namespace kvfid::ref {

// One weight times one token, both runs: the exact dot product's 1.15e8 multiply-adds per
// CPU second at 128 bits and 9.6e7 at 192 (tests/bench/exact_dot_bench, n = 4864), so
// 1/1.15e8 + 1/9.6e7 s. Checked against a whole golden: the 0.5B shape over 128 tokens,
// every tap, took 1,217 CPU s where this predicts 1,220 (README).
inline constexpr double kGoldenCpuSecondsPerWeightToken = 1.91e-8;
// One q.k or p.v multiply-add of attention (MPFR times MPFR), both runs: 6.6e7 and 5.9e7
// per CPU second at 128 and 192 bits (same benchmark).
inline constexpr double kGoldenCpuSecondsPerAttentionMac = 3.2e-8;

struct GoldenWork {
  double weight_tokens = 0;   // matrix elements the tokens meet (the classifier included, the embedding lookup not)
  double attention_macs = 0;  // causal q.k and p.v products over every layer and head
  double cpu_seconds = 0;     // at the rates above, first attempt
};

GoldenWork golden_work(const ModelConfig& config, int tokens);

}  // namespace kvfid::ref
