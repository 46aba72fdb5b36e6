// kvfid quant: how much a weight format and one or more KV-cache policies cost, measured
// against the exact golden of the unquantized model (the truth for total error).
#include <algorithm>
#include <cmath>
#include <limits>
#include <iostream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "cuda/engine/engine.h"
#include "reference/calibration/kv_calibration.h"
#include "reference/calibration/kv_policy_fit.h"
#include "reference/golden/golden_io.h"
#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/metrics/quant_report.h"
#include "reference/metrics/quant_report_json.h"
#include "reference/metrics/quant_report_table.h"
#include "reference/metrics/report_json.h"
#include "reference/model/weight_storage.h"
#include "reference/mp/golden_forward.h"
#include "reference/mp/mp_forward.h"
#include "reference/mp/memory_estimate.h"
#include "reference/mp/mp_parallel.h"
#include "reference/util/progress.h"
#include "tools/kvfid/backend_unavailable.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/fidelity_command.h"
#include "tools/kvfid/threads_option.h"
#include "tools/kvfid/memory_check.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine

namespace {

// What one engine run leaves for the report: its logits and, per layer, the cache as
// its queries read it.
struct EngineRun {
  std::vector<double> logits;  // [T, vocab]
  std::vector<std::vector<double>> k_cold, k_hot, v_cold;  // [n_layers][T, n_kv_heads, head_dim (v: v_head_dim)]
  std::vector<std::vector<int>> k_cold_end;                // [n_layers][T]
  double kv_bits_per_element = 0;                          // QuantColumn's, from the held bytes
};

// [n_kv_heads, T, width] (the cache's layout) -> [T, n_kv_heads, width] (the taps'): width
// head_dim for keys, v_head_dim for values.
std::vector<double> token_major(const std::vector<float>& cache, const ModelConfig& c, int T, int width) {
  std::vector<double> out(cache.size());
  for (int h = 0; h < c.n_kv_heads; ++h)
    for (int t = 0; t < T; ++t)
      for (int d = 0; d < width; ++d)
        out[(std::size_t(t) * c.n_kv_heads + h) * width + d] = cache[(std::size_t(h) * T + t) * width + d];
  return out;
}

EngineRun run_engine(const Model& model, const std::vector<int>& tokens, const EngineOptions& options) {
  const ModelConfig& c = model.config;
  const int T = int(tokens.size());
  Engine engine(model, options);
  const int seq = engine.add_sequence(T);
  const StepOutput& out = engine.step({{seq, tokens}});
  EngineRun run;
  run.logits.assign(out.logits.begin(), out.logits.end());
  const quant::KvPolicy policy = quant::resolve_kv_policy(options.kv, options.kv_scales, c);
  double held_bytes = 0;
  for (int l = 0; l < c.n_layers; ++l) {
    const CacheValues cache = engine.cache_values(seq, l);
    held_bytes += double(cache.k_bytes) + double(cache.v_bytes);
    run.k_cold.push_back(token_major(cache.k, c, T, c.head_dim));
    run.v_cold.push_back(token_major(cache.v, c, T, c.v_head_dim()));
    run.k_hot.push_back(cache.k_hot.empty() ? std::vector<double>{} : token_major(cache.k_hot, c, T, c.head_dim));
    std::vector<int> ends(T);
    for (int t = 0; t < T; ++t) ends[t] = quant::cold_end(t, policy.hot_window, quant::kivi_group(policy, l));
    run.k_cold_end.push_back(std::move(ends));
  }
  // Per value the cache holds: K and V, or under latent attention the latent rows'.
  run.kv_bits_per_element = 8 * held_bytes / (double(c.n_layers) * T * double(c.cache_values_per_token()));
  return run;
}

// NaN/Inf or all-zero logits make every statistic meaningless: reported on their own.
std::string gross_logits_problem(const std::vector<double>& logits) {
  bool any_nonzero = false;
  for (double x : logits) {
    if (!std::isfinite(x)) return "NaN or Inf in the logits";
    any_nonzero = any_nonzero || x != 0;
  }
  return any_nonzero ? "" : "all logits are zero";
}

const std::vector<double>& tap_values(const TapSet& taps, const std::string& name) {
  const TapTensor* t = find_tap(taps, name);
  if (!t) throw InputError("--baseline", "the golden has no tap '" + name + "' (make it with --taps all)");
  return t->values;
}

std::vector<KvLayerError> kv_errors(const TapSet& golden, const EngineRun& run, const ModelConfig& c, int T) {
  std::vector<KvLayerError> layers;
  for (int l = 0; l < c.n_layers; ++l) {
    const AttentionShape shape = attention_shape(c, T, l);
    KeysAsRead keys{run.k_cold[l]};
    if (!run.k_hot[l].empty()) keys = KeysAsRead{run.k_cold[l], run.k_hot[l], run.k_cold_end[l]};
    layers.push_back(kv_layer_error(tap_values(golden, tap_layer_name(l, "q")), tap_values(golden, tap_layer_name(l, "k")),
                                    tap_values(golden, tap_layer_name(l, "v")), keys, run.v_cold[l], shape));
  }
  return layers;
}

// The exact account of the eviction in options.kv (kvfid evict's precision): the
// exact forward with the policy's storage and eviction, its record summarized, and its
// logits' mean KLD against the golden of the full cache.
EvictionSummary eviction_summary(const Model& model, const std::vector<int>& tokens, const EngineOptions& options,
                                 const std::vector<double>& golden_logits) {
  const ModelConfig& c = model.config;
  EvictionRecord record;
  const std::vector<double> logits =
      exact_evicting_logits(model, tokens, quant::resolve_kv_policy(options.kv, options.kv_scales, c), &record);
  EvictionSummary e;
  double kept = 0, readable = 0;
  for (const EvictionStep& s : record.steps) {
    e.mass_max = std::max(e.mass_max, s.mass);
    e.mass_mean += s.mass / double(record.steps.size());
    e.error_max = std::max(e.error_max, s.observed);
    e.bound_max = std::max(e.bound_max, s.bound);
    if (s.bound > 0) e.ratio_max = std::max(e.ratio_max, s.observed / s.bound);
    kept += s.kept, readable += s.position + 1;
  }
  e.kept_fraction = readable > 0 ? kept / readable : 1;
  e.margin_min = std::numeric_limits<double>::infinity();
  for (const EvictionDecision& d : record.decisions) e.margin_min = std::min(e.margin_min, d.margin);
  e.bound_held = record.certified;
  e.kld_mean = logit_statistics(golden_logits, logits, c.vocab, tokens).kld.value;
  return e;
}

int run_quant(const ParsedArgs& args) {
  const std::string model_path = args.str("model");
  const std::string prompt_path = args.str("prompt");
  EngineOptions base;
  base.backend = backend_from_string(args.str_or("engine", "twin"), "--engine");
  base.taps = TapSelection::logits;
  base.threads = threads_from_args(args);
  base.latent = latent_path_from_string(args.str_or("mla", "reconstruct"), "--mla");
  const std::string weights = args.str_or("weights", "f32");  // as given, for the report
  const WeightFormat weight_format = weight_format_from_string(weights, "--weights");
  const std::vector<std::string> kv_specs = quant::split_kv_spec_list(args.str("kv"), "--kv");
  std::vector<quant::KvPolicySpec> kv_policies;
  for (const std::string& spec : kv_specs) kv_policies.push_back(quant::parse_kv_policy_spec(spec, "--kv"));
  const std::string scales = args.str_or("kv-scales", "spec");
  if (scales != "spec" && scales != "amax")
    throw InputError("--kv-scales", "'" + scales + "' is neither 'spec' nor 'amax'");
  check_report_paths(args);

  const std::vector<int> tokens = read_prompt_file(prompt_path);
  {
    const ModelConfig config = load_model_config(model_path);
    validate_tokens(tokens, config, prompt_path);
    if (tokens.size() < 2)
      throw InputError(prompt_path, "1 token; kvfid quant needs at least 2 (it scores each token's prediction of the next)");
    // The golden (unless given), then one engine at a time beside it.
    const ForwardShape shape{config, int(tokens.size()), GoldenOptions{}.taps, false, resolve_thread_count(0)};
    const GoldenOptions golden_options;
    check_memory("kvfid quant", model_path,
                 (args.has("baseline") ? 0 : golden_memory_bytes(shape, golden_options)) +
                     engine_weight_bytes(config, {WeightFormat{}, weight_format}, stored_matrix_type(model_path)));
  }
  const Model model = load_model(model_path);
  const ModelConfig& c = model.config;
  check_weight_format_fits(weight_format, c);
  for (const quant::KvPolicySpec& spec : kv_policies) quant::resolve_kv_policy(spec, {}, c);  // the model's shape
  const int T = int(tokens.size());

  Golden golden;
  if (args.has("baseline")) {
    golden = read_golden(args.str("baseline"));
    check_golden_model(model, model_path, golden, args.str("baseline"));  // the model loaded above: never twice
    if (golden.tokens != tokens) throw InputError("--baseline", "the golden was made from other tokens than " + prompt_path);
  } else {
    Progress progress = Progress::on_stderr("kvfid quant: golden");
    GoldenOptions options;
    options.progress = &progress;
    GoldenResult result = compute_golden(model, tokens, options);
    golden.taps = std::move(result.taps);
    golden.manifest = {{"model", model_path}, {"tokens", tokens}, {"certification", result.certification}};
    golden.tokens = tokens;
  }
  const std::vector<double>& golden_logits = tap_values(golden.taps, "logits");

  // Every configuration, plus the runs the error budget needs: weights alone (KV in
  // FP32) once, and each KV policy with FP32 weights.
  // --kv-scales amax: each scaled slot's per-head scale from the golden's K and V.
  auto engine_options = [&](const WeightFormat& w, const quant::KvPolicySpec& kv) {
    EngineOptions o = base;
    o.weights = w;
    o.kv = kv;
    if (scales == "amax")
      o.kv_scales = quant::amax_kv_scales(quant::resolve_kv_policy(kv, {}, c), c, golden.taps, "--kv-scales");
    return o;
  };
  auto statistics = [&](const EngineRun& run, const std::string& label) {
    const std::string problem = gross_logits_problem(run.logits);
    if (!problem.empty()) throw std::runtime_error(label + ": " + problem);
    return logit_statistics(golden_logits, run.logits, c.vocab, tokens);
  };
  try {
    std::cerr << "kvfid quant: weights " << weights << " alone\n";
    const LogitStatistics weights_only = statistics(run_engine(model, tokens, engine_options(weight_format, quant::KvPolicySpec{})), "weights only");
    QuantReport report{weights, {}};
    for (const quant::KvPolicySpec& kv : kv_policies) {
      const std::string& spec = kv.text;
      std::cerr << "kvfid quant: KV " << spec << " (alone, then with weights " << weights << ")\n";
      const LogitStatistics kv_only = statistics(run_engine(model, tokens, engine_options(WeightFormat{}, kv)), spec + " alone");
      const EngineRun both = run_engine(model, tokens, engine_options(weight_format, kv));
      // Under an eviction the evicted tokens are gone from the cache: no K/V errors;
      // the exact account instead.
      QuantColumn column{spec, statistics(both, spec), kv.evict ? std::vector<KvLayerError>{} : kv_errors(golden.taps, both, c, T),
                         std::nullopt, both.kv_bits_per_element, std::nullopt};
      column.budget = error_budget(weights_only, kv_only, column.logits);
      if (kv.evict) {
        std::cerr << "kvfid quant: the exact account of " << spec << '\n';
        column.eviction = eviction_summary(model, tokens, engine_options(WeightFormat{}, kv), golden_logits);
      }
      report.columns.push_back(std::move(column));
    }
    bool bounds_held = true;
    for (const QuantColumn& column : report.columns) bounds_held = bounds_held && (!column.eviction || column.eviction->bound_held);
    std::cout << "kvfid quant: " << model_path << ", " << T << " tokens of " << prompt_path << ", engine "
              << args.str_or("engine", "twin") << "; against the exact golden of the unquantized model\n"
              << (scales == "amax" ? "FP8 scales: per head, the amax of this prompt's exact K and V (calibrated on the "
                                     "measured tokens: the optimistic case)\n"
                                   : "")
              << format_quant_report(report);
    if (args.has("json")) {
      const nlohmann::json options = {{"model", model_path}, {"prompt", prompt_path}, {"weights", weights},
                                      {"kv", kv_specs},      {"engine", args.str_or("engine", "twin")},
                                      {"kv_scales", scales}, {"mla", to_string(base.latent)}};
      write_file_atomic(args.str("json"),
                        quant_report_to_json(report, "quant", options, golden_manifest_summary(golden.manifest)).dump(2) + "\n");
    }
    if (!bounds_held) {
      std::cerr << "kvfid quant: FAIL: an eviction's error exceeded its proven bound 2 m max|v|\n";
      return kExitFidelityFailure;
    }
  } catch (const BackendUnavailable& e) {
    throw InputError("--engine", unavailable_backend_message(e));
  } catch (const std::runtime_error& e) {
    if (dynamic_cast<const InputError*>(&e)) throw;
    std::cerr << "kvfid quant: FAIL: " << e.what() << '\n';
    return kExitFidelityFailure;
  }
  return kExitPass;
}

}  // namespace

