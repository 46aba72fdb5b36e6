// kvfid info: what a model is and what its KV cache costs per token.
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "reference/io/atomic_file.h"
#include "reference/io/load_model.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

struct KvFormat {
  const char* name;
  double bits_per_element;
};
// Block formats carry one FP16 scale per block of 32 elements:
// Q8_0 = (32 * 8 + 16) / 32 = 8.5 bits, Q4_0 = (32 * 4 + 16) / 32 = 4.5 bits.
constexpr KvFormat kKvFormats[] = {{"FP32", 32}, {"FP16", 16}, {"BF16", 16},
                                   {"FP8", 8},   {"Q8_0", 8.5}, {"Q4_0", 4.5}};

std::string number(double x) {
  char buf[64];
  std::snprintf(buf, sizeof buf, "%.10g", x);
  return buf;
}

int run_info(const ParsedArgs& args) {
  const std::string path = args.str("model");
  const ModelConfig c = load_model_config(path);

  const nlohmann::json config = to_json(c);
  nlohmann::json kv = nlohmann::json::object();
  std::cout << "model: " << path << '\n' << "arch: " << to_string(c.arch) << '\n';
  for (const auto& [key, value] : config.items())
    if (key != "arch") std::cout << key << ": " << (value.is_string() ? value.get<std::string>() : value.dump()) << '\n';
  std::cout << "parameters: " << c.parameter_count() << '\n'
            << "kv_cache_per_token (all " << c.n_layers << " layers, K and V):\n";
  for (const KvFormat& f : kKvFormats) {
    const double bytes = c.kv_bytes_per_token(f.bits_per_element);
    std::cout << "  " << f.name << std::string(6 - std::string(f.name).size(), ' ') << number(bytes) << " bytes  "
              << number(bytes / 1024) << " KiB\n";
    kv[f.name] = {{"bits_per_element", f.bits_per_element}, {"bytes", bytes}, {"kib", bytes / 1024}};
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
    "token (all layers, K and V) in FP32, FP16, BF16, FP8, Q8_0 and Q4_0. Reads only the header of a\n"
    "llama2.c checkpoint, and only config.json of a model folder (its weights may be absent).",
    {{"model", "PATH", "llama2.c checkpoint or Hugging Face style model folder", true},
     {"json", "FILE", "also write the figures as JSON to FILE", false}},
    run_info,
};

}  // namespace kvfid::cli
