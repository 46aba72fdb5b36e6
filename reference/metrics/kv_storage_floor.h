#pragma once
// A floor for the k and v taps' bounds when the cache stores them in a format coarser
// than the arithmetic: one storage step, which rounding flips alone can reach.
//
// The k and v taps hold stored values, and so does the golden of the stored
// configuration. The engine's FP32 K or V differs from the exact value by a few FP32
// roundings; where the exact value lies that close to a rounding boundary of the
// storage format, the engine stores the neighbouring code -- one storage step away --
// and so does the baseline, at other elements: discrete flips that no FP32 accuracy
// avoids, so the baseline's error does not bound the engine's there. A step is at most
// twice the format's round-trip bound (the codec's error_bound: both stored values lie
// within it of inputs a hair apart), largest for a block of the tap's largest
// magnitude; the floor is that, times kGateFactor as every floor of gate.h. For
// sqrt(NMSE): every value off by the max-abs floor gives that floor over the tap's RMS.
#include <optional>

#include "reference/formats/quant/kv_policy.h"
#include "reference/golden/taps.h"

namespace kvfid::ref {

struct StorageFloor {
  double max_abs = 0;
  double sqrt_nmse = 0;
};

// The floors of `golden` when it is a layer's k or v tap (layers.L.k, layers.L.v) of a
// cache stored under `policy`: the step of the slot's format at the slot's largest
// static scale, and of FP16 too when queries may read the hot form (a hot window, or
// KIVI's not yet grouped keys). Empty for every other tap.
std::optional<StorageFloor> kv_storage_floor(const TapTensor& golden, const quant::KvPolicy& policy);

}  // namespace kvfid::ref
