#pragma once
// The plain algorithm with every intermediate rounded to a chosen binary format:
// the error a straightforward implementation at that precision makes, measured
// against the exact golden. It is the baseline of the engine's gate
// (FlashAttention's rule: engine error <= k x baseline error).
#include <string>
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"
#include "reference/model/weight_storage.h"

namespace kvfid::ref {

// The storage is the engine's (golden_forward.h's GoldenOptions names it the same way).
struct Emulation {
  FloatFormat arithmetic = FloatFormat::f32;  // every +, -, *, /, sqrt, exp result
  // Weight format (reference/model/weight_storage.h): matrices stored in it, norm
  // weights and biases in FP32, as the engine packs them.
  WeightFormat weights = {};
  // KV policy (reference/formats/quant/kv_policy.h): K and V stored per it as they
  // enter the cache (reference/mp/kv_store.h); kv_scales as EngineOptions::kv_scales.
  quant::KvPolicySpec kv = {};
  std::vector<float> kv_scales = {};
};

// Same taps and shapes as the golden; values are the emulated results, exactly.
// Computed natively (reference/native/native_forward.h), bit for bit emulated_forward_mpfr;
// under an eviction policy by emulated_forward_mpfr itself, except the window cache (the
// masked forward's bits: natively).
TapSet emulated_forward(const Model& model, const std::vector<int>& tokens, const Emulation& emulation,
                        const TapSelection& selection);

// The specification of the emulation: mp_forward with MpArith::ieee, every operation
// rounded by MPFR. Slow (MPFR calls per multiply-add); the oracle the native
// computation is tested against.
TapSet emulated_forward_mpfr(const Model& model, const std::vector<int>& tokens, const Emulation& emulation,
                             const TapSelection& selection);

}  // namespace kvfid::ref
