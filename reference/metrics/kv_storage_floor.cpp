#include "reference/metrics/kv_storage_floor.h"

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "reference/formats/quant/registry.h"
#include "reference/metrics/gate.h"

namespace kvfid::ref {

namespace {

struct KvTap {
  int layer;
  bool values;
};

std::optional<KvTap> parse_kv_tap(const std::string& name) {
  const std::string prefix = "layers.";
  if (name.rfind(prefix, 0) != 0 || !(name.ends_with(".k") || name.ends_with(".v"))) return std::nullopt;
  const std::string layer = name.substr(prefix.size(), name.size() - prefix.size() - 2);
  if (layer.empty() || layer.size() > 9 || !std::all_of(layer.begin(), layer.end(), [](char c) { return c >= '0' && c <= '9'; }))
    return std::nullopt;
  return KvTap{std::stoi(layer), name.back() == 'v'};
}

// Twice the round-trip bound of a block whose every element is `magnitude`.
double storage_step(const quant::FormatInfo& f, double magnitude, float scale) {
  const std::vector<float> block(std::size_t(f.block), float(magnitude));
  return 2 * f.error_bound(block.data(), 0, {scale});
}

}  // namespace

std::optional<StorageFloor> kv_storage_floor(const TapTensor& golden, const quant::KvPolicy& policy) {
  const std::optional<KvTap> tap = parse_kv_tap(golden.name);
  if (!tap || tap->layer >= int(policy.k.size())) return std::nullopt;
  double max_abs = 0, squares = 0;
  for (double g : golden.values) {
    max_abs = std::max(max_abs, std::abs(g));
    squares += g * g;
  }
  const quant::KvSlot& slot = tap->values ? policy.v[tap->layer] : policy.k[tap->layer];
  const quant::FormatInfo& format = quant::all_formats()[slot.format];
  double step = 0;
  for (float scale : slot.scales) step = std::max(step, storage_step(format, max_abs, scale));
  if (policy.hot_window > 0 || policy.kivi)
    step = std::max(step, storage_step(quant::plain_format(FloatFormat::f16), max_abs, 1.0f));
  const double floor = kGateFactor * step;
  return StorageFloor{floor, squares > 0 ? floor / std::sqrt(squares / double(golden.values.size())) : 0};
}

}  // namespace kvfid::ref
