// kvfid check: run the engine on the golden's tokens and judge its taps.
#include <iostream>

#include "cuda/engine/engine_forward.h"
#include "reference/formats/float_format.h"
#include "reference/golden/golden_io.h"
#include "reference/util/input_error.h"
#include "reference/model/weight_storage.h"
#include "tools/kvfid/backend_unavailable.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/fidelity_command.h"
#include "tools/kvfid/threads_option.h"
#include "reference/io/load_model.h"
#include "tools/kvfid/memory_check.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the layers below: the specification,
using namespace kvfid::engine;  // and the engine

namespace {

int run_check(const ParsedArgs& args) {
  const std::string golden_dir = args.str("golden");
  const std::string model_path = args.str("model");
  EngineOptions engine;
  engine.backend = backend_from_string(args.str("engine"), "--engine");
  engine.weights = weight_format_from_string(args.str_or("weights", "f32"), "--weights");
  engine.kv = quant::parse_kv_policy_spec(args.str_or("kv", "f32"), "--kv");  // spread over the model's layers by the engine
  const long long chunk = args.integer_or("chunk", 0);
  if (chunk < 0) throw InputError("--chunk", "must be 0 (whole prompt) or a positive chunk size");
  engine.chunk = int(chunk);
  engine.latent = latent_path_from_string(args.str_or("mla", "reconstruct"), "--mla");
  engine.threads = threads_from_args(args);
  check_report_paths(args);

  const Golden golden = read_golden(golden_dir);
  check_memory("kvfid check", model_path,
               baseline_bytes(model_path, golden) +
                   engine_weight_bytes(load_model_config(model_path), {engine.weights}, stored_matrix_type(model_path)));
  std::cerr << "kvfid check: loading " << model_path << '\n';
  const Model model = load_golden_model(model_path, golden, golden_dir);
  engine.taps = golden_tap_selection(golden);

  std::cerr << "kvfid check: engine " << args.str("engine") << " over " << golden.tokens.size() << " tokens\n";
  TapSet candidate;
  try {
    candidate = engine_forward(model, golden.tokens, engine);
  } catch (const BackendUnavailable& e) {
    throw InputError("--engine", unavailable_backend_message(e));
  }
  // The engine accumulates in FP32 whatever it stores, so its baseline computes in FP32
  // with the same weight and KV storage.
  const Emulation baseline{FloatFormat::f32, engine.weights, engine.kv, engine.kv_scales};
  const nlohmann::json options = {{"golden", golden_dir},      {"model", model_path},
                                  {"engine", args.str("engine")}, {"weights", engine.weights.name},
                                  {"kv", engine.kv.text},              {"chunk", engine.chunk},
                                  {"mla", to_string(engine.latent)}};
  return report_fidelity({"check", golden, model, baseline, options}, candidate, args);
}

}  // namespace

extern const CommandSpec kCheckCommand{
    "check",
    "run the engine on a golden's tokens and gate its taps",
    "Runs the engine (the CPU twin or CUDA) on the golden's tokens with the chosen weight and\n"
    "KV-cache storage, and judges its taps as `kvfid compare` does, against the baseline of the\n"
    "plain algorithm in FP32 with the same storage. The model's sha256 must be the golden's.",
    {{"model", "PATH", "the model the golden was made from", true},
     {"golden", "DIR", "golden folder (kvfid golden)", true},
     {"engine", "NAME", "twin (the bit-exact CPU twin) or cuda", true},
     {"weights", "FORMAT", "weight storage: f32, f16, bf16 or a block format such as q8_0 (default f32)"},
     {"kv", "POLICY", "KV-cache policy: a format (f32, f16, bf16, q8_0, ...) or e.g. k=q8_0+v=f16+hot=64 (default f32)"},
     {"chunk", "N", "prefill chunk size (default 0: the whole prompt at once)"},
     {"mla", "reconstruct|absorb",
      "latent attention's decode path (DeepSeek MLA models only): keys and values rebuilt from each cached row "
      "(default), or the up-projections absorbed into the query and output"},
     threads_option(),
     json_report_option(),
     junit_report_option()},
    run_check};

}  // namespace kvfid::cli
