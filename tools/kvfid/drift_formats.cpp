#include "tools/kvfid/drift_formats.h"

#include "reference/formats/quant/kv_policy.h"
#include "reference/util/input_error.h"
#include "reference/model/weight_storage.h"

namespace kvfid::cli::drift {
using namespace kvfid::ref;  // the specification's names: the layer below

std::vector<std::string> parse_kv_spec_list(const std::string& text, const std::string& source) {
  const std::vector<std::string> specs = quant::split_kv_spec_list(text, source);
  for (const std::string& spec : specs) drift_engine_options(Backend::twin, kExactStorage, spec);  // the grammar
  return specs;
}

EngineOptions drift_engine_options(Backend backend, const std::string& weights, const std::string& kv_spec, int threads) {
  EngineOptions options;
  options.backend = backend;
  options.threads = threads;
  options.weights = weight_format_from_string(weights, "--weights").name;
  quant::parse_kv_policy(kv_spec, 1, 1, "--kv");  // the grammar; the model's shapes are checked by the engine
  options.kv = kv_spec;
  options.taps = TapSelection::all;
  return options;
}

Emulation drift_emulation(FloatFormat arithmetic, const std::string& weights, const std::string& kv_spec) {
  Emulation e;
  e.arithmetic = arithmetic;
  e.weights = weight_format_from_string(weights, "--weights").name;
  quant::parse_kv_policy(kv_spec, 1, 1, "--kv");
  e.kv = kv_spec;
  return e;
}

}  // namespace kvfid::cli::drift
