#include "tests/reference/formats/quant/block_families.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <random>
#include <stdexcept>

#include "reference/numeric/ieee.h"

namespace kvfid::test {
using namespace kvfid::ref;  // the specification's types

namespace {

bool all_finite(const std::vector<float>& v) {
  return std::all_of(v.begin(), v.end(), [](float x) { return std::isfinite(x); });
}

// Whole blocks holding at least `elements` values.
int blocks_for(int block, int elements) { return (elements + block - 1) / block; }

std::vector<float> scaled(const std::vector<float>& pattern, float a) {
  std::vector<float> x(pattern.size());
  for (std::size_t i = 0; i < x.size(); ++i) x[i] = pattern[i] * a;
  return x;
}

float next_below(float a) { return std::nextafter(a, 0.0f); }

// Sign patterns for the near-maximum blocks: all equal, alternating, one outlier over
// small values, and a negative extreme last (Q4_0's d takes the extreme's sign).
std::vector<std::pair<std::string, std::vector<float>>> magnitude_patterns(int block) {
  std::vector<float> equal(block, 1.0f), alternating(block), outlier(block), negative_last(block);
  for (int i = 0; i < block; ++i) {
    alternating[i] = i % 2 ? -1.0f : 1.0f;
    outlier[i] = float((i % 5) - 2) / 64;
    negative_last[i] = float((i % 3) - 1) / 4;
  }
  outlier[block / 2] = 1.0f;
  negative_last[block - 1] = -1.0f;
  return {{"equal", equal}, {"alternating", alternating}, {"outlier", outlier}, {"negative_last", negative_last}};
}

void add_near_maximum(const quant::FormatInfo& f, const quant::CodecParams& p, std::vector<TestBlock>& out) {
  for (const auto& [name, pattern] : magnitude_patterns(f.block)) {
    const float limit = largest_finite_input(f, p, pattern);
    // The largest magnitude the format holds for this pattern: what the limit decodes to.
    float held = 0;
    for (float v : decode_block(f, encode_block(f, scaled(pattern, limit), p), p)) held = std::max(held, std::fabs(v));
    // The limit itself, what it holds, and just above that (saturation, or the
    // rounding down to it) -- all no further than the limit (a grid may extend past
    // the inputs that produce it: an asymmetric one ends at mh + qmax dh).
    std::vector<float> magnitudes = {limit, next_below(limit), held, next_below(held)};
    for (int k = 1; k <= 12; ++k) magnitudes.push_back(float(double(held) * (1 + std::ldexp(1.0, -k))));
    for (float a : magnitudes)
      if (a <= limit) out.push_back({"near maximum (" + name + ")", scaled(pattern, a)});
  }
}

void add_ties(const quant::FormatInfo& f, const quant::CodecParams& p, std::vector<TestBlock>& out) {
  if (f.block == 1) {
    if (!f.exhaustive) return;  // FP32: no grid to tie between, every float is a code
    const auto values = code_values(f, p);
    // Every midpoint for small formats; at most ~1000, evenly spread, for FP16/BF16.
    const std::size_t stride = std::max<std::size_t>(1, values.size() / 1000);
    for (std::size_t k = 0; k + 1 < values.size(); k += stride)
      out.push_back({"tie", {float((values[k] + values[k + 1]) / 2)}});
    return;
  }
  for (float a : kPins) {
    const auto levels = sweep_levels(f, p, a, f.block - 1).levels;
    std::vector<float> x = pinned_block(f.block, a);
    int at = 2;
    for (std::size_t k = 0; k + 1 < levels.size(); ++k) {
      x[at] = float((levels[k] + levels[k + 1]) / 2);
      if (++at == f.block || k + 2 == levels.size()) {
        out.push_back({"tie", x});
        x = pinned_block(f.block, a);
        at = 2;
      }
    }
  }
}

}  // namespace

std::vector<quant::CodecParams> test_params() { return {quant::CodecParams{1.0f}, quant::CodecParams{0.37f}}; }

std::vector<std::uint8_t> encode_block(const quant::FormatInfo& f, const std::vector<float>& x,
                                       const quant::CodecParams& p) {
  std::vector<std::uint8_t> bytes(f.bytes);
  f.encode(x.data(), bytes.data(), p);
  return bytes;
}

std::vector<float> decode_block(const quant::FormatInfo& f, const std::vector<std::uint8_t>& bytes,
                                const quant::CodecParams& p) {
  std::vector<float> y(f.block);
  for (int i = 0; i < f.block; ++i) y[i] = f.decode(bytes.data(), i, p);
  return y;
}

std::vector<TestBlock> random_blocks(int block, std::uint64_t seed, int elements) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> log2_sigma(-8, 4);
  std::normal_distribution<double> normal;
  std::student_t_distribution<double> heavy(3);
  std::uniform_real_distribution<double> unit;
  // Clipped draws keep every value within 400 sigma <= 6400 (sigma <= 2^4): inside
  // FP16's range and every block format's scale range (the saturating FP8 formats are
  // the only ones these blocks push past their largest value).
  const auto clipped = [&rng](auto& dist, double limit) { return std::clamp(dist(rng), -limit, limit); };
  std::vector<TestBlock> out;
  for (int b = 0; b < blocks_for(block, elements); ++b) {
    const double sigma = std::exp2(log2_sigma(rng));
    std::vector<float> n(block), t(block), o(block), u(block);
    for (int i = 0; i < block; ++i) {
      const bool outlier_channel = block > 3 && (i == 3 || i == block - 2);
      n[i] = float(sigma * clipped(normal, 8));
      t[i] = float(sigma * clipped(heavy, 64));
      o[i] = float(sigma * clipped(normal, 4) * (outlier_channel ? 100 : 1));
      u[i] = float(sigma * unit(rng));
    }
    out.push_back({"normal", n});
    out.push_back({"heavy-tailed", t});
    out.push_back({"outlier channels", o});
    out.push_back({"uniform positive", u});
  }
  return out;
}

