#include "reference/native/emulated_forward.h"

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/prompt.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_parallel.h"
#include "reference/native/native_forward.h"

namespace kvfid::ref {

TapSet emulated_forward(const Model& model, const std::vector<int>& tokens, const Emulation& emulation,
                        const TapSelection& selection) {
  validate_tokens(tokens, model.config, "emulated forward tokens");
  // Latent attention runs in the MPFR forward only (latent_attention.h), in IEEE
  // arithmetic here: the same algorithm, op for op, the native forward would be.
  if (model.config.mla.active()) return emulated_forward_mpfr(model, tokens, emulation, selection);
  const Model stored = stored_model(model, emulation.weights);
  const quant::KvPolicy kv = quant::resolve_kv_policy(emulation.kv, emulation.kv_scales, model.config);
  // An eviction is applied by the MPFR forward only (evicting_attention.h), whose
  // emulation the native forward's results equal wherever both run. The window cache
  // evicts no key a query reads (eviction_spec.h): its emulation is the masked forward's,
  // bit for bit (EmulatedForward.TheWindowCacheIsTheMaskedForward), computed natively.
  if (kv.evict && kv.evict->kind != quant::EvictionKind::window)
    return emulated_forward_mpfr(model, tokens, emulation, selection);
  quant::KvPolicy stored_kv = kv;
  stored_kv.evict.reset();
  return native::native_forward(stored, tokens, emulation.arithmetic, stored_kv, selection, resolve_thread_count(0));
}

TapSet emulated_forward_mpfr(const Model& model, const std::vector<int>& tokens, const Emulation& emulation,
                             const TapSelection& selection) {
  validate_tokens(tokens, model.config, "emulated forward tokens");
  const Model stored = stored_model(model, emulation.weights);
  const MpWeights weights = to_mp_weights(stored, kWeightPrecisionBits);
  MpForwardOptions forward;
  forward.arith = MpArith::ieee(emulation.arithmetic);
  forward.kv = quant::resolve_kv_policy(emulation.kv, emulation.kv_scales, model.config);
  forward.taps = selection;
  forward.threads = resolve_thread_count(0);
  TapSet taps;
  for (const MpTap& tap : mp_forward(model, weights, tokens, forward))
    taps.push_back(TapTensor{tap.name, tap.shape, to_doubles(tap.values)});  // exact: the formats embed in float64
  return taps;
}

}  // namespace kvfid::ref
