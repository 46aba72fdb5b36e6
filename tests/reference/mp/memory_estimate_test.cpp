// The memory estimate's building blocks and the refusal it leads to. Its bound on a
// real run is held by tests/tools/kvfid/golden_memory_test.cpp (measured peak RSS).
#include "reference/mp/memory_estimate.h"

#include <gtest/gtest.h>

#include "reference/mp/enclosure.h"
#include "reference/mp/mp_array.h"
#include "reference/synth/synthetic_model.h"
#include "reference/synth/synthetic_shapes.h"
#include "reference/util/available_memory.h"

namespace kvfid::ref {
namespace {

TEST(MemoryEstimate, AnMpfrNumberIsItsStructAndItsLimbs) {
  EXPECT_EQ(mp_number_bytes(53), sizeof(__mpfr_struct) + 8);
  EXPECT_EQ(mp_number_bytes(64), sizeof(__mpfr_struct) + 8);
  EXPECT_EQ(mp_number_bytes(128), sizeof(__mpfr_struct) + 16);
  EXPECT_EQ(mp_number_bytes(192), sizeof(__mpfr_struct) + 24);
}

TEST(MemoryEstimate, CoversWhatTheGoldenHoldsAtOnce) {
  const ModelConfig c = synthetic_shape("tiny-qwen2");
  for (TapSelection taps : {TapSelection::logits, TapSelection::all})
    for (int T : {1, 7, 64}) {
      std::uint64_t values = 0;
      for (const TapSpec& s : tap_specs(c, T, taps)) {
        std::uint64_t n = 1;
        for (auto d : s.shape) n *= std::uint64_t(d);
        values += n;
      }
      const ForwardShape shape{c, T, taps, false, 2};
      // Every tap as float64, and both runs' logits blocks in MPFR (golden_forward.cpp).
      const std::uint64_t blocks = std::uint64_t(c.vocab) * (std::uint64_t(golden_logits_block(c, T, 192)) * mp_number_bytes(192) +
                                                             std::uint64_t(golden_logits_block(c, T, 128)) * mp_number_bytes(128));
      EXPECT_GE(golden_bytes(shape, 128, 64), values * 8 + blocks);
      EXPECT_GT(golden_bytes(shape, 128, 64), golden_bytes(shape, 64, 32));
      // The enclosure method (guard 0): one run, its logits block with a radius per value.
      const std::uint64_t block = std::uint64_t(golden_logits_block(c, T, 128));
      EXPECT_GE(golden_bytes(shape, 128, 0),
                values * 8 + std::uint64_t(c.vocab) * block * (mp_number_bytes(128) + mp_number_bytes(kRadiusBits)));
      EXPECT_GT(mp_forward_bytes(ForwardShape{c, T, taps, true, 2}, 128), mp_forward_bytes(shape, 128));
      // A whole forward keeps its taps in MPFR.
      EXPECT_GE(mp_forward_bytes(shape, 128), values * mp_number_bytes(128));
      // The baseline's taps as float64, and the logits as floats before their tap.
      EXPECT_GE(emulated_bytes(shape), values * 8 + std::uint64_t(T) * std::uint64_t(c.vocab) * 4);
    }
  // Attention probabilities grow with the square of the tokens: for a + bT + cT^2,
  // f(128) - f(64) exceeds 2 (f(64) - f(32)) exactly when c > 0.
  auto at = [&](int T) { return golden_bytes({c, T, TapSelection::all, false, 1}, 128, 64); };
  EXPECT_GT(at(128) - at(64), 2 * (at(64) - at(32)));
}

// The logits come a block of tokens at a time: as many as fit in kGoldenLogitsBlockBytes,
// at least one, at most all. The 0.5B shape's vocabulary at 192 bits: 7 tokens.
TEST(MemoryEstimate, LogitsBlocksFitTheirBudget) {
  ModelConfig c = synthetic_shape("tiny-qwen2");
  c.vocab = 151936;
  EXPECT_EQ(golden_logits_block(c, 128, 192), 7);
  EXPECT_EQ(golden_logits_block(c, 3, 192), 3);
  EXPECT_LE(std::uint64_t(golden_logits_block(c, 128, 192)) * 151936 * mp_number_bytes(192), kGoldenLogitsBlockBytes);
  c.vocab = 1 << 24;  // a token's logits alone exceed the budget: still one token a block
  EXPECT_EQ(golden_logits_block(c, 128, 1024), 1);
}

TEST(MemoryEstimate, RefusesWithOneLineSayingWhatItNeedsAndWhatThereIs) {
  EXPECT_NO_THROW(require_memory("kvfid golden", 100, 200, MemoryLimit{300, "MemAvailable"}));
  EXPECT_NO_THROW(require_memory("kvfid golden", 100, 200, std::nullopt));
  try {
    require_memory("kvfid golden", std::uint64_t(3) << 30, std::uint64_t(1) << 29, MemoryLimit{std::uint64_t(2) << 30, "RLIMIT_AS"});
    FAIL() << "no MemoryError";
  } catch (const MemoryError& e) {
    EXPECT_STREQ(e.what(),
                 "kvfid golden needs about 3.5 GiB (mapped weights 3 GiB + working memory 512 MiB), but only 2 GiB is "
                 "available (RLIMIT_AS)");
  }
  EXPECT_EQ(format_bytes(1536), "1.5 KiB");
  EXPECT_EQ(format_bytes(12), "12 B");
}

TEST(MemoryEstimate, AvailableMemoryIsReadOnLinux) {
  const std::optional<MemoryLimit> limit = available_memory();
  ASSERT_TRUE(limit.has_value());  // /proc/meminfo is always there on Linux
  EXPECT_GT(limit->bytes, 0u);
}

}  // namespace
}  // namespace kvfid::ref
