#pragma once
// A KV policy applied to a model: the spec parsed for its layers and heads, the static
// scales optionally replaced and their shape checked. The engine and the reference
// forwards resolve a policy the same way, so they store the same cache.
#include <optional>
#include <string>
#include <vector>

#include "reference/formats/float_format.h"
#include "reference/formats/quant/kv_policy.h"
#include "reference/model/config.h"

namespace kvfid::ref::quant {

// kv_policy_for `config`'s shape, then: when `scales` is not empty it replaces every
// slot's static scales ([n_layers, 2 (K, V), n_kv_heads], finite and positive). Any block
// fits any model: a token's K/V row of kv_dim = n_kv_heads * head_dim elements that
// the block does not divide gets a padded last block (row_blocks.h), and under KIVI
// the K blocks run along tokens. Throws InputError(spec.source, ...) naming the spec's
// or the scales' problem.
KvPolicy resolve_kv_policy(const KvPolicySpec& spec, const std::vector<float>& scales, const ModelConfig& config);

// An eviction policy applied to `config`: per-layer budgets held to its layer count; a
// window policy given each layer's window (config.window_of), and refused on a model
// without a sliding window; any other policy refused on a model with one (its layers
// would evict inside a window that already masks). InputError(source, ...).
EvictionPolicy eviction_for_model(const EvictionPolicy& policy, const ModelConfig& config, const std::string& source);

// The bytes a cached token costs under `policy`, all layers, K and V: each row's blocks
// (a padded last block counted whole, quant/row_blocks.h), and under KIVI the keys'
// per-channel groups of B tokens amortized over their B tokens. FP16 hot copies (a hot
// window) are not counted: the cold form is what the cache holds for good.
double kv_policy_bytes_per_token(const KvPolicy& policy, const ModelConfig& config);

// cold_end's group for layer l's keys: the K format's block under KIVI, else 0.
int kivi_group(const KvPolicy& policy, int layer);

// The plain float format (f32, f16 or bf16) of every K and V slot when they all share
// one and there is neither a hot window nor KIVI: such a cache is one plane in that
// format, as before quantization (the engine's fast path). Empty otherwise.
std::optional<FloatFormat> uniform_plain_format(const KvPolicy& policy);

}  // namespace kvfid::ref::quant
