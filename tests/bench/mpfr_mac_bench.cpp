// MPFR multiply-accumulate throughput, one core: a bare mpfr_fma loop against the
// golden forward's projection kernel at the same working precision. The kernel should
// keep at least 80% of the bare rate. A third loop shows why the golden holds its weights
// at the working precision rather than at their exact 53 bits: mixed precisions miss
// MPFR's fast path.
#include <cmath>
#include <cstdio>
#include <map>
#include <string>

#include <benchmark/benchmark.h>

#include "reference/mp/mp_arith.h"
#include "reference/mp/projection.h"
#include "tests/bench/rate_reporter.h"

namespace kvfid::ref {
namespace {

constexpr mpfr_prec_t kPrecision = 128;  // the golden's first attempt
constexpr int kRows = 172;               // stories260K's FFN width
constexpr int kCols = 64;                // and its model width
constexpr double kTargetRatio = 0.8;     // the requirement

void fill(MpArray& a, int salt) {
  for (std::size_t i = 0; i < a.size(); ++i)
    mpfr_set_si_2exp(a[i], long((i * 2654435761u + salt) % 2001) - 1000, -10, MPFR_RNDN);
}

// The bound: operands of the working precision, one accumulator, no bookkeeping.
void raw_fma(benchmark::State& state, mpfr_prec_t weight_precision) {
  MpArray w(std::size_t(kRows) * kCols, weight_precision), x(kCols, kPrecision), acc(1, kPrecision);
  fill(w, 1);
  fill(x, 2);
  for (auto _ : state) {
    for (int r = 0; r < kRows; ++r) {
      mpfr_set_zero(acc[0], 1);
      for (int c = 0; c < kCols; ++c) mpfr_fma(acc[0], w[std::size_t(r) * kCols + c], x[c], acc[0], MPFR_RNDN);
      benchmark::DoNotOptimize(acc[0]);
    }
  }
  state.SetItemsProcessed(state.iterations() * kRows * kCols);
}

void projection_kernel(benchmark::State& state) {
  ExponentRangeScope range;
  Matrix w(kRows, kCols);  // the same values as raw_fma's, stored as float64
  std::span<double> values = w.mutable_values();
  for (std::size_t i = 0; i < values.size(); ++i) values[i] = std::ldexp(double(long((i * 2654435761u + 1) % 2001) - 1000), -10);
  MpArray x(kCols, kPrecision), y(kRows, kPrecision);
  const MpArray no_bias;
  fill(x, 2);
  const MpArith arith = MpArith::exact(kPrecision);
  for (auto _ : state) {
    project(y, {w, weight_precision_for(kPrecision)}, x, no_bias, 1, arith, 1);
    benchmark::DoNotOptimize(y[0]);
  }
  state.SetItemsProcessed(state.iterations() * kRows * kCols);
}

BENCHMARK_CAPTURE(raw_fma, all_operands_128_bits, kPrecision);
BENCHMARK_CAPTURE(raw_fma, weights_53_bits, kWeightPrecisionBits);
BENCHMARK(projection_kernel);


}  // namespace
}  // namespace kvfid::ref

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  kvfid::test::RateReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto& r = reporter.rates;
  for (const auto& [name, rate] : r) std::printf("%-40s %.3e MACs/s\n", name.c_str(), rate);
  const auto raw = r.find("raw_fma/all_operands_128_bits"), kernel = r.find("projection_kernel");
  if (raw != r.end() && kernel != r.end()) {
    const double ratio = kernel->second / raw->second;
    std::printf("projection kernel / raw mpfr_fma at %ld bits: %.3f (target >= %.1f)\n", long(kvfid::ref::kPrecision), ratio,
                kvfid::ref::kTargetRatio);
  }
  benchmark::Shutdown();
  return 0;
}
