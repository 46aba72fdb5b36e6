#include "reference/model/config.h"

#include <nlohmann/json.hpp>

#include "reference/util/input_error.h"

namespace kvfid::ref {

void ModelConfig::validate(const std::string& source) const {
  auto need_positive = [&](int v, const char* name) {
    if (v <= 0) throw InputError(source, std::string(name) + " must be positive, got " + std::to_string(v));
  };
  need_positive(vocab, "vocab");
  need_positive(dim, "dim");
  need_positive(n_layers, "n_layers");
  need_positive(n_heads, "n_heads");
  need_positive(n_kv_heads, "n_kv_heads");
  need_positive(head_dim, "head_dim");
  need_positive(hidden, "hidden");
  need_positive(max_seq, "max_seq");
  if (n_heads % n_kv_heads != 0)
    throw InputError(source, "n_heads " + std::to_string(n_heads) + " is not a multiple of n_kv_heads " +
                                 std::to_string(n_kv_heads));
  if (head_dim % 2 != 0) throw InputError(source, "head_dim " + std::to_string(head_dim) + " is odd; RoPE needs pairs");
  if (!(rms_norm_eps > 0)) throw InputError(source, "rms_norm_eps must be positive");
  if (!(rope_theta > 1)) throw InputError(source, "rope_theta must be greater than 1");
}

std::int64_t ModelConfig::parameter_count() const {
  std::int64_t d = dim, per_layer = 0;
  per_layer += 2 * d;                                   // two RMSNorm weights
  per_layer += d * q_dim() + 2 * d * kv_dim();          // wq, wk, wv
  per_layer += std::int64_t(q_dim()) * d;               // wo
  per_layer += 3 * d * hidden;                          // w1, w2, w3
  if (qkv_bias) per_layer += q_dim() + 2 * kv_dim();
  std::int64_t total = std::int64_t(vocab) * d + n_layers * per_layer + d;
  if (!tied_classifier) total += std::int64_t(vocab) * d;
  return total;
}

double ModelConfig::kv_bytes_per_token(double bits_per_element) const {
  return 2.0 * n_layers * kv_dim() * bits_per_element / 8.0;
}

std::string to_string(Arch arch) { return arch == Arch::llama ? "llama" : "qwen2"; }
std::string to_string(RopeStyle rope) { return rope == RopeStyle::interleaved ? "interleaved" : "rotate_half"; }

Arch arch_from_string(const std::string& s, const std::string& source) {
  if (s == "llama") return Arch::llama;
  if (s == "qwen2") return Arch::qwen2;
  throw InputError(source, "unknown architecture '" + s + "' (expected llama or qwen2)");
}

RopeStyle rope_from_string(const std::string& s, const std::string& source) {
  if (s == "interleaved") return RopeStyle::interleaved;
  if (s == "rotate_half") return RopeStyle::rotate_half;
  throw InputError(source, "unknown RoPE style '" + s + "' (expected interleaved or rotate_half)");
}

nlohmann::json to_json(const ModelConfig& c) {
  return {{"arch", to_string(c.arch)},           {"vocab", c.vocab},
          {"dim", c.dim},                        {"n_layers", c.n_layers},
          {"n_heads", c.n_heads},                {"n_kv_heads", c.n_kv_heads},
          {"head_dim", c.head_dim},              {"hidden", c.hidden},
          {"max_seq", c.max_seq},                {"rms_norm_eps", c.rms_norm_eps},
          {"rope_theta", c.rope_theta},          {"rope", to_string(c.rope)},
          {"tied_classifier", c.tied_classifier}, {"qkv_bias", c.qkv_bias}};
}

}  // namespace kvfid::ref
