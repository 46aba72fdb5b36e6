// kvfid info: what a model is and what its KV cache costs per token.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/atomic_file.h"
#include "reference/io/load_model.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

// The default rows: a label and the KV policy it stands for.
constexpr std::pair<const char*, const char*> kKvFormats[] = {{"FP32", "f32"},     {"FP16", "f16"}, {"BF16", "bf16"},
                                                              {"FP8", "fp8_e4m3"}, {"Q8_0", "q8_0"}, {"Q4_0", "q4_0"}};

std::string number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}

// Latent attention's cache (config.h's LatentAttention): kv_lora_rank + rope_dim values a
// token and layer in each plain format, beside what the K and V it stands for would cost.
nlohmann::json print_latent_cache(const ModelConfig& c) {
  nlohmann::json kv = nlohmann::json::object();
  const std::int64_t values = c.cache_values_per_token(), full = std::int64_t(c.kv_dim()) + c.v_dim();
  std::cout << "kv_cache_per_token (all " << c.n_layers << " layers, the latent and k_pe: " << values
            << " values a layer, against " << full << " for the K and V they reconstruct):\n";
  for (const auto& [label, bits] : {std::pair<const char*, double>{"FP32", 32}, {"FP16", 16}, {"BF16", 16}}) {
    const double bytes = c.kv_bytes_per_token(bits);
    std::cout << "  " << label << "  " << number(bytes) << " bytes  " << number(bytes / 1024) << " KiB  "
              << number(bits) << " bits per element  (K and V: " << number(double(c.n_layers) * full * bits / 8)
              << " bytes)\n";
    kv[label] = {{"bits_per_element", bits}, {"bytes", bytes}, {"kib", bytes / 1024}};
  }
  return kv;
}

int run_info(const ParsedArgs& args) {
  const std::string path = args.str("model");
  const ModelConfig c = load_model_config(path);
  if (c.mla.active() && args.has("kv"))
    throw UsageError("--kv: KV policies of a latent (MLA) cache are not built yet; info prints its plain formats");

  const nlohmann::json config = to_json(c);
  nlohmann::json kv = nlohmann::json::object();
  std::cout << "model: " << path << '\n' << "arch: " << to_string(c.arch) << '\n';
  for (const auto& [key, value] : config.items())
    if (key != "arch") std::cout << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << '\n';
  std::cout << "parameters: " << c.parameter_count() << '\n';
  if (c.mla.active()) kv = print_latent_cache(c);
  else std::cout << "kv_cache_per_token (all " << c.n_layers << " layers, K and V; block scales and norms included):\n";
  std::vector<std::pair<std::string, quant::KvPolicySpec>> rows;
  if (!c.mla.active())
    for (const auto& [label, spec] : kKvFormats) rows.emplace_back(label, quant::parse_kv_policy_spec(spec, "kvfid info"));
  if (args.has("kv"))
    for (const std::string& spec : quant::split_kv_spec_list(args.str("kv"), "--kv"))
      rows.emplace_back(spec, quant::parse_kv_policy_spec(spec, "--kv"));
  std::size_t width = 6;
  for (const auto& row : rows) width = std::max(width, row.first.size() + 2);
  for (const auto& [label, spec] : rows) {
    const double bytes = quant::kv_policy_bytes_per_token(quant::resolve_kv_policy(spec, {}, c), c);
    const double bits = 8 * bytes / (2.0 * c.n_layers * c.kv_dim());
    std::cout << "  " << label << std::string(width - label.size(), ' ') << number(bytes) << " bytes  "
              << number(bytes / 1024) << " KiB  " << number(bits) << " bits per element";
    kv[label] = {{"bits_per_element", bits}, {"bytes", bytes}, {"kib", bytes / 1024}};
    if (spec.evict) {  // the bytes are per cached token; the eviction bounds how many stay
      const quant::EvictionPolicy& e = *spec.evict;
      const bool fixed = e.kind == quant::EvictionKind::streaming || (e.budgets.size() == 1 && !e.budgets[0].percent);
      const bool window = e.kind == quant::EvictionKind::window;
      const std::string at_most = window                  ? std::to_string(c.sliding_window) + " tokens"
                                  : fixed                 ? std::to_string(e.max_budget_for(0) + 1) + " tokens"
                                  : e.budgets.size() == 1 ? "ceil(" + e.budget_text() + " of the sequence) + 1 tokens"
                                                          : "the layer's budget (" + e.budget_text() + ") + 1 tokens";
      const std::string where = window ? " on a windowed layer (every token on a global one)" : "";
      std::cout << " per cached token; at most " << at_most << " cached per layer and KV head" << where;
      kv[label]["cached_at_most"] = at_most + where;
    }
    std::cout << '\n';
  }
  if (args.has("json")) {
    const nlohmann::json out = {{"model", path},
                                {"config", config},
                                {"parameter_count", c.parameter_count()},
                                {"kv_cache_per_token", kv}};
    write_file_atomic(args.str("json"), out.dump(2) + "\n");
  }
  return kExitPass;
}

}  // namespace

extern const CommandSpec kInfoCommand = {
    "info",
    "print a model's configuration, parameter count and KV-cache size per token",
    "Prints the architecture, every configuration field, the parameter count and the KV-cache bytes per\n"
    "token (all layers, K and V, block scales and norms included) in FP32, FP16, BF16, FP8, Q8_0 and Q4_0,\n"
    "and under each KV policy of --kv, with its bits per element (an eviction's: per cached token, with how\n"
    "many stay cached). Reads only the header of a llama2.c\n"
    "checkpoint, and only config.json of a model folder (its weights may be absent). A latent-attention\n"
    "(MLA) model's cache is its latent and k_pe, printed in FP32, FP16 and BF16 (no --kv yet).",
    {{"model", "PATH", "llama2.c checkpoint or Hugging Face style model folder", true},
     {"kv", "SPEC[,SPEC...]", "also these KV policies (grammar of kvfid quant --kv), e.g. q4_0,int4_32+edges=2:f16", false},
     {"json", "FILE", "also write the figures as JSON to FILE", false}},
    run_info,
};

}  // namespace kvfid::cli
