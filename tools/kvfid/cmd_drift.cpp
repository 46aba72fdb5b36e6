// kvfid drift: how the engine's next-token distribution and attention drift from the
// exact golden along a long sequence, per KV-cache format, with the error budget split
// by source; writes drift.csv, drift.json and drift.svg.
#include <filesystem>
#include <iostream>

#include "cuda/engine/engine.h"
#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/mp/golden_forward.h"
#include "reference/mp/memory_estimate.h"
#include "reference/mp/mp_parallel.h"
#include "tools/kvfid/backend_unavailable.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/drift_formats.h"
#include "tools/kvfid/drift_output.h"
#include "tools/kvfid/threads_option.h"
#include "tools/kvfid/memory_check.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine
namespace {

int run_drift_command(const ParsedArgs& args) {
  drift::Request request;
  request.backend = backend_from_string(args.str_or("engine", "twin"), "--engine");
  request.weights = args.str_or("weights", "f32");
  request.weight_format = weight_format_from_string(request.weights, "--weights");
  request.threads = threads_from_args(args);
  request.latent = latent_path_from_string(args.str_or("mla", "reconstruct"), "--mla");
  request.kv_specs = drift::parse_kv_spec_list(args.str_or("kv", "f16"), "--kv");
  request.progress = true;
  const long long every = args.integer_or("recompute-every", 1);
  if (every < 1) throw InputError("--recompute-every", std::to_string(every) + " is not a positive position count");
  request.recompute_every = int(std::min<long long>(every, 1 << 30));
  const std::string out = args.str("out");
  check_output_folder(out);

  const std::string model_path = args.str("model"), prompt_path = args.str("prompt");
  const std::vector<int> prompt = read_prompt_file(prompt_path);
  const ModelConfig config = load_model_config(model_path);
  validate_tokens(prompt, config, prompt_path);
  const long long positions = args.integer_or("positions", (long long)prompt.size());
  if (positions < 1 || positions > config.max_seq)
    throw InputError("--positions", std::to_string(positions) + " is outside [1, " + std::to_string(config.max_seq) +
                                        "] (the model's context)");
  {
    // The golden of every tap over all positions (drift_reference_runs.cpp), with the
    // emulated runs and one engine beside it.
    const ForwardShape shape{config, int(positions), TapSelection::all, true, resolve_thread_count(0)};
    const GoldenOptions golden_options;
    check_memory("kvfid drift", model_path,
                 golden_memory_bytes(shape, golden_options) +
                     emulated_bytes(shape) +
                     engine_weight_bytes(config, {WeightFormat{}, request.weight_format}, stored_matrix_type(model_path)));
  }
  const Model model = load_model(model_path);

  drift::Result result;
  try {
    // An unavailable backend (CUDA without a GPU) fails here, before any output or long work.
    // Constructing each engine also checks that the weight format and every KV policy fit
    // the model (blocks tiling its rows), naming the flag (their source).
    for (const quant::KvPolicySpec& spec : request.kv_specs)
      Engine probe(model,
                   drift::drift_engine_options(request.backend, request.weight_format, spec, request.threads, request.latent));
    const std::vector<int> tokens = drift::drift_sequence(model, prompt, int(positions), request.backend, request.threads);
    std::cerr << "kvfid drift: " << tokens.size() << " positions (" << std::min<std::size_t>(prompt.size(), tokens.size())
              << " from the prompt), KV " << args.str_or("kv", "f16") << ", weights " << request.weights << ", "
              << args.str_or("engine", "twin") << " engine\n";
    result = drift::run_drift(model, tokens, int(std::min<std::size_t>(prompt.size(), tokens.size())), request);
  } catch (const BackendUnavailable& e) {
    std::cerr << "kvfid drift: " << unavailable_backend_message(e) << '\n';
    return kExitBadInput;
  } catch (const CertificationError& e) {
    std::cerr << "kvfid drift: " << e.what() << '\n';
    return kExitFidelityFailure;
  }

  const drift::ReportContext context{model_path, std::filesystem::path(model_path).lexically_normal().filename().string(),
                                     model.sha256, to_json(model.config), args.str_or("engine", "twin")};
  const nlohmann::json json = drift::drift_json(result, context);
  std::vector<std::pair<std::string, std::string>> files = {{"drift.csv", drift::drift_csv(result, model.config.n_layers)},
                                                             {"drift.json", json.dump(1) + "\n"},
                                                             {"drift.svg", render_svg(drift::drift_plot(result, context))}};
  const LinePlot eviction = drift::eviction_plot(result, context);
  if (!eviction.series.empty()) files.push_back({"eviction.svg", render_svg(eviction)});
  write_files_atomic(out, files);
  std::cout << drift::drift_summary_text(result);
  std::cout << "wrote drift.csv, drift.json, drift.svg" << (eviction.series.empty() ? "" : " and eviction.svg") << " to "
            << out << '\n';
  if (!result.eviction_bounds_held()) {
    std::cout << "FAIL: an eviction's error exceeded its proven bound 2 m max|v|\n";
    return kExitFidelityFailure;
  }
  if (result.engine_non_finite_positions() > 0) {
    std::cout << "FAIL: the engine produced NaN or Inf logits at " << result.engine_non_finite_positions()
              << " positions\n";
    return kExitFidelityFailure;
  }
  return result.invariant() ? kExitPass : kExitFidelityFailure;
}

}  // namespace

