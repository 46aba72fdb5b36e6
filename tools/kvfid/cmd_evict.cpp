// kvfid evict: the exact account of a StreamingLLM eviction over a prompt
// (reference/metrics/eviction_account.h): per layer, the attention mass the evicted keys
// carry and the error it causes against its proven bound.
#include <algorithm>
#include <cstdio>
#include <iostream>

#include <nlohmann/json.hpp>

#include "reference/io/atomic_file.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/metrics/eviction_account.h"
#include "reference/metrics/logit_metrics.h"
#include "reference/mp/memory_estimate.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"
#include "reference/util/input_error.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/memory_check.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

constexpr int kAccountPrecisionBits = 128;  // the exact forward's (the golden's first attempt)

struct LayerSummary {
  double max_mass = 0, mean_mass = 0, max_ratio = 0, max_observed = 0;
  int evicting_steps = 0;
};

int run_evict(const ParsedArgs& args) {
  if (args.has("tokens") == args.has("prompt")) throw UsageError("give exactly one of --tokens and --prompt");
  const StreamingEviction policy = parse_streaming_eviction(args.str("policy"), "--policy");
  const std::string model_path = args.str("model");
  const std::vector<int> tokens =
      args.has("tokens") ? parse_token_list(args.str("tokens"), "--tokens") : read_prompt_file(args.str("prompt"));
  const ModelConfig config = load_model_config(model_path);
  validate_tokens(tokens, config, args.has("tokens") ? "--tokens" : args.str("prompt"));
  if (config.sliding_window > 0)
    throw InputError(model_path, "the model has its own sliding window; kvfid evict accounts for full caches");
  const TapSelection taps = tap_selection_from_string("logits,layers.*.attn.probs,layers.*.v", "taps");
  // The full forward's taps stay while the StreamingLLM forward (logits only) runs.
  const ForwardShape shape{config, int(tokens.size()), taps, false, resolve_thread_count(0)};
  const ForwardShape second{config, int(tokens.size()), TapSelection::logits, false, resolve_thread_count(0)};
  check_memory("kvfid evict", model_path,
               mp_forward_bytes(shape, kAccountPrecisionBits) + mp_forward_bytes(second, kAccountPrecisionBits));
  const Model model = load_model(model_path);
  MpForwardOptions o;
  o.arith = MpArith::exact(kAccountPrecisionBits);
  o.taps = taps;
  o.threads = resolve_thread_count(0);
  const MpWeights weights = to_mp_weights(model, kAccountPrecisionBits);
  const std::vector<MpTap> forward = mp_forward(model, weights, tokens, o);
  bool certified = false;
  const int T = int(tokens.size());
  const std::vector<EvictionStep> steps = eviction_account(forward, config, T, policy, &certified);
  // End to end: the same forward with the StreamingLLM cache, its next-token
  // distributions against the full cache's (KL in nats, and whether the top token stays).
  o.taps = TapSelection::logits;
  o.eviction = AttentionMask{true, policy.window, policy.sinks};
  const std::vector<MpTap> evicted = mp_forward(model, weights, tokens, o);
  const std::vector<double> full_logits = to_doubles(mp_tap(forward, "logits").values);
  const std::vector<double> evicted_logits = to_doubles(mp_tap(evicted, "logits").values);
  const std::size_t V = std::size_t(config.vocab);
  std::vector<double> kl(static_cast<std::size_t>(T));
  int top1_changed = 0, first_changed = -1;
  for (int t = 0; t < T; ++t) {
    const double* a = full_logits.data() + std::size_t(t) * V;
    const double* b = evicted_logits.data() + std::size_t(t) * V;
    kl[std::size_t(t)] = kl_divergence_of_logits(a, b, V);
    if (std::max_element(a, a + V) - a != std::max_element(b, b + V) - b) {
      ++top1_changed;
      if (first_changed < 0) first_changed = t;
    }
  }

  std::vector<LayerSummary> layers(std::size_t(config.n_layers));
  nlohmann::json rows = nlohmann::json::array();
  for (const EvictionStep& s : steps) {
    LayerSummary& L = layers[std::size_t(s.layer)];
    L.max_mass = std::max(L.max_mass, s.mass);
    L.mean_mass += s.mass / (double(config.n_heads) * T);
    L.max_observed = std::max(L.max_observed, s.observed);
    if (s.bound > 0) L.max_ratio = std::max(L.max_ratio, s.observed / s.bound), ++L.evicting_steps;
    rows.push_back({s.layer, s.head, s.position, s.mass, s.observed, s.bound});
  }
  std::printf("kvfid evict: streaming:%d,%d over %d tokens (exact forward at %d bits)\n", policy.sinks, policy.window, T,
              kAccountPrecisionBits);
  std::printf("%-6s %14s %14s %14s %18s %10s\n", "layer", "max mass", "mean mass", "max |o - o'|", "max |o - o'|/bound",
              "evicting");
  for (int l = 0; l < config.n_layers; ++l) {
    const LayerSummary& L = layers[std::size_t(l)];
    std::printf("%-6d %14.6e %14.6e %14.6e %18.6f %10d\n", l, L.max_mass, L.mean_mass, L.max_observed, L.max_ratio,
                L.evicting_steps);
  }
  std::printf("bound 2 m max|v| on every step: %s\n", certified ? "holds" : "VIOLATED");
  const double kl_max = *std::max_element(kl.begin(), kl.end());
  double kl_mean = 0;
  for (double x : kl) kl_mean += x / T;
  std::printf("end to end, against the full cache: KL mean %.6e, max %.6e nats; top token changed at %d of %d positions",
              kl_mean, kl_max, top1_changed, T);
  if (first_changed >= 0) std::printf(" (first at %d)", first_changed);
  std::printf("\n");
  if (args.has("json")) {
    const nlohmann::json out = {{"model", model_path},
                                {"policy", {{"kind", "streaming"}, {"sinks", policy.sinks}, {"window", policy.window}}},
                                {"tokens", tokens},
                                {"precision_bits", kAccountPrecisionBits},
                                {"bound_holds", certified},
                                {"kl_per_position", kl},
                                {"top1_changed", top1_changed},
                                {"columns", {"layer", "head", "position", "mass", "observed", "bound"}},
                                {"steps", rows}};
    write_file_atomic(args.str("json"), out.dump() + "\n");
  }
  return certified ? kExitPass : kExitFidelityFailure;
}

}  // namespace

