#pragma once
// Where `kvfid drift` turns its formats into engine options and MPFR emulations: a KV
// spec is a parsed KV policy (reference/formats/quant/kv_policy.h: "f16", "q8_0",
// "int4_32+hot=64", ...) and a weight format a parsed WeightFormat (f32, f16, bf16, q8_0,
// q4_0; reference/model/weight_storage.h); the reports name them as given.
#include <string>
#include <vector>

#include "cuda/engine/engine_options.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/model/weight_storage.h"
#include "reference/native/emulated_forward.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine

// Storage that changes no value: the single-source attribution runs keep the weights
// or the KV cache in it. Exact because every weight the loaders accept is F32, F16 or
// BF16 (all embed in F32), and K and V computed in F32 or narrower arithmetic are F32
// values already.
inline const WeightFormat kExactWeights = {};      // f32
inline const quant::KvPolicySpec kExactKv = {};  // f32
inline constexpr const char* kExactStorage = "f32";  // their name in the reports

// "f16,bf16" -> the two specs, each parsed once here. Throws InputError(source, ...) for
// an empty list, an empty, repeated or malformed spec.
std::vector<quant::KvPolicySpec> parse_kv_spec_list(const std::string& text, const std::string& source);

// The engine with weights stored in `weights` and the KV cache in `kv`, on `threads` host
// threads (EngineOptions::threads), latent attention by `latent` (EngineOptions::latent).
EngineOptions drift_engine_options(Backend backend, const WeightFormat& weights, const quant::KvPolicySpec& kv,
                                   int threads = 0, LatentPath latent = LatentPath::reconstruct);

// The plain algorithm in MPFR with every operation rounded to `arithmetic`, weights
// stored in `weights` and the KV cache in `kv`.
Emulation drift_emulation(FloatFormat arithmetic, const WeightFormat& weights, const quant::KvPolicySpec& kv);

}  // namespace kvfid::cli::drift
