#pragma once
// Keys per attention split for a step (attention_math.h cuts each row's keys into
// splits of this many, boundaries at its multiples, folded in increasing order). One
// host function, used by the twin and the CUDA backend alike, so that both cut every
// step the same way in either split mode.
#include <vector>

#include "cuda/common/attention_math.h"
#include "cuda/engine/backend.h"

namespace kvfid::engine {

// The number of blocks the by-length mode aims to have in flight: the streaming
// multiprocessors of an H100 SXM (132), the GPU flash-decoding heuristics tune for
// (they split the keys until the grid covers the SMs about once).
inline constexpr int kSplitTargetBlocks = 132;
// Split sizes are whole warps: the kernels' blocks of num::kSplit threads run a split
// of S keys with the threads past S idle, and the warp butterflies of
// attention_math.h stay whole.
inline constexpr int kSplitGranule = num::kWarp;

// Keys per split:
//   invariant  num::kSplit, whatever the step
//   by_length  grid_units = the decode kernel's blocks per split (rows x KV heads).
//              When they already reach kSplitTargetBlocks, num::kSplit; else the
//              longest context cut into ceil(target / grid_units) splits, its size
//              rounded up to a multiple of kSplitGranule and clamped to
//              [kSplitGranule, num::kSplit].
// Non-decreasing in grid_units and in longest_context. grid_units and
// longest_context are at least 1.
int split_keys(SplitMode mode, int grid_units, int longest_context);

// split_keys for a step's rows: grid_units = rows x n_kv_heads, longest context the
// largest pos + 1.
int step_split_keys(SplitMode mode, const std::vector<StepRow>& rows, int n_kv_heads);

}  // namespace kvfid::engine