std::vector<TestBlock> offset_blocks(int block, std::uint64_t seed, int elements) {
  std::mt19937_64 rng(seed);
  std::uniform_real_distribution<double> log2_sigma(-8, 4);
  std::normal_distribution<double> normal;
  std::vector<TestBlock> out;
  for (int b = 0; b < blocks_for(block, elements); ++b) {
    const double sigma = std::exp2(log2_sigma(rng));
    const double mean = (b % 2 ? -40 : 40) * sigma;
    std::vector<float> x(block);
    for (float& v : x) v = float(mean + sigma * normal(rng));
    out.push_back({"offset", x});
  }
  return out;
}

std::vector<TestBlock> adversarial_blocks(const quant::FormatInfo& f, const quant::CodecParams& p) {
  const int n = f.block;
  std::vector<TestBlock> out;
  for (float v : {1.0f, -3.7f, 1e-3f, 65504.0f, -0.5f}) out.push_back({"all equal", std::vector<float>(n, v)});
  {
    std::vector<float> x(n, 0.0f);
    x[n - 1] = 1000.0f;
    out.push_back({"one outlier over zeros", x});
    std::vector<float> y(n);
    for (int i = 0; i < n; ++i) y[i] = 0.01f * float((i * 7) % 11 - 5);
    y[n / 2] = -1000.0f;
    out.push_back({"one outlier over small values", y});
  }
  out.push_back({"zeros", std::vector<float>(n, 0.0f)});
  out.push_back({"negative zeros", std::vector<float>(n, -0.0f)});
  {
    std::vector<float> sub(n), mixed(n), smallest(n), boundary(n);
    for (int i = 0; i < n; ++i) {
      const std::uint32_t man = (0x2F1u + 0x9E3779B9u * std::uint32_t(i)) & 0x7FFFFFu;  // spread mantissas
      sub[i] = num::float_of(man | (i % 2 ? 0x80000000u : 0u));
      mixed[i] = i % 3 ? sub[i] : 0.0f;
      smallest[i] = num::float_of(i % 2 ? 0x80000001u : 0x1u);  // +-2^-149
      boundary[i] = num::float_of(i % 2 ? 0x807FFFFFu : 0x00800000u);  // largest subnormal, smallest normal
    }
    out.push_back({"FP32 subnormals", sub});
    out.push_back({"FP32 subnormals and zeros", mixed});
    out.push_back({"smallest FP32 subnormals", smallest});
    out.push_back({"FP32 subnormal-normal boundary", boundary});
  }
  {
    std::vector<float> x(n);
    for (int i = 0; i < n; ++i) x[i] = (i % 2 ? -1.0f : 1.0f) * (0.25f + 0.125f * float(i % 7));
    out.push_back({"mixed signs", x});
  }
  {
    // amax = 9 * 2^-18 ~ 3.4e-5: every block format's scale (at most amax / 7) is below
    // 2^-14, in FP16's subnormal range, where its rounding is relatively large.
    std::vector<float> x(n);
    for (int i = 0; i < n; ++i) x[i] = float((i * 37) % 19 - 9) * 0x1p-18f;
    out.push_back({"FP16-subnormal scales", x});
  }
  add_near_maximum(f, p, out);
  add_ties(f, p, out);
  return out;
}

float largest_finite_input(const quant::FormatInfo& f, const quant::CodecParams& p, const std::vector<float>& pattern) {
  const auto finite_at = [&](std::uint32_t bits) {
    return all_finite(decode_block(f, encode_block(f, scaled(pattern, num::float_of(bits)), p), p));
  };
  std::uint32_t good = 0, bad = 0x7F800000u;  // finite at A = 0; A = Inf is out of the domain
  while (bad - good > 1) {
    const std::uint32_t mid = good + (bad - good) / 2;
    (finite_at(mid) ? good : bad) = mid;
  }
  return num::float_of(good);
}

std::vector<float> pinned_block(int block, float a) {
  std::vector<float> x(block, 0.0f);
  x[0] = a;
  x[1] = -a;
  return x;
}

Sweep sweep_levels(const quant::FormatInfo& f, const quant::CodecParams& p, float a, int at) {
  Sweep s{{}, 2.0 * a / (kSweepPoints - 1)};
  std::vector<float> x = pinned_block(f.block, a);
  for (int k = 0; k < kSweepPoints; ++k) {
    x[at] = k + 1 == kSweepPoints ? a : float(-double(a) + k * s.step);
    const auto bytes = encode_block(f, x, p);
    s.levels.push_back(f.decode_exact(bytes.data(), at, p));
  }
  std::sort(s.levels.begin(), s.levels.end());
  s.levels.erase(std::unique(s.levels.begin(), s.levels.end()), s.levels.end());
  return s;
}

std::vector<double> code_values(const quant::FormatInfo& f, const quant::CodecParams& p) {
  if (f.block != 1 || f.bytes > 2) throw std::logic_error("code_values: not a small one-element format");
  std::vector<double> values;
  std::vector<std::uint8_t> bytes(f.bytes);
  for (std::uint32_t code = 0; code < (1u << (8 * f.bytes)); ++code) {
    for (int b = 0; b < f.bytes; ++b) bytes[b] = std::uint8_t(code >> (8 * b));
    const double v = f.decode_exact(bytes.data(), 0, p);
    if (std::isfinite(v)) values.push_back(v);
  }
  std::sort(values.begin(), values.end());
  values.erase(std::unique(values.begin(), values.end()), values.end());
  return values;
}

}  // namespace kvfid::test
