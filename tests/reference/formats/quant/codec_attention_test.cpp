// Derived tests, run for every codec in registry.h: how the per-element bound carries
// into what attention computes from a quantized cache -- the q.k scores and the
// softmax-weighted output -- against the exact (unquantized) computation.
#include <algorithm>
#include <cmath>
#include <map>
#include <random>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/reference/formats/quant/block_families.h"
#include "tests/reference/formats/quant/codec_types.h"

namespace kvfid::ref {
namespace {

constexpr int kHeadDim = 128;  // a multiple of every registered block size (1, 32, 64, 128)
constexpr int kKeys = 16;
// Sums of kHeadDim or kKeys long double terms (64-bit significands) and the softmax
// round by a few hundred units of 2^-64 relative to the sums of magnitudes; 2^-45
// relative is ample and far below every format's bound.
constexpr long double kLongDoubleSlack = 0x1p-45L;

using Rows = std::vector<std::vector<float>>;  // [kKeys][kHeadDim]

// kKeys rows of kHeadDim values per random family, each row whole blocks of it.
std::map<std::string, Rows> rows_by_family(int block, std::uint64_t seed) {
  std::map<std::string, std::vector<float>> flat;
  for (const auto& b : test::random_blocks(block, seed, kKeys * kHeadDim))
    flat[b.family].insert(flat[b.family].end(), b.x.begin(), b.x.end());
  std::map<std::string, Rows> rows;
  for (const auto& [family, values] : flat)
    for (int r = 0; r < kKeys; ++r)
      rows[family].emplace_back(values.begin() + r * kHeadDim, values.begin() + (r + 1) * kHeadDim);
  return rows;
}

struct Quantized {
  std::vector<long double> value;  // decode_exact, [kHeadDim]
  std::vector<long double> bound;  // error_bound, [kHeadDim]
};

Quantized quantize_row(const quant::FormatInfo& f, const std::vector<float>& row, const quant::CodecParams& p) {
  Quantized out{std::vector<long double>(kHeadDim), std::vector<long double>(kHeadDim)};
  std::vector<std::uint8_t> bytes(std::size_t(f.bytes));
  for (int start = 0; start < kHeadDim; start += f.block) {
    f.encode(row.data() + start, bytes.data(), p);
    for (int i = 0; i < f.block; ++i) {
      out.value[start + i] = f.decode_exact(bytes.data(), i, p);
      out.bound[start + i] = f.error_bound(row.data() + start, i, p);
    }
  }
  return out;
}

std::vector<float> random_query(std::mt19937_64& rng) {
  std::normal_distribution<double> normal(0, 1 / std::sqrt(double(kHeadDim)));
  std::vector<float> q(kHeadDim);
  for (float& v : q) v = float(normal(rng));
  return q;
}

long double dot(const std::vector<float>& q, const std::vector<long double>& k) {
  long double s = 0;
  for (int i = 0; i < kHeadDim; ++i) s += (long double)q[i] * k[i];
  return s;
}

std::vector<long double> widened(const std::vector<float>& v) { return {v.begin(), v.end()}; }

class CodecAttention : public test::EveryCodec {};
INSTANTIATE_EVERY_CODEC(CodecAttention);

// |q.k - q.k^| = |sum_i q_i (k_i - k^_i)| <= sum_i |q_i| bound_i.
TEST_P(CodecAttention, InnerProductErrorWithinTheSumOfElementBounds) {
  const quant::FormatInfo& f = format();
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed());
  for (const quant::CodecParams& p : test::test_params())
    for (const auto& [family, keys] : rows_by_family(f.block, test::test_seed()))
      for (const auto& k : keys) {
        const auto q = random_query(rng);
        const Quantized kq = quantize_row(f, k, p);
        long double bound = 0, magnitude = 0;
        for (int i = 0; i < kHeadDim; ++i) {
          bound += std::fabs((long double)q[i]) * kq.bound[i];
          magnitude += std::fabs((long double)q[i]) * (std::fabs((long double)k[i]) + std::fabs(kq.value[i]));
        }
        const long double err = std::fabs(dot(q, widened(k)) - dot(q, kq.value));
        ASSERT_TRUE(std::isfinite(err)) << family;
        ASSERT_LE(err, bound + kLongDoubleSlack * magnitude) << family << " keys, scale " << p.scale;
      }
}

// Softmax attention o = sum_j p_j v_j, p = softmax(q.k_j), against o^ from the decoded
// K^ and V^. The bound, from the per-element bounds b^K, b^V:
//   The scores move by d_j = s^_j - s_j, |d_j| <= e_j = sum_i |q_i| b^K_ji (the inner
//   product bound); let e = max_j e_j. p^_j = p_j exp(d_j) / sum_l p_l exp(d_l), and
//   the denominator lies in [exp(-e), exp(e)], so p^_j / p_j lies in
//   [exp(-2e), exp(2e)]: |p^_j - p_j| <= (exp(2e) - 1) p_j.
//   o^_c - o_c = sum_j p^_j (v^_jc - v_jc) + sum_j (p^_j - p_j) (v_jc - m_c) for any
//   m_c, because sum_j (p^_j - p_j) = 0. Taking m_c the midrange of column c,
//   |v_jc - m_c| <= range_c / 2, so
//   |o^_c - o_c| <= exp(2e) sum_j p_j b^V_jc + (exp(2e) - 1) range_c / 2.
TEST_P(CodecAttention, OutputErrorWithinTheDerivedBound) {
  const quant::FormatInfo& f = format();
  SCOPED_TRACE(test::seed_trace());
  std::mt19937_64 rng(test::test_seed() + 7);
  for (const quant::CodecParams& p : test::test_params()) {
    const auto families = rows_by_family(f.block, test::test_seed() + 3);
    for (const auto& [family, keys] : families) {
      const Rows& values = families.at(family == "normal" ? "heavy-tailed" : "normal");  // V unlike K
      const auto q = random_query(rng);
      std::vector<long double> s(kKeys), s_hat(kKeys);
      std::vector<Quantized> vq;
      long double e = 0;
      for (int j = 0; j < kKeys; ++j) {
        const Quantized kq = quantize_row(f, keys[j], p);
        s[j] = dot(q, widened(keys[j]));
        s_hat[j] = dot(q, kq.value);
        long double e_j = 0;
        for (int i = 0; i < kHeadDim; ++i) e_j += std::fabs((long double)q[i]) * kq.bound[i];
        e = std::max(e, e_j);
        vq.push_back(quantize_row(f, values[j], p));
      }
      const auto softmax = [](const std::vector<long double>& x) {
        const long double top = *std::max_element(x.begin(), x.end());
        std::vector<long double> w(x.size());
        long double sum = 0;
        for (std::size_t j = 0; j < x.size(); ++j) sum += w[j] = std::exp(x[j] - top);
        for (long double& v : w) v /= sum;
        return w;
      };
      const auto w = softmax(s), w_hat = softmax(s_hat);
      const long double growth = std::exp(2 * e);
      for (int c = 0; c < kHeadDim; ++c) {
        long double o = 0, o_hat = 0, spread_bound = 0, lo = INFINITY, hi = -INFINITY, magnitude = 0;
        for (int j = 0; j < kKeys; ++j) {
          const long double v = values[j][c];
          o += w[j] * v;
          o_hat += w_hat[j] * vq[j].value[c];
          spread_bound += w[j] * vq[j].bound[c];
          lo = std::min(lo, v);
          hi = std::max(hi, v);
          magnitude = std::max(magnitude, std::fabs(v) + std::fabs(vq[j].value[c]));
        }
        ASSERT_TRUE(std::isfinite(o_hat)) << family;
        const long double bound = growth * spread_bound + (growth - 1) * (hi - lo) / 2;
        ASSERT_LE(std::fabs(o_hat - o), bound + kLongDoubleSlack * magnitude)
            << family << " keys, scale " << p.scale << ", channel " << c << ", score bound " << e;
      }
    }
  }
}

}  // namespace
}  // namespace kvfid::ref