extern const CommandSpec kDriftCommand;  // listed in commands.cpp
const CommandSpec kDriftCommand{
    "drift",
    "per-position drift of KV-cache formats over a long context, with an error budget",
    "Measures, at every position t of a token sequence, how far the engine's next-token distribution is "
    "from the certified golden (KL(golden || engine), max |logit error|, top-1 agreement) and how its "
    "attention differs (entropy per layer and the weight on the newest token, against 1/(t+1)). The "
    "sequence is the prompt, extended to --positions tokens by greedy decoding on the engine with F32 "
    "weights and cache when the prompt is shorter (or cut to its first --positions tokens). The golden "
    "is one MPFR forward over the whole sequence. Per KV spec the engine runs three times: cached decode "
    "(one token per step) and full recompute at each position (a fresh prefill of tokens 0..t; with "
    "--recompute-every N at every Nth and the last), both in "
    "the engine's invariant split mode, where the two must agree bit for bit, else the exit status is 1; "
    "and cached decode in the by-length split mode (each step's attention split size chosen from its "
    "rows and longest context, as flash-decoding engines choose theirs), whose differences from "
    "recompute are reported (positions differing, max |logit difference|) as the expected finding. The error "
    "budget reruns the sequence in the MPFR emulation with only the weights rounded, only the KV cache, "
    "only the arithmetic (FP16 everywhere, exact storage), and all at once, and reports each source's "
    "share at the last position. Writes DIR/drift.csv (one row per configuration and position), "
    "DIR/drift.json (every series and a summary) and DIR/drift.svg (KL per position, log scale); the "
    "columns are described in tools/kvfid/drift_output.h. A KV spec with an eviction (f16+evict=h2o:25%) "
    "adds its exact account: the exact forward of the evicting cache against the full cache's golden "
    "(KL per position), with each position's dropped attention mass, the output error it causes and "
    "that error's proven bound 2 m max|v|, plotted in DIR/eviction.svg; a bound that fails exits 1.",
    {
        {"model", "PATH", kModelPathHelp, true},
        {"prompt", "FILE", "file of token ids (commas, spaces or newlines; # comments)", true},
        {"engine", "twin|cuda", "which engine runs (default twin)"},
        threads_option(),
        {"kv", "SPEC[,SPEC...]", "KV-cache formats, three engine curves each (default f16)"},
        {"weights", "f32|f16|bf16", "engine weight storage; the budget's weights source (default f32)"},
        {"mla", "reconstruct|absorb",
         "latent attention's decode path (DeepSeek MLA models only): keys and values rebuilt from each cached row "
         "(default), or the up-projections absorbed into the query and output"},
        {"positions", "N", "sequence length (default: the prompt's length)"},
        {"recompute-every", "N",
         "run the recompute's fresh prefill only at every Nth position and the last (default 1: at each); its "
         "cost grows as the square of the length, and the bitwise verdict covers the positions it ran"},
        {"out", "DIR", "folder for drift.csv, drift.json, drift.svg (created if missing)", true},
    },
    run_drift_command,
};

}  // namespace kvfid::cli
