#include "cuda/engine/split_keys.h"

#include <algorithm>

namespace kvfid::engine {

int split_keys(SplitMode mode, int grid_units, int longest_context) {
  if (mode == SplitMode::invariant || grid_units >= kSplitTargetBlocks) return num::kSplit;
  const int splits = (kSplitTargetBlocks + grid_units - 1) / grid_units;
  const int keys = (longest_context + splits - 1) / splits;
  const int whole_warps = (keys + kSplitGranule - 1) / kSplitGranule * kSplitGranule;
  return std::clamp(whole_warps, kSplitGranule, num::kSplit);
}

int step_split_keys(SplitMode mode, const std::vector<StepRow>& rows, int n_kv_heads) {
  int longest = 1;
  for (const StepRow& r : rows) longest = std::max(longest, r.pos + 1);
  return split_keys(mode, std::max(1, int(rows.size()) * n_kv_heads), longest);
}

}  // namespace kvfid::engine