extern const CommandSpec kEvictCommand = {
    "evict",
    "the exact account of a StreamingLLM eviction: dropped attention mass and its error bound",
    "Runs the model's forward in MPFR over the tokens with the full cache and, for every layer, query "
    "head and position, takes the keys a StreamingLLM cache would have evicted (all but the first "
    "SINKS and the last WINDOW): their softmax mass m, the attention output over the kept keys "
    "(the full softmax renormalized) against the full one, |o - o'|_2, and the proven bound "
    "2 m max_j |v_j|_2. Prints per layer the largest and mean mass, the largest error and its "
    "largest fraction of the bound; exit 1 if any step exceeded its bound. That error is each "
    "attention op's on the full cache's inputs; end to end, the forward is run again with the "
    "StreamingLLM cache (every layer reads the sinks and the window only) and its next-token "
    "distributions compared with the full cache's: KL per position (mean and max) and how often "
    "the top token changes.",
    {{"model", "PATH", "llama2.c checkpoint, Hugging Face style model folder or GGUF file", true},
     {"policy", "streaming:SINKS,WINDOW", "the eviction (StreamingLLM: attention sinks and a recent window)", true},
     {"tokens", "IDS", "comma-separated token ids, e.g. 1,2,3"},
     {"prompt", "FILE", "file of token ids (commas, spaces or newlines; # comments)"},
     {"json", "FILE", "also write every step (layer, head, position, mass, observed, bound) and the KL per position as JSON",
      false}},
    run_evict,
};

}  // namespace kvfid::cli
