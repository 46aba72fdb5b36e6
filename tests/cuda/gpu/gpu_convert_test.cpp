// The storage conversions on the device against the host (the twin's), bit for bit:
// every FP16 and BF16 pattern decoded (the device decodes non-NaN FP16 with the
// hardware conversion, convert.h), and FP32 patterns across every exponent encoded.
// Skips with the reason without a CUDA build or a device.
#include <gtest/gtest.h>

#include "reference/numeric/convert.h"
#include "cuda/engine/engine_options.h"
#include "cuda/kernels/cuda_engine.h"
#include "tests/cuda/gpu/device_convert.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

std::vector<std::uint16_t> all_16_bit_patterns() {
  std::vector<std::uint16_t> v(1 << 16);
  for (std::uint32_t i = 0; i < v.size(); ++i) v[i] = std::uint16_t(i);
  return v;
}

// Every 4099th FP32 pattern (both signs, all exponents, NaNs and Infs among them) plus
// the neighbourhoods of the FP16 limits and rounding ties.
std::vector<float> f32_sweep() {
  std::vector<float> v;
  for (std::uint64_t u = 0; u < (1ull << 32); u += 4099) v.push_back(num::float_of(std::uint32_t(u)));
  for (std::uint32_t centre : {0x477FE000u, 0x38800000u, 0x33800000u, 0x3F801000u, 0x7F800000u})
    for (std::uint32_t d = 0; d < 4096; ++d) {
      v.push_back(num::float_of(centre + d));
      v.push_back(num::float_of((centre - d) | 0x80000000u));
    }
  return v;
}

// A device that cannot run kernels skips the test with the reason.
#define SKIP_WITHOUT_DEVICE()                 \
  do {                                        \
    try {                                     \
      require_cuda_device();                  \
    } catch (const BackendUnavailable& e) {   \
      GTEST_SKIP() << e.what();               \
    }                                         \
  } while (0)

TEST(GpuConvert, DecodesEveryPatternAsTheHost) {
  SKIP_WITHOUT_DEVICE();
  const auto in = all_16_bit_patterns();
  const auto f16 = test::device_f16_to_f32(in);
  const auto bf16 = test::device_bf16_to_f32(in);
  ASSERT_EQ(f16.size(), in.size());
  ASSERT_EQ(bf16.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(num::bits_of(f16[i]), num::bits_of(num::f16_to_f32(in[i]))) << "f16 pattern " << std::hex << i;
    ASSERT_EQ(num::bits_of(bf16[i]), num::bits_of(num::bf16_to_f32(in[i]))) << "bf16 pattern " << std::hex << i;
  }
}

TEST(GpuConvert, EncodesAsTheHost) {
  SKIP_WITHOUT_DEVICE();
  const auto in = f32_sweep();
  const auto f16 = test::device_f32_to_f16(in);
  const auto bf16 = test::device_f32_to_bf16(in);
  ASSERT_EQ(f16.size(), in.size());
  ASSERT_EQ(bf16.size(), in.size());
  for (std::size_t i = 0; i < in.size(); ++i) {
    ASSERT_EQ(f16[i], num::f32_to_f16(in[i])) << "f32 bits " << std::hex << num::bits_of(in[i]);
    ASSERT_EQ(bf16[i], num::f32_to_bf16(in[i])) << "f32 bits " << std::hex << num::bits_of(in[i]);
  }
}

}  // namespace
}  // namespace kvfid::engine
