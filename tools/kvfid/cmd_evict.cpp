// kvfid evict: the exact account of KV-cache eviction policies over a prompt
// (reference/mp/eviction_policy.h, evicting_attention.h): per policy and layer, the
// attention mass the evicted keys carry under the full cache and the error it causes
// against its proven bound, then end to end the next-token distributions against the
// full cache's.
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <iostream>
#include <limits>

#include <nlohmann/json.hpp>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/atomic_file.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/metrics/logit_metrics.h"
#include "reference/mp/eviction_policy.h"
#include "reference/mp/evicting_attention.h"
#include "reference/mp/memory_estimate.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/mp_weights.h"
#include "reference/util/input_error.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/memory_check.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

struct LayerSummary {
  double max_mass = 0, mean_mass = 0, max_ratio = 0, max_observed = 0, max_bound = 0;
  int evicting_steps = 0;
};

// One policy's results: the per-layer table and the headline numbers.
struct PolicyResult {
  EvictionPolicy policy;
  int budget = 0;  // past keys
  EvictionRecord record;
  std::vector<double> kl;
  int top1_changed = 0, first_changed = -1;
  double kl_mean = 0, kl_max = 0, max_mass = 0, max_observed = 0, max_bound = 0, max_ratio = 0, kept_fraction = 0;
  double seconds = 0;  // the evicted forward with its account
  double margin_min = 0;  // the smallest decision margin; +infinity without a scored choice
};

// Working memory beyond one logits-only forward for one evicting forward with its account
// (evicting_attention.cpp): the read map (a byte per query and key per KV head), the
// steps and events, each thread's row at Q = 2P + 64, and per KV head a step's rows and
// values and the scorer's state (at most T scores at Q, or OBS rows of T at P).
std::uint64_t evicting_bytes(const ModelConfig& c, int T, const std::vector<EvictionPolicy>& policies, int threads) {
  const std::uint64_t t = std::uint64_t(T), p = mp_number_bytes(kEvictionAccountBits),
                      q = mp_number_bytes(2 * kEvictionAccountBits + 64);
  std::uint64_t obs = 1;
  for (const EvictionPolicy& e : policies) obs = std::max<std::uint64_t>(obs, std::uint64_t(e.obs_window) + 1);
  return std::uint64_t(c.n_kv_heads) * t * t + std::uint64_t(c.n_layers) * c.n_heads * t * sizeof(EvictionStep) +
         std::uint64_t(c.n_layers) * c.n_kv_heads * t * sizeof(EvictionEvent) + std::uint64_t(threads) * (t + 3) * q +
         std::uint64_t(c.n_kv_heads) * t * ((std::uint64_t(c.group()) + c.head_dim + obs) * p + q);
}

