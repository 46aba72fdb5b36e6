#include "reference/mp/emulated_forward.h"

#include "reference/io/prompt.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_parallel.h"

namespace kvfid {

TapSet emulated_forward(const Model& model, const std::vector<int>& tokens, const Emulation& emulation,
                        TapSelection selection) {
  validate_tokens(tokens, model.config, "emulated forward tokens");
  const MpWeights weights =
      to_mp_weights(model, [format = emulation.weights](double w) { return round_to_format(w, format); },
                    kWeightPrecisionBits);
  MpForwardOptions forward;
  forward.arith = MpArith::ieee(emulation.arithmetic);
  forward.kv_format = emulation.kv;
  forward.taps = selection;
  forward.threads = resolve_thread_count(0);
  TapSet taps;
  for (const MpTap& tap : mp_forward(model, weights, tokens, forward))
    taps.push_back(TapTensor{tap.name, tap.shape, to_doubles(tap.values)});  // exact: the formats embed in float64
  return taps;
}

}  // namespace kvfid