extern const CommandSpec kQuantCommand{
    "quant",
    "the cost of a weight format and KV-cache policies against the exact golden",
    "Runs the engine with the weights in --weights and the KV cache under each policy of --kv\n"
    "(comma-separated, one column each; grammar in reference/formats/quant/kv_policy.h, e.g.\n"
    "q8_0, int4_32+edges=2:f16, int4a_32+kivi, int8_32+hot=16) and measures it against the exact\n"
    "golden of the unquantized model: llama.cpp's KL-divergence statistics over the prompt, per\n"
    "layer and head the K/V round-trip RMSE, the q.k distortion and the attention KL, and an\n"
    "error budget (weights alone, the KV cache alone, both). The golden is computed unless\n"
    "--baseline names one (all taps, same model and tokens). A policy with an eviction\n"
    "(f16+evict=h2o:25%) has no K/V error rows (its evicted tokens are gone) but its exact account:\n"
    "the exact forward of the evicting cache, its dropped attention mass, the output error against\n"
    "its proven bound 2 m max|v|, the decisions' margins, its mean KLD. Exit 1 on NaN/Inf or all-zero\n"
    "logits, or a bound that fails.",
    {{"model", "PATH", "the model (llama2.c .bin or HF folder)", true},
     {"prompt", "FILE", "token ids, one line, comma- or space-separated", true},
     {"kv", "SPEC[,SPEC...]", "KV-cache policies to compare side by side", true},
     {"weights", "FORMAT", "weight storage: f32 (default), f16, bf16, q8_0, q4_0"},
     {"engine", "NAME", "twin (default) or cuda"},
     {"mla", "reconstruct|absorb",
      "latent attention's decode path (DeepSeek MLA models only; their cache is the latent, in f32, f16 or bf16): "
      "keys and values rebuilt from each cached row (default), or the up-projections absorbed"},
     threads_option(),
     {"kv-scales", "spec|amax",
      "static scales of scaled formats (FP8): the policy's scale= (default spec, 1 when absent), or amax: per "
      "layer, K/V and head, the prompt's largest |value| onto the format's largest (calibrated on the measured "
      "tokens, so optimistic)"},
     {"baseline", "DIR", "a golden folder of this model and prompt (kvfid golden --taps all)"},
     json_report_option()},
    run_quant};

}  // namespace kvfid::cli