int run_evict(const ParsedArgs& args) {
  if (args.has("tokens") == args.has("prompt")) throw UsageError("give exactly one of --tokens and --prompt");
  std::vector<EvictionPolicy> policies = quant::parse_eviction_policies(args.str("policy"), "--policy");
  const std::string model_path = args.str("model");
  const std::vector<int> tokens =
      args.has("tokens") ? parse_token_list(args.str("tokens"), "--tokens") : read_prompt_file(args.str("prompt"));
  const ModelConfig config = load_model_config(model_path);
  for (EvictionPolicy& p : policies) p = quant::eviction_for_model(p, config, "--policy");
  validate_tokens(tokens, config, args.has("tokens") ? "--tokens" : args.str("prompt"));
  const int T = int(tokens.size());
  const int threads = resolve_thread_count(0);
  // One forward at a time, logits only (the full cache's kept as float64), and the
  // evicting forward's account.
  const ForwardShape shape{config, T, TapSelection::logits, false, threads};
  check_memory("kvfid evict", model_path,
               mp_forward_bytes(shape, kEvictionAccountBits) + evicting_bytes(config, T, policies, threads) +
                   2 * std::uint64_t(T) * std::uint64_t(config.vocab) * sizeof(double));
  const Model model = load_model(model_path);
  MpForwardOptions o;
  o.arith = MpArith::exact(kEvictionAccountBits);
  o.taps = TapSelection::logits;
  o.threads = threads;
  const MpWeights weights = to_mp_weights(model, kEvictionAccountBits);
  using Clock = std::chrono::steady_clock;
  auto seconds_since = [](Clock::time_point start) { return std::chrono::duration<double>(Clock::now() - start).count(); };
  const Clock::time_point full_start = Clock::now();
  const std::vector<double> full_logits = to_doubles(mp_tap(mp_forward(model, weights, tokens, o), "logits").values);
  const double full_seconds = seconds_since(full_start);
  const std::size_t V = std::size_t(config.vocab);

  std::vector<PolicyResult> results;
  bool certified = true;
  nlohmann::json json_policies = nlohmann::json::array();
  std::printf("kvfid evict: %zu %s over %d tokens (exact forwards at %d bits, the account at %d; the full cache's "
              "forward %.1f s)\n",
              policies.size(), policies.size() == 1 ? "policy" : "policies", T, kEvictionAccountBits,
              2 * kEvictionAccountBits + 64, full_seconds);
  for (const EvictionPolicy& policy : policies) {
    PolicyResult r{policy, policy.max_budget_for(T), {}, std::vector<double>(std::size_t(T))};
    // The evicted forward: every layer reads what the policy kept, its account on its own
    // inputs, and its next-token distributions against the full cache's (KL in nats, and
    // whether the top token stays).
    const Clock::time_point start = Clock::now();
    o.evict = &r.policy;
    o.evict_record = &r.record;
    const std::vector<double> evicted_logits = to_doubles(mp_tap(mp_forward(model, weights, tokens, o), "logits").values);
    r.seconds = seconds_since(start);
    for (int t = 0; t < T; ++t) {
      const double* a = full_logits.data() + std::size_t(t) * V;
      const double* b = evicted_logits.data() + std::size_t(t) * V;
      r.kl[std::size_t(t)] = kl_divergence_of_logits(a, b, V);
      r.kl_mean += r.kl[std::size_t(t)] / T;
      r.kl_max = std::max(r.kl_max, r.kl[std::size_t(t)]);
      if (std::max_element(a, a + V) - a != std::max_element(b, b + V) - b) {
        ++r.top1_changed;
        if (r.first_changed < 0) r.first_changed = t;
      }
    }
    std::vector<LayerSummary> layers(std::size_t(config.n_layers));
    nlohmann::json rows = nlohmann::json::array();
    double kept = 0, readable = 0;
    for (const EvictionStep& s : r.record.steps) {
      LayerSummary& L = layers[std::size_t(s.layer)];
      L.max_mass = std::max(L.max_mass, s.mass);
      L.mean_mass += s.mass / (double(config.n_heads) * T);
      L.max_observed = std::max(L.max_observed, s.observed);
      L.max_bound = std::max(L.max_bound, s.bound);
      if (s.bound > 0) L.max_ratio = std::max(L.max_ratio, s.observed / s.bound), ++L.evicting_steps;
      kept += s.kept, readable += s.position + 1;
      if (args.has("json")) rows.push_back({s.layer, s.head, s.position, s.mass, s.observed, s.bound, s.kept});
    }
    r.kept_fraction = readable > 0 ? kept / readable : 1;
    std::printf("\n%s (%d past keys at most) over %d tokens: %.1f s\n", policy.spec().c_str(), r.budget, T, r.seconds);
    std::printf("%-6s %14s %14s %14s %14s %18s %10s\n", "layer", "max mass", "mean mass", "max |o - o'|", "max bound",
                "max |o - o'|/bound", "evicting");
    for (int l = 0; l < config.n_layers; ++l) {
      const LayerSummary& L = layers[std::size_t(l)];
      std::printf("%-6d %14.6e %14.6e %14.6e %14.6e %18.6f %10d\n", l, L.max_mass, L.mean_mass, L.max_observed,
                  L.max_bound, L.max_ratio, L.evicting_steps);
      r.max_mass = std::max(r.max_mass, L.max_mass);
      r.max_observed = std::max(r.max_observed, L.max_observed);
      r.max_bound = std::max(r.max_bound, L.max_bound);
      r.max_ratio = std::max(r.max_ratio, L.max_ratio);
    }
    std::printf("bound 2 m max|v| on every step: %s (the forward's outputs within %.1e of the account's)\n",
                r.record.certified ? "holds" : "VIOLATED", r.record.output_deviation);
    // How near a tie the closest scored decision came (EvictionScorer::margin): an engine
    // whose scores are within e of these can choose otherwise only at margins <= 2e.
    r.margin_min = std::numeric_limits<double>::infinity();
    for (const EvictionDecision& d : r.record.decisions) r.margin_min = std::min(r.margin_min, d.margin);
    if (std::isfinite(r.margin_min))
      std::printf("closest decision to a tie: margin %.6e over %zu scored decisions\n", r.margin_min,
                  r.record.decisions.size());
    std::printf("end to end, against the full cache: KL at the last position %.6e, mean %.6e, max %.6e nats; top "
                "token changed at %d of %d positions",
                r.kl.back(), r.kl_mean, r.kl_max, r.top1_changed, T);
    if (r.first_changed >= 0) std::printf(" (first at %d)", r.first_changed);
    std::printf("; kept fraction %.4f\n", r.kept_fraction);
    certified = certified && r.record.certified;
    if (args.has("json")) {
      nlohmann::json events = nlohmann::json::array();
      for (const EvictionEvent& e : r.record.evicted) events.push_back({e.layer, e.kv_head, e.after, e.key});
      json_policies.push_back({{"policy", policy.spec()},
                               {"budget_tokens", r.budget},
                               {"bound_holds", r.record.certified},
                               {"output_deviation", r.record.output_deviation},
                               {"kl_per_position", r.kl},
                               {"kl_last", r.kl.back()},
                               {"kl_mean", r.kl_mean},
                               {"kl_max", r.kl_max},
                               {"max_mass", r.max_mass},
                               {"max_observed", r.max_observed},
                               {"max_bound", r.max_bound},
                               {"max_ratio", r.max_ratio},
                               {"top1_changed", r.top1_changed},
                               {"margin_min", std::isfinite(r.margin_min) ? nlohmann::json(r.margin_min) : nlohmann::json(nullptr)},
                               {"kept_fraction", r.kept_fraction},
                               {"seconds", r.seconds},
                               {"columns", {"layer", "head", "position", "mass", "observed", "bound", "kept"}},
                               {"steps", std::move(rows)},
                               {"evicted_columns", {"layer", "kv_head", "after", "key"}},
                               {"evicted", std::move(events)}});
    }
    r.record = {};  // the steps are summarized: free them before the next forward
    results.push_back(std::move(r));
  }
  if (results.size() > 1) {
    std::printf("\n%-22s %7s %12s %12s %10s %12s %12s %9s %6s %6s %8s\n", "policy", "budget", "KL last", "KL mean",
                "max mass", "max |o-o'|", "max bound", "max ratio", "top-1", "kept", "seconds");
    for (const PolicyResult& r : results)
      std::printf("%-22s %7d %12.4e %12.4e %10.4f %12.4e %12.4e %9.4f %6d %6.3f %8.1f\n", r.policy.spec().c_str(),
                  r.budget, r.kl.back(), r.kl_mean, r.max_mass, r.max_observed, r.max_bound, r.max_ratio,
                  r.top1_changed, r.kept_fraction, r.seconds);
  }
  if (args.has("json")) {
    const nlohmann::json out = {{"model", model_path},
                                {"tokens", tokens},
                                {"precision_bits", kEvictionAccountBits},
                                {"bound_holds", certified},
                                {"policies", std::move(json_policies)}};
    write_file_atomic(args.str("json"), out.dump() + "\n");
  }
  return certified ? kExitPass : kExitFidelityFailure;
}

}  // namespace

