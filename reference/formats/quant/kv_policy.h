#pragma once
// How the KV cache stores each layer's K and V, and which stored form a query reads.
//
// Every cached token has a cold form (its K/V encoded in the layer's format) and, under
// a hot window or KIVI, a hot form (FP16). A query at position t reads keys
// [0, cold_end) in the cold form and [cold_end, t] in the hot form. cold_end depends
// only on t (never on how the tokens were batched or chunked), so cached decode,
// chunked prefill and one-shot prefill read the same values: the property suite's
// bitwise equalities hold under every policy.
//
// Spec grammar (parse_kv_policy_spec): parts joined by '+'
//   FMT            K and V of every layer in FMT (a name from registry.h)
//   k=FMT, v=FMT   K or V only
//   edges=N:FMT    the first and last N layers in FMT (K and V), the rest as above
//   hot=W          the most recent W tokens (the query's own included) read in FP16
//   kivi           keys quantized per channel over groups of B tokens (B = the K
//                  format's block); a group's keys stay FP16 until its B-th token arrives
//   scale=S        the static scale of scaled formats (FP8): value = code * S
//   rot=R          every head's K, V and query rotated before K and V are stored, the
//                  output rotated back (kv_rotation.h): hadamard, hadamard:SEED,
//                  orthogonal:SEED
//   evict=E        an eviction policy (eviction_spec.h: streaming:S,W, h2o:B, tova:B,
//                  knorm:B, snapkv:B,OBS,POOL, or on a model with a sliding window
//                  window) applied to every layer's cache over the stored forms; not
//                  with kivi (a key group spans consecutive tokens)
// e.g. "f16", "q8_0", "k=int8_32+v=int4_32", "int4_32+edges=2:f16+hot=64", "int4a_32+kivi",
// "q4_0+rot=hadamard", "f16+evict=h2o:25%", "q8_0+evict=snapkv:64,16,7", "f16+evict=window".
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "reference/numeric/hd.h"
#include "reference/formats/float_format.h"
#include "reference/formats/quant/codec.h"
#include "reference/formats/quant/eviction_spec.h"
#include "reference/formats/quant/kv_rotation.h"

namespace kvfid::ref::quant {

struct KvSlot {
  int format = 0;             // index in registry.h's Codecs
  std::vector<float> scales;  // CodecParams::scale per KV head: [n_kv_heads]
};

struct KvPolicy {
  std::vector<KvSlot> k;  // [n_layers]
  std::vector<KvSlot> v;  // [n_layers]
  int hot_window = 0;     // 0: off
  bool kivi = false;
  // Spread over heads of the model's head_dim by resolve_kv_policy (kv_policy_fit.h);
  // kv_policy_for, which knows no head_dim, leaves it inactive.
  Rotation rotation;
  std::optional<EvictionPolicy> evict;  // unset: every token stays cached
  std::string spec;       // as given, for reports
};

// A spec parsed, before any model: what its parts say, not yet spread over layers and
// heads (kv_policy_for does that for a model's shape). Parsed once where the text comes
// in; every later use reads these fields. The default is "f32": every K and V in FP32.
struct KvPolicySpec {
  std::string text = "f32";  // as given, for reports and errors
  // Where the text came from (a flag, a file), named by the errors only a model's shape
  // reveals (kv_policy_for, resolve_kv_policy), as parse_kv_policy_spec names it.
  std::string source = "KV policy";
  std::optional<int> both, k, v;             // registry indices
  std::optional<std::pair<int, int>> edges;  // (N, registry index)
  std::optional<int> hot;
  bool kivi = false;
  std::optional<float> scale;
  RotationSpec rot;
  std::optional<EvictionPolicy> evict;
};

// Throws InputError(source, ...) naming the offending part. KIVI without a blocked K
// format is refused here when no shape could save it (no edges; or edges in a format
// without blocks over a K format without blocks); kv_policy_for refuses the rest.
KvPolicySpec parse_kv_policy_spec(const std::string& spec, const std::string& source);

// The spec of a cache held wholly in one plain float format (what `to_string(f)` parses to).
KvPolicySpec plain_kv_policy_spec(FloatFormat f);

// Throws InputError(source, ...) naming the policy unless a latent (MLA) cache can take it: its rows
// are keys and values at once, so one format a layer for both, and no hot window, KIVI,
// rotation or eviction (reference/mp/kv_store.h's store_latent, the twin's latent store).
void require_latent_policy(const KvPolicy& policy, const std::string& source);

// `spec` spread over n_layers layers of n_kv_heads KV heads. Throws
// InputError(spec.source, ...) for a shape the spec cannot hold (KIVI whose every layer
// falls in the edges without blocks, a model without layers or heads).
KvPolicy kv_policy_for(const KvPolicySpec& spec, int n_layers, int n_kv_heads);

// A comma-separated list of specs (--kv a,b,c: one column or curve each), split and
// checked for empty entries ("a,", "a,,b") and repeats; the specs themselves are not
// parsed. A part starting with a digit continues an eviction's numbers
// ("f16+evict=streaming:4,60,q8_0" is two specs): no format name starts with one. Throws InputError(source, ...).
std::vector<std::string> split_kv_spec_list(const std::string& list, const std::string& source);

// The first key position a query at position t reads in hot form (see above); `group`
// is the KIVI group (0 without KIVI, or for V).
KVFID_HD int cold_end(int t, int hot_window, int group) {
  int end = t + 1;
  if (hot_window > 0) end = t + 1 - hot_window < 0 ? 0 : t + 1 - hot_window;
  if (group > 0) {
    const int complete = (t + 1) / group * group;  // keys in groups whose last token is <= t
    end = complete < end ? complete : end;
  }
  return end;
}

}  // namespace kvfid::ref::quant
