#pragma once
// The one place where `kvfid drift` turns format names into engine options and MPFR
// emulations: a KV spec is a KV policy (reference/formats/quant/kv_policy.h: "f16",
// "q8_0", "int4_32+hot=64", ...) and a weight format a name (f32, f16, bf16, q8_0,
// q4_0; reference/model/weight_storage.h); every other drift file passes them through
// as strings.
#include <string>
#include <vector>

#include "cuda/engine/engine_options.h"
#include "reference/mp/emulated_forward.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine

// Storage that changes no value: the single-source attribution runs keep the weights
// or the KV cache in it. Exact because every weight the loaders accept is F32, F16 or
// BF16 (all embed in F32), and K and V computed in F32 or narrower arithmetic are F32
// values already.
inline constexpr const char* kExactStorage = "f32";

// "f16,bf16" -> {"f16", "bf16"}, each checked by drift_engine_options. Throws
// InputError(source, ...) for an empty list, an empty or unknown spec, or a repeat.
std::vector<std::string> parse_kv_spec_list(const std::string& text, const std::string& source);

// The engine with weights stored in `weights` and the KV cache in `kv_spec`, on
// `threads` host threads (EngineOptions::threads). Throws
// InputError("--weights" or "--kv", ...) for a format the engine does not know.
EngineOptions drift_engine_options(Backend backend, const std::string& weights, const std::string& kv_spec,
                                   int threads = 0);

// The plain algorithm in MPFR with every operation rounded to `arithmetic`, weights
// stored in `weights` and the KV cache in `kv_spec`. Same errors as above.
Emulation drift_emulation(FloatFormat arithmetic, const std::string& weights, const std::string& kv_spec);

}  // namespace kvfid::cli::drift
