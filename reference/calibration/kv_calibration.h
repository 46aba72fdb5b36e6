#pragma once
// Static KV scales from data: the per-head "amax" calibration of scaled formats (FP8),
// as serving stacks compute k_scale / v_scale from a calibration set. Each scale maps
// the head's largest |K| or |V| onto the format's largest value, so nothing saturates
// on the calibration data and the format's relative precision covers the head's range.
// Calibrating on the very tokens being measured is the optimistic case: a deployment's
// scales come from other data, and a larger value there saturates.
#include <string>
#include <vector>

#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"
#include "reference/model/config.h"

namespace kvfid::ref::quant {

// [n_layers, 2 (K, V), n_kv_heads], the layout of EngineOptions::kv_scales: for a slot
// whose format is scaled (FormatInfo::unit_scale_max > 0), amax / unit_scale_max over
// that head's values in `taps` (layers.L.k and layers.L.v, [T, n_kv_heads, head_dim]),
// rounded up to a float so amax / scale stays within the largest value; 1 where the
// format ignores scales or the head is all zeros. Throws InputError(source, ...) when a
// needed tap is missing or has another size.
std::vector<float> amax_kv_scales(const KvPolicy& policy, const ModelConfig& config, const TapSet& taps,
                                  const std::string& source);

}  // namespace kvfid::ref::quant
