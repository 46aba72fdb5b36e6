#include "reference/native/native_projection.h"

#include <algorithm>
#include <cstring>

#include "reference/mp/mp_parallel.h"
#include "reference/native/f16_dots.h"
#include "reference/native/format_arith.h"

namespace kvfid::ref::native {

namespace {

typedef float Lanes __attribute__((vector_size(16)));  // 4 binary32 lanes: SSE on any x86-64
constexpr int kLanes = 4;
constexpr int kTokenBlock = 8 * kLanes;  // tokens one pass of a row computes: 8 independent sums in flight

// The binary32 kernel for a row whose weights are all binary32 values: every lane is one
// token's own sequential sum, with the IEEE multiply and add of the scalar code (vector
// lanes round exactly as scalar operations do, and nothing is fused), so it is bit for
// bit the column-order dot product.
// xt: [cols, padded] the activations transposed, zero past `tokens`; sums: [padded].
void row_f32(const float* w, const float* xt, int cols, int padded, float* sums) {
  for (int t0 = 0; t0 < padded; t0 += kTokenBlock) {
    Lanes acc[8] = {};
    for (int j = 0; j < cols; ++j) {
      const float* xp = xt + std::size_t(j) * padded + t0;
      const Lanes wj = {w[j], w[j], w[j], w[j]};
      for (int k = 0; k < 8; ++k) {
        Lanes xk;
        std::memcpy(&xk, xp + k * kLanes, sizeof xk);
        const Lanes product = wj * xk;
        acc[k] = acc[k] + product;
      }
    }
    std::memcpy(sums + t0, acc, sizeof acc);
  }
}

// A row whose weights are binary32 values, in a narrow format: kChains tokens' sums at a
// time, each still its own sequential sum, so that their rounding steps overlap.
// x: [tokens, cols]; sums: [tokens].
template <FloatFormat F>
void row_narrow(const float* w, const float* x, int cols, int tokens, float* sums) {
  using A = FormatArith<F>;
  constexpr int kChains = 4;
  int t = 0;
  for (; t + kChains <= tokens; t += kChains) {
    float s[kChains] = {};
    for (int j = 0; j < cols; ++j)
      for (int k = 0; k < kChains; ++k) s[k] = A::add(s[k], A::mul(w[j], x[std::size_t(t + k) * cols + j]));
    for (int k = 0; k < kChains; ++k) sums[t + k] = s[k];
  }
  for (; t < tokens; ++t) {
    float s = 0.0f;
    for (int j = 0; j < cols; ++j) s = A::add(s, A::mul(w[j], x[std::size_t(t) * cols + j]));
    sums[t] = s;
  }
}

}  // namespace

template <FloatFormat F>
void project(std::vector<float>& out, const Matrix& m, const std::vector<float>& x, const std::vector<double>& bias,
             int tokens, int threads) {
  using A = FormatArith<F>;
  const int rows = m.rows, cols = m.cols;
  // The vector kernels' activations: binary32's, or binary16's where the CPU has F16C.
  const bool f16_rows = F == FloatFormat::f16 && f16_dots_available();
  const int padded = (tokens + kTokenBlock - 1) / kTokenBlock * kTokenBlock;
  std::vector<float> xt;  // [cols, padded], zero past `tokens`
  if (F == FloatFormat::f32 || f16_rows) {
    xt.assign(std::size_t(cols) * padded, 0.0f);
    for (int t = 0; t < tokens; ++t)
      for (int j = 0; j < cols; ++j) xt[std::size_t(j) * padded + t] = x[std::size_t(t) * cols + j];
  }
  parallel_for(rows, threads, [&](std::int64_t begin, std::int64_t end) {
    std::vector<double> decoded(std::size_t(cols), 0.0);  // [cols] row r as stored (exact)
    std::vector<float> w(std::size_t(cols), 0.0f);        // [cols] the same, when binary32 holds them
    std::vector<float> sums(std::size_t(padded), 0.0f);   // [padded] row r's dot with every token
    for (std::int64_t r = begin; r < end; ++r) {
      m.decode_row(int(r), decoded.data());
      bool binary32 = true;
      for (int j = 0; j < cols; ++j) {
        w[std::size_t(j)] = float(decoded[std::size_t(j)]);
        binary32 = binary32 && fits_binary32(decoded[std::size_t(j)]);
      }
      if (F == FloatFormat::f32 && binary32) {
        row_f32(w.data(), xt.data(), cols, padded, sums.data());
      } else if (f16_rows && binary32) {
        std::fill(sums.begin(), sums.end(), 0.0f);
        const F16Products kind = f16_dot_operands(w.data(), w.size()) ? F16Products::narrow : F16Products::binary32;
        accumulate_f16(sums.data(), w.data(), cols, xt.data(), std::size_t(padded), padded, kind);
      } else if (binary32) {
        row_narrow<F>(w.data(), x.data(), cols, tokens, sums.data());
      } else {
        for (int t = 0; t < tokens; ++t) {
          const float* xr = x.data() + std::size_t(t) * cols;
          float s = 0.0f;
          for (int j = 0; j < cols; ++j) s = A::add(s, A::mul_any(xr[j], decoded[std::size_t(j)]));
          sums[std::size_t(t)] = s;
        }
      }
      for (int t = 0; t < tokens; ++t) {
        float y = sums[std::size_t(t)];
        if (!bias.empty()) y = A::add_any(y, bias[std::size_t(r)]);
        out[std::size_t(t) * rows + std::size_t(r)] = y;
      }
    }
  });
}

template void project<FloatFormat::f32>(std::vector<float>&, const Matrix&, const std::vector<float>&,
                                        const std::vector<double>&, int, int);
template void project<FloatFormat::f16>(std::vector<float>&, const Matrix&, const std::vector<float>&,
                                        const std::vector<double>&, int, int);
template void project<FloatFormat::bf16>(std::vector<float>&, const Matrix&, const std::vector<float>&,
                                         const std::vector<double>&, int, int);

}  // namespace kvfid::ref::native
