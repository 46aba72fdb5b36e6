#pragma once
// The forward pass in MPFR, shared by the golden (exact arithmetic at P bits) and the
// emulation (IEEE arithmetic in a narrow format). Every token is processed at once,
// layer by layer; causality comes from the attention mask, so each value is what a
// token-by-token decode computes.
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/model/model.h"
#include "reference/mp/attention.h"
#include "reference/mp/evicting_attention.h"
#include "reference/mp/mp_arith.h"
#include "reference/mp/mp_array.h"
#include "reference/mp/mp_weights.h"

namespace kvfid::ref {

class Progress;
class Shards;

struct MpForwardOptions {
  MpArith arith = MpArith::exact(128);
  // When set, K and V are stored per the policy as they enter the cache (kv_store.h)
  // and every query reads the form its position calls for; the k and v taps hold what
  // each row's own query reads for its own key and value. Under latent attention the
  // cache rows are stored instead (store_latent) and k and v reconstructed from them.
  // Its eviction, if any, runs under enclose too: the stored forms are exact and each
  // decision is proven (evicting_attention.h). Unset: K and V as computed.
  std::optional<quant::KvPolicy> kv;
  TapSelection taps = TapSelection::all;
  int threads = 1;               // as resolved by resolve_thread_count
  Progress* progress = nullptr;  // advanced once per layer and once for the head
  // When set, projections and attention are split across the cooperating ranks
  // (shards.h); every rank returns the same taps, bit for bit, as a single process.
  Shards* shards = nullptr;
  // exact() only: every value also gets a radius enclosing the true value (enclosure.h),
  // the golden's certification. The values themselves are the same bits either way,
  // unless the schedule below lowers a layer's precision.
  bool enclose = false;
  // With enclose: each layer after the first computes at the precision its input's radii
  // leave worth computing (the precision schedule, mp_forward.cpp), never above arith's;
  // the residual stream stays at arith's. Off: every layer at arith's precision.
  bool precision_schedule = true;
  // A StreamingLLM cache (window > 0): every layer's queries read the first `sinks` keys
  // and the last `window` only (attention.h's mask; not with enclose, nor on a model
  // with its own sliding window).
  AttentionMask eviction{true, 0, 0};
  // An eviction policy (eviction_policy.h: streaming, h2o, tova, knorm, snapkv) that every
  // layer's attention applies in position order (evicting_attention.h); the probs taps
  // then hold the evicted cache's softmax. Not with a KV policy that has its own (kv's
  // evict, applied to the stored forms), enclose, shards or the mask above, nor on a
  // model with its own sliding window. Must outlive the forward.
  const EvictionPolicy* evict = nullptr;
  // With either eviction: each layer's exact account and evictions appended as the layer runs.
  EvictionRecord* evict_record = nullptr;
};

struct MpTap {
  std::string name;
  std::vector<std::int64_t> shape;
  MpArray values;  // row-major, at the arithmetic's precision
  MpArray radii;   // the same shape at kRadiusBits when enclosed, else empty
};

// The tap of that name; std::invalid_argument when the forward did not keep it.
const MpTap& mp_tap(const std::vector<MpTap>& taps, const std::string& name);

// Steps one forward reports to a Progress: one per layer, one per block of logits.
int forward_progress_steps(const ModelConfig& config, int logits_blocks = 1);

// One forward, a stage at a time: each layer, then the logits in blocks of tokens. The
// golden certifies each tap as the run produces it, so no tap is kept in MPFR to the
// end. The values are mp_forward's, bit for bit: every stage computes what it would, in
// the same order, and a logit is one exact dot product rounded once, whatever block its
// token is in. The model, weights, tokens and options must outlive the run.
class MpForwardRun {
 public:
  MpForwardRun(const Model& model, const MpWeights& weights, const std::vector<int>& tokens,
               const MpForwardOptions& options);
  ~MpForwardRun();
  MpForwardRun(const MpForwardRun&) = delete;
  MpForwardRun& operator=(const MpForwardRun&) = delete;

  int layers_left() const;
  // Runs the next layer; returns its wanted taps, in tap_specs order.
  std::vector<MpTap> run_layer();
  // After every layer: the logits of tokens [first, first + count), [count, vocab], and
  // their radii into `radii` when enclosed. The final norm runs at the first call; each
  // call advances the progress one step.
  MpArray logits(int first, int count, MpArray* radii = nullptr);
  // The precision each layer run so far computed at, then (once logits ran) the logits'.
  const std::vector<int>& stage_precisions() const;
  // With enclose: radius_free_bits of the residual stream as the layers run so far left it.
  std::optional<long> residual_bits() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

// The precision schedule. A rounding at P bits adds at most 2^-P of a value to its
// radius, and the layers after it amplify that term exactly as they amplify the radius
// the value already carries. Radii grow by many bits a layer (enclosure.h's first-order
// rules: 17 to 21 on stories260K and the Qwen2.5-0.5B shape), so past the first layers
// the residual stream's radii dwarf a working precision chosen for the whole depth:
// once a row's largest radius is 2^-b of its largest value, a layer computed at
// b + kScheduleGuardBits bits adds at most 2^-kScheduleGuardBits of the radius it
// already carries (each output of the layer's first products mixes the whole row), so
// the final radii grow by a factor near 1 while the later layers cost fewer limbs. The
// precision is rounded up to whole 64-bit limbs (MPFR's cost steps), kept at or below
// the run's, and at least one limb. Sound whatever it picks: every rule takes a result's
// rounding from the result's own precision (Enclosure::add_rounding).
inline constexpr long kScheduleGuardBits = 8;

// The fewest bits any row of x ([tokens, dim]) keeps above its radii x_r: the least, over
// rows, of EXP(its largest value) - EXP(its largest radius) - 1 (its largest radius is at
// most 2^-that of its largest value); LONG_MAX when every radius is 0; none when a radius
// is unbounded or a row of zeros has one.
std::optional<long> radius_free_bits(const MpArray& x, const MpArray& x_r, std::size_t tokens, std::size_t dim);

// The precision the schedule gives a stage whose input is the residual stream x
// ([tokens, dim]) with radii x_r: b + kScheduleGuardBits in whole 64-bit limbs, b =
// radius_free_bits(x, x_r); within [64, ceiling]; the ceiling itself when no row has a
// bounded inexact radius to go by.
mpfr_prec_t scheduled_precision(const MpArray& x, const MpArray& x_r, std::size_t tokens, std::size_t dim,
                                mpfr_prec_t ceiling);

// The precision of an eviction's exact account (kvfid evict, drift, quant): the golden's
// first attempt.
inline constexpr int kEvictionAccountBits = 128;

// The exact forward of an evicting cache: K and V stored per `kv` (which has an
// eviction), its evictions applied query by query, at kEvictionAccountBits on every
// core; the logits [T, vocab] rounded to float64, and the account in *record.
std::vector<double> exact_evicting_logits(const Model& model, const std::vector<int>& tokens, const quant::KvPolicy& kv,
                                          EvictionRecord* record);

// Taps in tap_specs order (with their radii when options.enclose). Tokens must already be
// valid for the model.
std::vector<MpTap> mp_forward(const Model& model, const MpWeights& weights, const std::vector<int>& tokens,
                              const MpForwardOptions& options);

}  // namespace kvfid::ref
