// The split-size heuristic (cuda/engine/split_keys.h): the invariant mode always the
// fixed kSplit; the by-length mode whole warps within [32, kSplit], non-decreasing in the
// step's blocks and its longest context, small for a lone decode row and kSplit for a
// long prefill; and the option's names.
#include "cuda/engine/split_keys.h"

#include <gtest/gtest.h>

#include "reference/util/input_error.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below
namespace {

// Every grid size up to past the target and contexts up to 32K keys (a long-context decode).
constexpr int kMaxUnits = 2 * kSplitTargetBlocks;
constexpr int kMaxContext = 32768;

TEST(SplitKeys, InvariantModeIsAlwaysTheFixedSplit) {
  for (int units : {1, 4, kSplitTargetBlocks - 1, kSplitTargetBlocks, 1000})
    for (int context : {1, 33, 256, 257, kMaxContext}) EXPECT_EQ(split_keys(SplitMode::invariant, units, context), num::kSplit);
}

TEST(SplitKeys, ByLengthIsWholeWarpsWithinBoundsAndMonotone) {
  for (int units = 1; units <= kMaxUnits; ++units) {
    int previous = 0;
    for (int context = 1; context <= kMaxContext; context += context < 600 ? 1 : 97) {
      const int s = split_keys(SplitMode::by_length, units, context);
      ASSERT_EQ(s % kSplitGranule, 0) << units << " units, context " << context;
      ASSERT_GE(s, kSplitGranule);
      ASSERT_LE(s, num::kSplit);
      ASSERT_GE(s, previous) << "shrank with a longer context: " << units << " units, context " << context;
      if (units > 1) {
        ASSERT_GE(s, split_keys(SplitMode::by_length, units - 1, context)) << "shrank with more blocks";
      }
      previous = s;
    }
  }
}

// Below the target, S is the smallest whole-warp size that cuts the longest context
// into at most ceil(target / units) splits (the number that fills the target), unless
// the bounds clamp it.
TEST(SplitKeys, ByLengthIsTheSmallestWholeWarpSizeGivingTheWantedSplits) {
  for (int units = 1; units < kSplitTargetBlocks; ++units)
    for (int context : {40, 300, 1000, 4096, 8192, kMaxContext}) {
      SCOPED_TRACE(std::to_string(units) + " units, context " + std::to_string(context));
      const int s = split_keys(SplitMode::by_length, units, context);
      const int wanted = (kSplitTargetBlocks + units - 1) / units;
      if (s < num::kSplit) {
        EXPECT_LE(num::split_count(context, s), wanted);
      }
      if (s > kSplitGranule) {
        EXPECT_GT(num::split_count(context, s - kSplitGranule), wanted);
      }
    }
  for (int units : {kSplitTargetBlocks, kSplitTargetBlocks + 1, 1000})
    EXPECT_EQ(split_keys(SplitMode::by_length, units, kMaxContext), num::kSplit) << "the grid is full without splitting";
}

TEST(SplitKeys, LoneDecodeRowAndLongPrefillPickDifferentSizes) {
  // stories260K's shape: 4 KV heads. A decode step of one row at 300 keys asks for
  // ceil(132/4) = 33 splits: 300/33 -> 10 keys -> one warp. A prefill of 300 rows has
  // 1200 blocks already: the fixed split.
  const std::vector<StepRow> decode = {{0, 1, 299}};
  std::vector<StepRow> prefill;
  for (int p = 0; p < 300; ++p) prefill.push_back({0, 1, p});
  EXPECT_EQ(step_split_keys(SplitMode::by_length, decode, 4), kSplitGranule);
  EXPECT_EQ(step_split_keys(SplitMode::by_length, prefill, 4), num::kSplit);
  EXPECT_EQ(step_split_keys(SplitMode::invariant, decode, 4), num::kSplit);
  // A long single-row decode: 32K keys over 132 splits of one KV head = 249 -> 256;
  // over 33 splits (4 KV heads) it is the fixed split too.
  EXPECT_EQ(split_keys(SplitMode::by_length, 1, kMaxContext), num::kSplit);
  // 8K keys, one KV head: 8192 / 132 = 62.06 -> 63 keys -> two warps.
  EXPECT_EQ(split_keys(SplitMode::by_length, 1, 8192), 2 * kSplitGranule);
  // A batch of decode rows is one step: its longest context decides for all of them.
  const std::vector<StepRow> batch = {{0, 1, 40}, {1, 1, 8191}};
  EXPECT_EQ(step_split_keys(SplitMode::by_length, batch, 1), split_keys(SplitMode::by_length, 2, 8192));
}

TEST(SplitKeys, ModeNamesRoundTripAndUnknownNamesAreInputErrors) {
  for (SplitMode m : {SplitMode::invariant, SplitMode::by_length}) EXPECT_EQ(split_mode_from_string(to_string(m), "--split"), m);
  EXPECT_EQ(to_string(SplitMode::by_length), "by-length");
  for (const char* bad : {"", "by_length", "Invariant", "length"}) {
    try {
      split_mode_from_string(bad, "--split");
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const InputError& e) {
      EXPECT_NE(std::string(e.what()).find("--split"), std::string::npos) << e.what();
    }
  }
}

}  // namespace
}  // namespace kvfid::engine
