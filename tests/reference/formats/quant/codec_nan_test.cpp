// Derived test, run for every codec in registry.h: what a NaN element becomes. NaN is
// outside every format's domain (callers reject it first, reference/metrics/
// gross_check.h), but the cache must not turn one bad value into a corrupt block, and
// host and device must agree. The documented behaviour of every registered format:
//   f32, f16, bf16, fp8_e4m3, fp8_e5m2: the element encodes to a NaN code;
//   q8_0, q4_0, int*, int*a: the scale ignores the NaN and the element is quantized as 0
//     would be, so the block is byte for byte the block with 0 in its place;
//   tq*: the norm counts the NaN as 0 and the element is quantized as 0 would be: the
//     same, byte for byte.
// The test block has both signs, so a 0 in it moves no scale, minimum or maximum.
#include <cmath>
#include <limits>
#include <random>

#include <gtest/gtest.h>

#include "tests/common/test_env.h"
#include "tests/reference/formats/quant/codec_types.h"
#include "tests/reference/formats/quant/derived_check.h"

namespace kvfid::ref {
namespace {

constexpr int kTrials = 64;

class CodecNan : public test::EveryCodec {};
INSTANTIATE_EVERY_CODEC(CodecNan);

TEST_P(CodecNan, NanEncodesToNanOrAsZero) {
  const quant::FormatInfo& f = format();
  SCOPED_TRACE(test::seed_trace());
  const int n = f.block;
  std::mt19937_64 rng(test::test_seed());
  std::normal_distribution<float> normal;
  for (const quant::CodecParams& p : test::test_params())
    for (int trial = 0; trial < kTrials; ++trial) {
      std::vector<float> x(n);
      for (float& v : x) v = normal(rng);
      if (n > 2) {
        x[0] = std::fabs(x[0]) + 1;     // a positive and a negative value, both larger
        x[1] = -std::fabs(x[1]) - 1;    // than the 0 that replaces the NaN could be
      }
      const int at = n > 2 ? 2 + trial % (n - 2) : 0;
      std::vector<float> with_nan = x, with_zero = x;
      with_nan[at] = std::numeric_limits<float>::quiet_NaN();
      with_zero[at] = 0.0f;
      std::vector<std::uint8_t> nan_bytes(f.bytes), zero_bytes(f.bytes);
      f.encode(with_nan.data(), nan_bytes.data(), p);
      f.encode(with_zero.data(), zero_bytes.data(), p);
      if (std::isnan(f.decode_exact(nan_bytes.data(), at, p))) {
        ASSERT_TRUE(std::isnan(f.decode(nan_bytes.data(), at, p)));
        for (int i = 0; i < n; ++i) {
          if (i == at) continue;
          ASSERT_EQ(f.decode_exact(nan_bytes.data(), i, p), f.decode_exact(zero_bytes.data(), i, p))
              << "element " << i << ": the NaN at " << at << " disturbed it";
        }
      } else {
        ASSERT_EQ(test::hex_bytes(nan_bytes), test::hex_bytes(zero_bytes))
            << "a NaN at element " << at << " neither encodes to NaN nor as 0 would";
      }
    }
}

}  // namespace
}  // namespace kvfid::ref
