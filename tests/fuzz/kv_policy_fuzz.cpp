// The KV-policy grammar (--kv): parsed once, spread over two model shapes, and resolved for one with
// per-head scales; an accepted policy must have a slot, with one scale per KV head, for
// every layer, a rotation (when it names one) of the model's head_dim, and an eviction
// (when it names one) with a budget for every layer and no KIVI: on a model with a
// sliding window the window cache only, with that model's windows.
#include <cstddef>
#include <cstdint>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/util/input_error.h"
#include "tests/fuzz/fuzz_util.h"

namespace {

void check_shape(const kvfid::ref::quant::KvPolicy& p, int layers, int heads) {
  if (int(p.k.size()) != layers || int(p.v.size()) != layers) __builtin_trap();
  for (const auto* slots : {&p.k, &p.v})
    for (const kvfid::ref::quant::KvSlot& s : *slots)
      if (int(s.scales.size()) != heads) __builtin_trap();
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  namespace quant = kvfid::ref::quant;
  quant::KvPolicySpec parsed;
  try {
    parsed = quant::parse_kv_policy_spec(std::string(kvfid::ref::fuzz::as_text(data, size)), "--kv");
  } catch (const kvfid::ref::InputError&) {
    return 0;
  }
  for (const auto& [layers, heads] : {std::pair{1, 1}, std::pair{6, 2}}) {
    try {
      check_shape(quant::kv_policy_for(parsed, layers, heads), layers, heads);
    } catch (const kvfid::ref::InputError&) {
    }
  }
  kvfid::ref::ModelConfig c;
  c.vocab = 32, c.dim = 16, c.n_layers = 2, c.n_heads = 4, c.n_kv_heads = 2, c.head_dim = 4, c.hidden = 24;
  c.max_seq = 32;
  const std::vector<float> scales = {0.5f, 2, 1, 4, 0.25f, 8, 1, 1};  // [2 layers, K/V, 2 heads]
  for (const bool windowed : {false, true}) {  // without a sliding window, and Gemma 2's (layer 0 only)
    c.sliding_window = windowed ? 3 : 0;
    c.alternating_window = windowed;
    try {
      const quant::KvPolicy p = quant::resolve_kv_policy(parsed, scales, c);
      check_shape(p, c.n_layers, c.n_kv_heads);
      // An accepted rotation is one of the model's head_dim, and orthogonal up to FP32's roundings.
      if (p.rotation.active() &&
          (p.rotation.dim != c.head_dim || !(quant::rotation_orthogonality_error(p.rotation) <= 0x1p-20)))
        __builtin_trap();
      for (int l = 0; l < c.n_layers; ++l) (void)quant::kivi_group(p, l);
      // An accepted eviction: the window cache exactly on the windowed model, with each
      // layer's window; any other with one budget, or one per layer, none negative.
      if (p.evict) {
        const bool window = p.evict->kind == quant::EvictionKind::window;
        if (window != windowed) __builtin_trap();
        if (window && p.evict->layer_windows != std::vector<int>{3, 0}) __builtin_trap();
        const std::size_t n = p.evict->budgets.size();
        if (!window && p.evict->kind != quant::EvictionKind::streaming && n != 1 && int(n) != c.n_layers)
          __builtin_trap();
        for (int l = 0; l < c.n_layers; ++l)
          if (p.evict->budget_for(c.max_seq, l) < 0) __builtin_trap();
        if (p.kivi) __builtin_trap();  // refused together
      }
      (void)quant::uniform_plain_format(p);
    } catch (const kvfid::ref::InputError&) {
    }
  }
  return 0;
}
