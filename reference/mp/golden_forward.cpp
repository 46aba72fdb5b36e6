#include "reference/mp/golden_forward.h"

#include <string>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/prompt.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/certify.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_parallel.h"
#include "reference/util/progress.h"

namespace kvfid::ref {

namespace {

const char* const kMethod =
    "forward at P and P+guard bits; y = the P+guard value with error bound |y_P - y| (one ulp at P when "
    "equal), err = EXP(y) - EXP(bound) - 1; certified when mpfr_can_round(y, err, RNDN, RNDZ, 54), or for y itself a normal float64 "
    "mpfr_can_round(y, err, RNDN, RNDN, 53); "
    "exact zeros certified when both runs give exact zero; P doubles until every value passes";

std::string describe(const UncertifiedValue& u, int precision, int guard, int max_precision) {
  return "golden not certified: tap '" + u.tap + "' index " + std::to_string(u.index) + " has " +
         std::to_string(u.error_bits) + " correct bits at " + std::to_string(precision) + "+" + std::to_string(guard) +
         " bits (needs more than " + std::to_string(kCertifiedBits) + "), and doubling the precision would exceed " +
         "max_precision_bits " + std::to_string(max_precision);
}

}  // namespace

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

  for (int precision = options.precision_bits, attempt = 1;; precision *= 2, ++attempt) {
    if (options.progress) {
      options.progress->add_total(2 * forward_progress_steps(model.config));
      options.progress->set_stage("attempt " + std::to_string(attempt) + ", " + std::to_string(precision) + "+" +
                                  std::to_string(options.guard_bits) + " bits");
    }
    auto run_at = [&](int bits) {
      forward.arith = MpArith::exact(bits);
      return mp_forward(model, to_mp_weights(weights, weight_precision_for(bits)), tokens, forward);
    };
    const std::vector<MpTap> high = run_at(precision + options.guard_bits);
    const std::vector<MpTap> low = run_at(precision);

    CertificationTally tally;
    const std::optional<UncertifiedValue> failure = certify_taps(low, high, precision, tally);
    if (failure) {
      if (2 * precision > options.max_precision_bits)
        throw CertificationError(describe(*failure, precision, options.guard_bits, options.max_precision_bits));
      continue;
    }
    GoldenResult result;
    for (const MpTap& tap : high) result.taps.push_back(TapTensor{tap.name, tap.shape, to_doubles(tap.values)});
    result.certification = {{"precision_bits", precision},
                            {"guard_bits", options.guard_bits},
                            {"attempts", attempt},
                            {"values_certified", tally.values_certified},
                            {"min_margin_bits", tally.min_margin_bits ? nlohmann::json(*tally.min_margin_bits)
                                                                      : nlohmann::json(nullptr)},
                            {"method", kMethod}};
    if (options.progress) options.progress->finish();
    return result;
  }
}

}  // namespace kvfid::ref
