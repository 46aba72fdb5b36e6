// Every registered quantized format on the device against the host (the twin's
// arithmetic), byte for byte and bit for bit: the derived tests' random and
// adversarial blocks encoded and decoded, every code of the one-element formats
// decoded and every FP16 value encoded. Skips with the reason without a CUDA build or a
// device.
#include <cmath>
#include <string>

#include <gtest/gtest.h>

#include "reference/numeric/convert.h"
#include "cuda/engine/engine_options.h"
#include "reference/formats/quant/registry.h"
#include "tests/common/test_env.h"
#include "tests/cuda/gpu/device_quant.h"
#include "tests/reference/formats/quant/block_families.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

constexpr int kElementsPerFamily = 4096;

// Empty when kernels can run here, else why not.
std::string device_unavailable_reason() {
  try {
    test::device_decode(0, std::vector<std::uint8_t>(quant::all_formats()[0].bytes), {});
    return "";
  } catch (const BackendUnavailable& e) {
    return e.what();
  }
}

#define SKIP_WITHOUT_DEVICE()                                        \
  do {                                                               \
    static const std::string reason = device_unavailable_reason();  \
    if (!reason.empty()) GTEST_SKIP() << reason;                     \
  } while (0)

struct Batch {
  std::vector<float> x;            // [blocks * block]
  std::vector<std::string> names;  // [blocks]
};

Batch derived_blocks(const quant::FormatInfo& f, const quant::CodecParams& p) {
  Batch b;
  auto blocks = test::random_blocks(f.block, test::test_seed(), kElementsPerFamily);
  for (auto& o : test::offset_blocks(f.block, test::test_seed() + 1, kElementsPerFamily)) blocks.push_back(std::move(o));
  for (auto& a : test::adversarial_blocks(f, p)) blocks.push_back(std::move(a));
  for (const auto& tb : blocks) {
    b.x.insert(b.x.end(), tb.x.begin(), tb.x.end());
    b.names.push_back(tb.family);
  }
  return b;
}

std::vector<std::uint8_t> host_encode(const quant::FormatInfo& f, const std::vector<float>& x, const quant::CodecParams& p) {
  std::vector<std::uint8_t> out(x.size() / f.block * f.bytes);
  for (std::size_t b = 0; b < x.size() / f.block; ++b) f.encode(x.data() + b * f.block, out.data() + b * f.bytes, p);
  return out;
}

// Bit for bit; any NaN for NaN (a NaN's payload through a multiplication is the
// hardware's choice: x86 keeps the operand's, CUDA returns a canonical one).
void expect_decodes_as_host(const quant::FormatInfo& f, const std::vector<std::uint8_t>& blocks, const quant::CodecParams& p) {
  const auto device = test::device_decode(f.index, blocks, p);
  ASSERT_EQ(device.size(), blocks.size() / f.bytes * f.block);
  for (std::size_t e = 0; e < device.size(); ++e) {
    const float host = f.decode(blocks.data() + e / f.block * f.bytes, int(e % f.block), p);
    if (std::isnan(host)) {
      ASSERT_TRUE(std::isnan(device[e])) << f.name << " element " << e;
    } else {
      ASSERT_EQ(num::bits_of(device[e]), num::bits_of(host)) << f.name << " element " << e << ": host " << host
                                                             << ", device " << device[e];
    }
  }
}

TEST(GpuQuant, EncodesTheDerivedBlocksAsTheHost) {
  SKIP_WITHOUT_DEVICE();
  SCOPED_TRACE(test::seed_trace());
  for (const quant::FormatInfo& f : quant::all_formats())
    for (const quant::CodecParams& p : test::test_params()) {
      const Batch batch = derived_blocks(f, p);
      const auto host = host_encode(f, batch.x, p);
      const auto device = test::device_encode(f.index, batch.x, p);
      ASSERT_EQ(device.size(), host.size());
      for (std::size_t b = 0; b < batch.names.size(); ++b)
        ASSERT_TRUE(std::equal(host.begin() + b * f.bytes, host.begin() + (b + 1) * f.bytes, device.begin() + b * f.bytes))
            << f.name << ", scale " << p.scale << ": " << batch.names[b] << " block " << b << " differs";
    }
}

TEST(GpuQuant, DecodesTheDerivedBlocksAsTheHost) {
  SKIP_WITHOUT_DEVICE();
  SCOPED_TRACE(test::seed_trace());
  for (const quant::FormatInfo& f : quant::all_formats())
    for (const quant::CodecParams& p : test::test_params()) {
      SCOPED_TRACE(testing::Message() << "scale " << p.scale);
      expect_decodes_as_host(f, host_encode(f, derived_blocks(f, p).x, p), p);
    }
}

// One-element formats of at most two bytes: every byte pattern (Inf, NaN and invalid
// codes included) decoded; every FP16 value (as a float, NaN and Inf included) encoded.
TEST(GpuQuant, SmallOneElementFormatsEveryCodeAndEveryFp16Value) {
  SKIP_WITHOUT_DEVICE();
  std::vector<float> every_f16(65536);
  for (std::uint32_t h = 0; h < 65536; ++h) every_f16[h] = num::f16_to_f32(std::uint16_t(h));
  for (const quant::FormatInfo& f : quant::all_formats()) {
    if (f.block != 1 || f.bytes > 2) continue;
    for (const quant::CodecParams& p : test::test_params()) {
      SCOPED_TRACE(testing::Message() << f.name << ", scale " << p.scale);
      std::vector<std::uint8_t> codes;
      for (std::uint32_t c = 0; c < (1u << (8 * f.bytes)); ++c)
        for (int b = 0; b < f.bytes; ++b) codes.push_back(std::uint8_t(c >> (8 * b)));
      expect_decodes_as_host(f, codes, p);
      EXPECT_EQ(test::device_encode(f.index, every_f16, p), host_encode(f, every_f16, p));
    }
  }
}

}  // namespace
}  // namespace kvfid::engine
