#include "reference/mp/golden_forward.h"

#include <algorithm>
#include <cmath>
#include <map>
#include <optional>
#include <string>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/prompt.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/certify.h"
#include "reference/mp/enclosure.h"
#include "reference/mp/memory_estimate.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_parallel.h"
#include "reference/util/progress.h"

namespace kvfid::ref {

const char* certification_method_name(CertificationMethod method) {
  return method == CertificationMethod::agreement ? "agreement" : "enclosure";
}

namespace {

const char* const kAgreementMethod =
    "forward at P and P+guard bits; y = the P+guard value with error bound |y_P - y| (one ulp at P when "
    "equal), err = EXP(y) - EXP(bound) - 1; certified when mpfr_can_round(y, err, RNDN, RNDZ, 54), or for y itself a normal float64 "
    "mpfr_can_round(y, err, RNDN, RNDN, 53); "
    "exact zeros certified when both runs give exact zero; P doubles until every value passes";

const char* const kEnclosureMethod =
    "one forward at P bits in ball arithmetic: each value y with a proven radius r (reference/mp/enclosure.h: "
    "half an ulp of its precision per inexact rounding, propagated by first-order bounds; dot products exact and "
    "rounded once; each softmax row bounded as a whole, by its Jacobian with a proven second-order factor); the "
    "residual stream at P, each later layer and the logits at the fewest 64-bit limbs (at most P) "
    "that hold 8 bits more than its input's radii leave (stage_precision_bits); "
    "certified when the whole ball rounds to one float64: mpfr_can_round(y, EXP(y) - EXP(r), RNDN, RNDZ, 54), or for y "
    "itself a normal float64 mpfr_can_round(y, EXP(y) - EXP(r), RNDN, RNDN, 53); exact values (r = 0) certified as they "
    "are; P grows until every value passes (to what the bits lost where the run stopped, extrapolated to the whole "
    "depth, call for, in 64-bit limbs, at most max_precision_bits; an attempt whose residual stream has already "
    "lost, extrapolated the same way, clearly more than P - 55 bits stops there), starting from what a probe over "
    "the first 8 tokens needed";

std::string describe(const UncertifiedValue& u, const GoldenOptions& o, int precision) {
  const std::string at = o.method == CertificationMethod::agreement
                             ? std::to_string(precision) + "+" + std::to_string(o.guard_bits) + " bits"
                             : std::to_string(precision) + " bits (enclosure)";
  return "golden not certified: tap '" + u.tap + "' index " + std::to_string(u.index) + " has " +
         describe_error_bits(u.error_bits) + " at " + at + " (needs more than " + std::to_string(kCertifiedBits) +
         "), and raising the precision would exceed max_precision_bits " + std::to_string(o.max_precision_bits);
}

struct Attempt {
  std::optional<UncertifiedValue> failure;
  CertificationTally tally;
  TapSet taps;  // in tap_specs order when nothing failed
  std::vector<int> stage_precisions;  // an enclosure's: each layer's, then the logits'
};

// The skeleton of every attempt: each layer, then the logits a block of tokens at a time,
// certified as they come, only their float64 values kept; stops at the first failure.
// certify_layer(done, tally) runs the next layer, certifies its taps and stores their
// values in `done`; certify_logits(first, count, out, tally) certifies the logits of
// tokens [first, first + count) and writes them to out ([count, vocab]).
template <class Layer, class Logits>
Attempt certify_stages(const ModelConfig& c, int T, const TapSelection& taps, int logits_block, Layer certify_layer,
                       Logits certify_logits) {
  Attempt a;
  std::map<std::string, TapTensor> done;
  for (int l = 0; l < c.n_layers; ++l)
    if ((a.failure = certify_layer(done, a.tally))) return a;
  const std::size_t vocab = std::size_t(c.vocab);
  TapTensor logits{"logits", {T, c.vocab}, std::vector<double>(std::size_t(T) * vocab)};
  for (int first = 0; first < T; first += logits_block) {
    const int count = std::min(logits_block, T - first);
    if ((a.failure = certify_logits(first, count, logits.values.data() + std::size_t(first) * vocab, a.tally))) return a;
  }
  done["logits"] = std::move(logits);
  for (const TapSpec& spec : tap_specs(c, T, taps)) a.taps.push_back(std::move(done.at(spec.name)));
  return a;
}

void store_doubles(const MpArray& values, double* out) {
  const std::vector<double> d = to_doubles(values);
  std::copy(d.begin(), d.end(), out);
}

// One attempt of the agreement method at `precision`: the runs at P + guard (high) and
// at P (low) advance in lockstep, and each tap is certified as soon as both have it;
// only the high run's float64 values are kept.
Attempt certify_by_agreement(const Model& model, const Model& weights, const std::vector<int>& tokens,
                             const MpForwardOptions& forward, int precision, int guard) {
  const int T = int(tokens.size());
  const int high_bits = precision + guard;
  MpForwardOptions high_options = forward, low_options = forward;
  high_options.arith = MpArith::exact(high_bits);
  low_options.arith = MpArith::exact(precision);
  const MpWeights high_weights = to_mp_weights(weights, weight_precision_for(high_bits));
  const MpWeights low_weights = to_mp_weights(weights, weight_precision_for(precision));
  MpForwardRun high(model, high_weights, tokens, high_options), low(model, low_weights, tokens, low_options);
  const std::int64_t vocab = model.config.vocab;
  return certify_stages(
      model.config, T, forward.taps, golden_logits_block(model.config, T, high_bits),
      [&](std::map<std::string, TapTensor>& done, CertificationTally& tally) -> std::optional<UncertifiedValue> {
        std::vector<MpTap> h = high.run_layer();
        const std::vector<MpTap> l = low.run_layer();
        for (std::size_t i = 0; i < h.size(); ++i) {
          if (auto failure = certify_values(h[i].name, l[i].values, h[i].values, 0, precision, tally)) return failure;
          done[h[i].name] = TapTensor{h[i].name, h[i].shape, to_doubles(h[i].values)};
        }
        return std::nullopt;
      },
      [&](int first, int count, double* out, CertificationTally& tally) -> std::optional<UncertifiedValue> {
        const MpArray h = high.logits(first, count);
        const MpArray l = low.logits(first, count);
        if (auto failure = certify_values("logits", l, h, first * vocab, precision, tally)) return failure;
        store_doubles(h, out);
        return std::nullopt;
      });
}

constexpr int kEnclosureGrowthMarginBits = 16;  // next_enclosure_precision and enclosure_early_stop say how

// One attempt of the enclosure method at `precision`: one run in ball arithmetic, each
// tap certified as soon as the run has it, stopped early when it cannot end certified
// (enclosure_early_stop). A stored KV value whose rounding the enclosure leaves
// undecided fails the attempt there.
Attempt certify_by_enclosure(const Model& model, const Model& weights, const std::vector<int>& tokens,
                             const MpForwardOptions& forward, int precision) {
  const int T = int(tokens.size());
  MpForwardOptions options = forward;
  options.arith = MpArith::exact(precision);
  options.enclose = true;
  const MpWeights mp_weights = to_mp_weights(weights, weight_precision_for(precision));
  MpForwardRun run(model, mp_weights, tokens, options);
  const std::int64_t vocab = model.config.vocab;
  Attempt a = certify_stages(
      model.config, T, forward.taps, golden_logits_block(model.config, T, precision),
      [&](std::map<std::string, TapTensor>& done, CertificationTally& tally) -> std::optional<UncertifiedValue> {
        std::vector<MpTap> taps;
        try {
          taps = run.run_layer();
        } catch (const UndecidedRounding& u) {
          return UncertifiedValue{u.tap(), u.index(), std::nullopt};
        }
        for (MpTap& tap : taps) {
          if (auto failure = certify_balls(tap.name, tap.values, tap.radii, 0, tally)) return failure;
          done[tap.name] = TapTensor{tap.name, tap.shape, to_doubles(tap.values)};
        }
        return enclosure_early_stop(run.residual_bits(), model.config, precision,
                                    model.config.n_layers - run.layers_left() - 1);
      },
      [&](int first, int count, double* out, CertificationTally& tally) -> std::optional<UncertifiedValue> {
        MpArray radii;
        const MpArray values = run.logits(first, count, &radii);
        if (auto failure = certify_balls("logits", values, radii, first * vocab, tally)) return failure;
        store_doubles(values, out);
        return std::nullopt;
      });
  a.stage_precisions = run.stage_precisions();
  return a;
}

// The precision after an attempt at `precision` failed with `failure`: agreement doubles
// it; an enclosure takes next_enclosure_precision, capped at max_precision_bits (the cap
// itself is tried before giving up). Empty when no attempt is left under the cap.
std::optional<int> escalated_precision(const UncertifiedValue& failure, const ModelConfig& c, int precision,
                                       const GoldenOptions& o) {
  if (o.method == CertificationMethod::agreement)
    return 2 * precision <= o.max_precision_bits ? std::optional<int>(2 * precision) : std::nullopt;
  if (precision >= o.max_precision_bits) return std::nullopt;
  return std::min(next_enclosure_precision(failure, c, precision), o.max_precision_bits);
}

// The enclosure method's first precision for a long prompt: a probe, the enclosure run
// over the first kEnclosureProbeTokens tokens with the prompt's own tap selection,
// certified at P or grown by next_enclosure_precision until it passes (a failing attempt
// stops at its first uncertified value, so a low P costs little and tells the bits lost
// per layer). Radii grow per layer by about as many bits
// whatever the length (an attention sum over more keys adds log2 of the ratio at most
// per dot product), so the whole prompt then mostly certifies in one attempt where the
// first would have failed part way; when it does not, it grows as before. The probe
// costs kEnclosureProbeTokens / T of a pass and changes no value (a golden's bytes do
// not depend on the precision it was certified at). Measured on stories260K, 128 tokens:
// the probe goes 128 -> 192 and the full run certifies at 192 in one attempt.
inline constexpr int kEnclosureProbeTokens = 8;

int enclosure_start_precision(const Model& model, const Model& weights, const std::vector<int>& tokens,
                              const MpForwardOptions& forward, const GoldenOptions& options) {
  int precision = options.precision_bits;
  if (tokens.size() <= std::size_t(kEnclosureProbeTokens)) return precision;
  const std::vector<int> prefix(tokens.begin(), tokens.begin() + kEnclosureProbeTokens);
  MpForwardOptions probe = forward;
  probe.progress = nullptr;
  for (;;) {
    const Attempt a = certify_by_enclosure(model, weights, prefix, probe, precision);
    if (!a.failure) return precision;
    const std::optional<int> next = escalated_precision(*a.failure, model.config, precision, options);
    if (!next) return precision;  // the full run reports the failure
    precision = *next;
  }
}

}  // namespace

// The early stop: radii grow by a roughly constant number of bits a stage, so a residual
// stream that lost P - b bits in l + 1 of the L + 1 stages leaves the logits about
// P - (P - b)(L + 1)/(l + 1) bits. Only a clear miss stops: that many under
// kCertifiedBits + 1 - kEnclosureGrowthMarginBits. A failure at layers.l.out with b error
// bits then extrapolates (next_enclosure_precision) exactly as the estimate did.
std::optional<UncertifiedValue> enclosure_early_stop(std::optional<long> residual_bits, const ModelConfig& c,
                                                     int precision, int layer) {
  const std::string tap = tap_layer_name(layer, "out");
  if (!residual_bits) return UncertifiedValue{tap, 0, std::nullopt};
  if (*residual_bits >= precision) return std::nullopt;  // nothing lost yet (exact values keep LONG_MAX)
  const double stages = double(c.n_layers + 1), done = double(layer + 1);
  const double kept = double(precision) - double(precision - *residual_bits) * stages / done;
  if (kept >= double(kCertifiedBits + 1 - kEnclosureGrowthMarginBits)) return std::nullopt;
  return UncertifiedValue{tap, 0, *residual_bits};
}

// The enclosure method's next precision after a failure. Radii grow by a roughly constant
// number of bits per layer, so the bits a run at P had lost where it stopped (P minus the
// bits the failing value kept), spread over the stages run and extrapolated to the whole
// depth, predict what a run needs: kCertifiedBits + 1 + lost / fraction done, plus
// kEnclosureGrowthMarginBits, rounded up to whole 64-bit limbs (MPFR's cost steps), at
// least the next whole limb above P; doubling when nothing is known (an unbounded radius or an
// undecided KV rounding). The caller clamps it to max_precision_bits.
// The margin, a quarter limb (kEnclosureGrowthMarginBits), covers a growth per layer that
// is not quite constant.
// Measured: on stories260K (fails at layers.3.q with 50 bits at 128) it predicts
// 54 + 1 + 78 / (4/6) + 16 = 188, so 192, which certifies; on a 16-layer model of
// stories260K's widths (a 16-token prompt) it goes 128 -> 320 in one step, where the
// earlier rule (the missing bits alone extrapolated, at most doubling) took four attempts.
int next_enclosure_precision(const UncertifiedValue& u, const ModelConfig& c, int precision) {
  if (!u.error_bits) return 2 * precision;
  int stage = c.n_layers;  // logits: after every layer
  if (u.tap.rfind("layers.", 0) == 0) stage = std::stoi(u.tap.substr(7));
  const double fraction = double(stage + 1) / double(c.n_layers + 1);
  const double lost = std::max(0.0, double(precision) - double(*u.error_bits));  // past P when the radius passed the value
  const double needed = kCertifiedBits + 1 + lost / fraction + kEnclosureGrowthMarginBits;
  return 64 * std::max(precision / 64 + 1, int(std::ceil(needed / 64)));
}

nlohmann::json certification_record(CertificationMethod method, int precision, int attempts,
                                    const CertificationTally& tally, int guard_bits,
                                    const std::vector<int>& stage_precisions) {
  const bool agreement = method == CertificationMethod::agreement;
  nlohmann::json record = {
      {"method_name", certification_method_name(method)},
      {"precision_bits", precision},
      {"attempts", attempts},
      {"values_certified", tally.values_certified},
      {"min_margin_bits", tally.min_margin_bits ? nlohmann::json(*tally.min_margin_bits) : nlohmann::json(nullptr)},
      {"method", agreement ? kAgreementMethod : kEnclosureMethod}};
  if (agreement)
    record["guard_bits"] = guard_bits;
  else
    record["max_radius_half_ulps"] = tally.max_radius_half_ulps;
  if (!agreement && !stage_precisions.empty()) record["stage_precision_bits"] = stage_precisions;
  return record;
}

GoldenResult compute_golden(const Model& model, const std::vector<int>& tokens, const GoldenOptions& options) {
  validate_tokens(tokens, model.config, "golden tokens");
  if (options.precision_bits < MPFR_PREC_MIN || options.guard_bits < 1)
    throw CertificationError("golden: precision_bits and guard_bits must be positive");
  if (options.precision_bits > options.max_precision_bits)
    throw CertificationError("golden: precision_bits " + std::to_string(options.precision_bits) +
                             " exceeds max_precision_bits " + std::to_string(options.max_precision_bits));
  const Model stored = options.weights ? stored_model(model, *options.weights) : Model{};
  const Model& weights = options.weights ? stored : model;
  MpForwardOptions forward;
  if (options.kv) forward.kv = quant::resolve_kv_policy(*options.kv, options.kv_scales, model.config);
  forward.taps = options.taps;
  forward.threads = resolve_thread_count(options.threads);
  forward.progress = options.progress;
  forward.shards = options.shards;

  const bool agreement = options.method == CertificationMethod::agreement;
  const int first = agreement ? options.precision_bits : enclosure_start_precision(model, weights, tokens, forward, options);
  for (int precision = first, attempt = 1;; ++attempt) {
    if (options.progress) {
      const int T = int(tokens.size());
      const int block = golden_logits_block(model.config, T, precision + (agreement ? options.guard_bits : 0));
      options.progress->add_total((agreement ? 2 : 1) * forward_progress_steps(model.config, (T + block - 1) / block));
      options.progress->set_stage("attempt " + std::to_string(attempt) + ", " + std::to_string(precision) +
                                  (agreement ? "+" + std::to_string(options.guard_bits) : std::string(" (enclosure)")) +
                                  " bits");
    }
    Attempt attempt_result = agreement ? certify_by_agreement(model, weights, tokens, forward, precision, options.guard_bits)
                                       : certify_by_enclosure(model, weights, tokens, forward, precision);
    if (attempt_result.failure) {
      const std::optional<int> next = escalated_precision(*attempt_result.failure, model.config, precision, options);
      if (!next) throw CertificationError(describe(*attempt_result.failure, options, precision));
      precision = *next;
      continue;
    }
    const CertificationTally& tally = attempt_result.tally;
    GoldenResult result;
    result.taps = std::move(attempt_result.taps);
    result.certification = certification_record(options.method, precision, attempt, tally, options.guard_bits,
                                                attempt_result.stage_precisions);
    if (options.progress) options.progress->finish();
    return result;
  }
}

std::uint64_t golden_memory_bytes(const ForwardShape& shape, const GoldenOptions& options) {
  const bool agreement = options.method == CertificationMethod::agreement;
  return golden_bytes(shape, options.precision_bits, agreement ? options.guard_bits : 0);
}

}  // namespace kvfid::ref
