#include "reference/metrics/eviction_account.h"

#include <stdexcept>

#include "reference/mp/mp_array.h"

namespace kvfid::ref {

std::vector<EvictionStep> eviction_account(const std::vector<MpTap>& taps, const ModelConfig& c, int T,
                                           const StreamingEviction& policy, bool* certified) {
  if (certified) *certified = true;
  const int hd = c.head_dim;
  std::vector<EvictionStep> steps;
  std::vector<std::uint8_t> read(static_cast<std::size_t>(T));
  for (int l = 0; l < c.n_layers; ++l) {
    const MpTap& probs = mp_tap(taps, tap_layer_name(l, "attn.probs"));  // [n_heads, T, T]
    const MpTap& v = mp_tap(taps, tap_layer_name(l, "v"));               // [T, n_kv_heads, head_dim]
    RowAccount account(hd, 2 * probs.values.precision() + 64);
    for (int h = 0; h < c.n_heads; ++h)
      for (int t = 0; t < T; ++t) {
        int kept = 0;
        for (int j = 0; j <= t; ++j) kept += read[std::size_t(j)] = policy.keeps(j, t);
        EvictionStep step{l, h, t, 0, 0, 0, kept};
        account.account(step, probs.values[(std::size_t(h) * T + t) * T], t + 1,
                        v.values[std::size_t(c.kv_head_of(h)) * hd], c.kv_dim(), read.data(),
                        probs.values.precision(), certified);
        steps.push_back(step);
      }
  }
  return steps;
}

}  // namespace kvfid::ref
