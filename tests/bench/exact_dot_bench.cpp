// The exact dot product's throughput, one core: ExactAccumulator (float64 weights,
// P-bit activations, summed exactly, rounded once) against a bare mpfr_fma loop at the
// same working precision with every operand at P (MPFR's fastest fma: how the golden
// held its weights before), at the golden's first two precisions and the model and FFN
// widths of Qwen2.5-0.5B. The goal: at least 4x the bare loop's MACs/s.
#include <cmath>
#include <cstdio>
#include <map>
#include <string>
#include <vector>

#include <benchmark/benchmark.h>
#include <gmp.h>

#include "reference/mp/exact_accumulator.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "tests/bench/rate_reporter.h"

namespace kvfid::ref {
namespace {

constexpr int kRows = 8;                 // distinct weight rows per iteration
constexpr double kTargetRatio = 4.0;     // the goal
const long kPrecisions[] = {128, 192};   // the golden's first attempt, and P + 64
const long kWidths[] = {896, 4864};      // Qwen2.5-0.5B: model width, FFN width

std::uint64_t next(std::uint64_t& s) { return s = s * 6364136223846793005ull + 1442695040888963407ull; }

// Weights like a BF16 model's (8 significant bits, magnitudes 2^-12..2^-2, either sign);
// activations with P random bits and magnitudes 2^-4..2^4.
std::vector<double> weights(std::size_t n, std::uint64_t s) {
  std::vector<double> w(n);
  for (double& v : w) {
    next(s);
    v = std::ldexp(double(128 + (s >> 57)) * ((s >> 20) & 1 ? -1 : 1), -int((s >> 30) % 11) - 9);
  }
  return w;
}

MpArray activations(std::size_t n, mpfr_prec_t p, std::uint64_t s) {
  MpArray x(n, p);
  std::vector<mp_limb_t> limbs(std::size_t(p / 64));  // p is a multiple of 64 here
  for (std::size_t i = 0; i < n; ++i) {
    for (mp_limb_t& l : limbs) l = next(s);
    limbs.back() |= mp_limb_t(1) << 63;
    mpz_t z;
    mpz_roinit_n(z, limbs.data(), next(s) & 1 ? -mp_size_t(limbs.size()) : mp_size_t(limbs.size()));
    mpfr_set_z_2exp(x[i], z, long(next(s) % 9) - 4 - p, MPFR_RNDN);  // exact: p bits
  }
  return x;
}

void raw_fma(benchmark::State& state) {
  const mpfr_prec_t p = state.range(0);
  const std::size_t n = std::size_t(state.range(1));
  const std::vector<double> wd = weights(n * kRows, 1);
  MpArray w(wd.size(), p), acc(1, p);
  for (std::size_t i = 0; i < wd.size(); ++i) mpfr_set_d(w[i], wd[i], MPFR_RNDN);
  const MpArray x = activations(n, p, 2);
  for (auto _ : state)
    for (int r = 0; r < kRows; ++r) {
      mpfr_set_zero(acc[0], 1);
      for (std::size_t c = 0; c < n; ++c) mpfr_fma(acc[0], w[r * n + c], x[c], acc[0], MPFR_RNDN);
      benchmark::DoNotOptimize(acc[0]);
    }
  state.SetItemsProcessed(state.iterations() * kRows * std::int64_t(n));
}

void exact_dot_kernel(benchmark::State& state) {
  ExponentRangeScope range;
  const mpfr_prec_t p = state.range(0);
  const std::size_t n = std::size_t(state.range(1));
  const std::vector<double> w = weights(n * kRows, 1);
  const MpArray x = activations(n, p, 2);
  MpArray y(1, p);
  ExactAccumulator acc;
  for (auto _ : state)
    for (int r = 0; r < kRows; ++r) {
      exact_dot(y[0], w.data() + r * n, x[0], n, acc);
      benchmark::DoNotOptimize(y[0]);
    }
  state.SetItemsProcessed(state.iterations() * kRows * std::int64_t(n));
}

// The MPFR x MPFR path (attention, RMSNorm): MpArith::exact's dot over P-bit operands.
void exact_dot_mpfr_operands(benchmark::State& state) {
  ExponentRangeScope range;
  const mpfr_prec_t p = state.range(0);
  const std::size_t n = std::size_t(state.range(1));
  const std::vector<double> wd = weights(n * kRows, 1);
  MpArray w(wd.size(), p), y(1, p);
  for (std::size_t i = 0; i < wd.size(); ++i) mpfr_set_d(w[i], wd[i], MPFR_RNDN);
  const MpArray x = activations(n, p, 2);
  const MpArith arith = MpArith::exact(p);
  for (auto _ : state)
    for (int r = 0; r < kRows; ++r) {
      arith.dot(y[0], w[r * n], 1, x[0], 1, int(n), nullptr);
      benchmark::DoNotOptimize(y[0]);
    }
  state.SetItemsProcessed(state.iterations() * kRows * std::int64_t(n));
}

void shapes(benchmark::internal::Benchmark* b) {
  for (long p : kPrecisions)
    for (long n : kWidths) b->Args({p, n});
}

BENCHMARK(raw_fma)->Apply(shapes);
BENCHMARK(exact_dot_kernel)->Apply(shapes);
BENCHMARK(exact_dot_mpfr_operands)->Apply(shapes);


}  // namespace
}  // namespace kvfid::ref

int main(int argc, char** argv) {
  benchmark::Initialize(&argc, argv);
  kvfid::test::RateReporter reporter;
  benchmark::RunSpecifiedBenchmarks(&reporter);
  const auto& r = reporter.rates;
  std::printf("\n%5s %6s %14s %14s %7s %14s %7s\n", "P", "n", "mpfr_fma MAC/s", "exact_dot", "ratio", "mpfr x mpfr",
              "ratio");
  for (long p : kvfid::ref::kPrecisions)
    for (long n : kvfid::ref::kWidths) {
      const std::string args = "/" + std::to_string(p) + "/" + std::to_string(n);
      const auto raw = r.find("raw_fma" + args), ex = r.find("exact_dot_kernel" + args),
                 mm = r.find("exact_dot_mpfr_operands" + args);
      if (raw == r.end() || ex == r.end()) continue;
      const double mm_rate = mm == r.end() ? 0.0 : mm->second;
      std::printf("%5ld %6ld %14.3e %14.3e %6.2fx %14.3e %6.2fx\n", p, n, raw->second, ex->second,
                  ex->second / raw->second, mm_rate, mm_rate / raw->second);
    }
  std::printf("goal: exact_dot >= %.1fx the bare mpfr_fma loop\n", kvfid::ref::kTargetRatio);
  benchmark::Shutdown();
  return 0;
}
