#pragma once
// What a user picks when running the engine under test.
#include <stdexcept>
#include <string>
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/model/weight_storage.h"

namespace kvfid::engine {
using namespace kvfid::ref;  // the specification's names: the layer below

enum class Backend { twin, cuda };

// How attention cuts a row's keys into splits (cuda/engine/split_keys.h).
//   invariant  fixed splits of num::kSplit keys: a row's bits never depend on the step
//              it is in, so cached decode, chunked prefill and recompute agree bitwise
//   by_length  the split size follows the step's rows and longest context, as
//              flash-decoding engines pick num_splits: not batch- or schedule-invariant
enum class SplitMode { invariant, by_length };

// How latent attention (DeepSeek's MLA, reference/model/config.h) reads its cached rows:
//   reconstruct  each token's keys and values rebuilt from its row (wkv_b), then the
//                attention every other model runs
//   absorb       the up-projections folded into the query and the output
//                (cuda/common/latent_math.h): the rows read as they are cached
enum class LatentPath { reconstruct, absorb };

struct EngineOptions {
  Backend backend = Backend::twin;
  // Weight storage (reference/model/weight_storage.h): f32, f16 or bf16 held as such,
  // or a block format of the quantized-format registry (q8_0, ...) dequantized to FP32
  // once when packed (packed_model.cpp says why that is what an in-kernel dequantize
  // computes). Arithmetic accumulates in FP32 either way. Checked against the model at
  // construction.
  WeightFormat weights = {};
  // KV-cache policy (reference/formats/quant/kv_policy.h: "f16", "q8_0",
  // "k=q8_0+v=f16+hot=64", ... as parsed), spread over the model's layers at construction.
  quant::KvPolicySpec kv = {};
  // Replaces the policy's static scales (the FP8 formats'): [n_layers, 2 (K, V),
  // n_kv_heads]; empty: the spec's.
  std::vector<float> kv_scales = {};
  int chunk = 0;  // prefill chunk size; 0 = the whole prompt at once
  LatentPath latent = LatentPath::reconstruct;  // latent attention's decode path (others ignore it)
  SplitMode split = SplitMode::invariant;
  TapSelection taps = TapSelection::all;
  // Host threads the twin runs a step's independent blocks on (cuda/twin/thread_pool.h);
  // 0: one per hardware thread. The bits do not depend on it. The CUDA engine ignores
  // it. Negative: InputError at construction.
  int threads = 0;
};

// "twin" or "cuda"; throws InputError(source, ...) otherwise.
Backend backend_from_string(const std::string& name, const std::string& source);

// "invariant" or "by-length" (to_string's names); throws InputError(source, ...) otherwise.
SplitMode split_mode_from_string(const std::string& name, const std::string& source);
std::string to_string(SplitMode mode);
// "reconstruct" or "absorb" (to_string's names); throws InputError(source, ...) otherwise.
LatentPath latent_path_from_string(const std::string& name, const std::string& source);
std::string to_string(LatentPath path);

// Thrown when the CUDA backend is asked for but no GPU (or no CUDA build) is there;
// GPU tests skip with its message.
class BackendUnavailable : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

}  // namespace kvfid::engine