extern const CommandSpec kEvictCommand = {
    "evict",
    "the exact account of KV-cache eviction policies: dropped attention mass, its error bound, end-to-end KL",
    "Runs the model's forward in MPFR over the tokens with the full cache, then once per policy with "
    "every layer's attention reading only what the policy kept (reference/mp/eviction_policy.h: "
    "streaming:SINKS,WINDOW, h2o:BUDGET, tova:BUDGET, knorm:BUDGET, snapkv:BUDGET,OBS,POOL; BUDGET "
    "past keys as a count or a percentage of the prompt such as 25%; the policy decides in position "
    "order from the evicted cache's own attention; on a model with its own sliding window only "
    "window, which keeps each windowed layer's window and evicts nothing a query reads). For every layer, query head and position, on "
    "the evicted forward's own inputs: the full cache's softmax mass m of the keys the query did not "
    "read, the attention output over the kept keys against the full one, |o - o'|_2, and the proven "
    "bound 2 m max_j |v_j|_2. Prints per policy and layer the largest and mean mass, the largest "
    "error, bound and fraction of the bound, then the next-token distributions against the full "
    "cache's: KL at the last position, mean and max, how often the top token changes, and the "
    "fraction of keys kept; with several policies a table of them. Exit 1 if any step exceeded "
    "its bound.",
    {{"model", "PATH", "llama2.c checkpoint, Hugging Face style model folder or GGUF file", true},
     {"policy", "SPEC[,SPEC...]",
      "the evictions: streaming:S,W h2o:B tova:B knorm:B snapkv:B,OBS,POOL window, comma-joined (B: a count or N%)",
      true},
     {"tokens", "IDS", "comma-separated token ids, e.g. 1,2,3"},
     {"prompt", "FILE", "file of token ids (commas, spaces or newlines; # comments)"},
     {"json", "FILE",
      "also write per policy every step (layer, head, position, mass, observed, bound, kept), every eviction and the "
      "KL per position as JSON",
      false}},
    run_evict,
};

}  // namespace kvfid::cli
