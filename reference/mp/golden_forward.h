#pragma once
// The certified golden: the forward pass in MPFR, every value shown to round correctly
// to float64, the precision raised until every value passes, or an error. Two methods
// (certify.h):
//   enclosure  (the default, and every committed golden's) one pass in ball arithmetic:
//              every value carries a proven radius (enclosure.h), and passes when its
//              whole ball rounds to one float64 -- a proof. Its radii are worst-case
//              bounds, which grow with depth far faster than the real error (measured
//              ~17 bits a layer on stories260K against ~3 for the real error, README), so
//              deep models need more precision than agreement's first run.
//   agreement  a cross-check: the pass is repeated with guard bits and the two runs'
//              difference taken as the error bound (Ziv-style, MPFR's own test idiom:
//              strong, not a proof)
// Both give the same bytes wherever both certify: a correctly rounded value does not
// depend on how it was shown to be one.
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/certify.h"
#include "reference/mp/memory_estimate.h"

namespace kvfid::ref {

class Progress;
class Shards;

enum class CertificationMethod { agreement, enclosure };

// "agreement" / "enclosure", as the manifest records them.
const char* certification_method_name(CertificationMethod method);

// The manifest's "certification" record of an attempt that certified every value at
// `precision` (guard_bits: the agreement method's; ignored for enclosures; for an
// enclosure, stage_precisions: each layer's, then the logits', as the precision schedule
// chose them, recorded when not empty).
nlohmann::json certification_record(CertificationMethod method, int precision, int attempts,
                                    const CertificationTally& tally, int guard_bits,
                                    const std::vector<int>& stage_precisions = {});

// The enclosure method's next precision after a failed attempt at `precision`: the bits
// the run had lost where it stopped, extrapolated to the whole depth (golden_forward.cpp
// says how), in whole 64-bit limbs, at least the next one above it; doubling without a
// bound.
int next_enclosure_precision(const UncertifiedValue& failure, const ModelConfig& config, int precision);

// The enclosure method's early stop, checked after each layer: with the residual stream
// keeping `residual_bits` above its radii after layer `layer` (MpForwardRun::residual_bits;
// none: an unbounded radius), whether the attempt at `precision` clearly cannot end
// certified -- then the failure to report (on layers.<layer>.out, the bits kept as its
// error bits, so next_enclosure_precision extrapolates from them). One layer's cost,
// where running on to the first uncertified value of the kept taps costs up to the
// whole pass (with logits-only taps, always). Measured on a 24-layer model of
// Qwen2.5-0.5B's shape, 8 tokens, logits only: 5 attempts (128, 256, 512, 576, 640 bits,
// four full passes failing at the logits, 265 CPU s) became 2 (128 stopped after layer 0,
// then 704: 75 CPU s, against 73 for agreement at 128 + 192).
std::optional<UncertifiedValue> enclosure_early_stop(std::optional<long> residual_bits, const ModelConfig& config,
                                                     int precision, int layer);

struct GoldenOptions {
  CertificationMethod method = CertificationMethod::enclosure;
  int precision_bits = 128;      // working precision of the first attempt
  int guard_bits = 64;           // agreement: the check recomputes at precision + guard
  int max_precision_bits = 1024; // give up (CertificationError) beyond this
  TapSelection taps = TapSelection::all;
  int threads = 0;               // 0: all hardware threads; results never depend on it
  // The golden of a stored model: the exact forward of the values the engine under test
  // holds, weights in `weights` (reference/model/weight_storage.h) and the KV cache per
  // the policy `kv` (reference/formats/quant/kv_policy.h, with kv_scales as
  // EngineOptions::kv_scales). Unset: the model's own weights and exact K and V, the
  // truth that total error is measured against.
  std::optional<WeightFormat> weights = {};
  std::optional<quant::KvPolicySpec> kv = {};
  std::vector<float> kv_scales = {};
  Progress* progress = nullptr;  // optional, reports on stderr
  // Optional: the cooperating ranks sharing the work (shards.h). Every rank must call
  // compute_golden with the same arguments; each returns the whole golden, identical
  // bit for bit to a single process's.
  Shards* shards = nullptr;
};

struct GoldenResult {
  TapSet taps;                   // float64, each value the correct rounding of the exact forward
  nlohmann::json certification;  // precision used, attempts, values certified, weakest margin
};

class CertificationError : public std::runtime_error {
 public:
  using std::runtime_error::runtime_error;
};

GoldenResult compute_golden(const Model& model, const std::vector<int>& tokens, const GoldenOptions& options);

// The peak memory of a golden's first attempt with these options (memory_estimate.h's
// golden_bytes: the agreement method holds two runs, an enclosure one with its radii).
std::uint64_t golden_memory_bytes(const ForwardShape& shape, const GoldenOptions& options);

}  // namespace kvfid::ref
