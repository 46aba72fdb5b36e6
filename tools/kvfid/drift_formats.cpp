#include "tools/kvfid/drift_formats.h"

#include <algorithm>

#include "reference/formats/quant/kv_policy.h"
#include "reference/io/input_error.h"
#include "reference/model/weight_storage.h"

namespace kvfid::drift {

std::vector<std::string> parse_kv_spec_list(const std::string& text, const std::string& source) {
  std::vector<std::string> specs;
  std::size_t start = 0;
  while (start <= text.size()) {
    std::size_t comma = text.find(',', start);
    if (comma == std::string::npos) comma = text.size();
    const std::string spec = text.substr(start, comma - start);
    if (spec.empty()) throw InputError(source, "empty KV spec in '" + text + "' (expected e.g. f16,bf16)");
    if (std::find(specs.begin(), specs.end(), spec) != specs.end())
      throw InputError(source, "KV spec '" + spec + "' is given twice");
    drift_engine_options(Backend::twin, kExactStorage, spec);  // throws for an unknown spec
    specs.push_back(spec);
    start = comma + 1;
  }
  return specs;
}

EngineOptions drift_engine_options(Backend backend, const std::string& weights, const std::string& kv_spec) {
  EngineOptions options;
  options.backend = backend;
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

}  // namespace kvfid::drift
