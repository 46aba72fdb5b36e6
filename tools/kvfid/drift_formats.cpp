#include "tools/kvfid/drift_formats.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the specification's names: the layer below

std::vector<quant::KvPolicySpec> parse_kv_spec_list(const std::string& text, const std::string& source) {
  std::vector<quant::KvPolicySpec> specs;
  for (const std::string& spec : quant::split_kv_spec_list(text, source))
    specs.push_back(quant::parse_kv_policy_spec(spec, source));
  return specs;
}

EngineOptions drift_engine_options(Backend backend, const WeightFormat& weights, const quant::KvPolicySpec& kv,
                                   int threads, LatentPath latent) {
  EngineOptions options;
  options.backend = backend;
  options.threads = threads;
  options.latent = latent;
  options.weights = weights;
  options.kv = kv;
  options.taps = TapSelection::all;
  return options;
}

Emulation drift_emulation(FloatFormat arithmetic, const WeightFormat& weights, const quant::KvPolicySpec& kv) {
  Emulation e;
  e.arithmetic = arithmetic;
  e.weights = weights;
  e.kv = kv;
  return e;
}

}  // namespace kvfid::cli::drift
