// kvfid compare: an engine's dumped taps against a golden, gated by the baseline.
#include <iostream>

#include "reference/formats/float_format.h"
#include "reference/golden/golden_io.h"
#include "reference/util/input_error.h"
#include "reference/model/weight_storage.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/fidelity_command.h"
#include "tools/kvfid/memory_check.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

std::string manifest_model_path(const Golden& golden, const std::string& golden_dir) {
  const auto path = golden.manifest.find("model");
  if (path == golden.manifest.end() || !path->is_string())
    throw InputError(golden_dir + "/" + kGoldenManifestFile, "names no model path (pass --model)");
  return path->get<std::string>();
}

int run_compare(const ParsedArgs& args) {
  const std::string golden_dir = args.str("golden");
  const std::string candidate_path = args.str("candidate");
  const Emulation baseline{float_format_from_string(args.str_or("arith", "f32"), "--arith"),
                           weight_format_from_string(args.str_or("weights", "f32"), "--weights"),
                           quant::parse_kv_policy_spec(args.str_or("kv", "f32"), "--kv")};
  check_report_paths(args);

  const Golden golden = read_golden(golden_dir);
  const TapSet candidate = read_taps(candidate_path);
  const std::string model_path = args.has("model") ? args.str("model") : manifest_model_path(golden, golden_dir);
  check_memory("kvfid compare", model_path, baseline_bytes(model_path, golden));
  std::cerr << "kvfid compare: loading " << model_path << '\n';
  const Model model = load_golden_model(model_path, golden, golden_dir);

  const nlohmann::json options = {{"golden", golden_dir},
                                  {"candidate", candidate_path},
                                  {"model", model_path},
                                  {"arith", to_string(baseline.arithmetic)},
                                  {"weights", baseline.weights.name},
                                  {"kv", baseline.kv.text}};
  return report_fidelity({"compare", golden, model, baseline, options}, candidate, args);
}

}  // namespace

extern const CommandSpec kCompareCommand{
    "compare",
    "judge an engine's dumped taps against a golden",
    "Reads a golden folder and a candidate safetensors file holding the same taps (any engine's\n"
    "dump), computes the baseline (the plain algorithm with every operation rounded to --arith,\n"
    "weights stored in --weights and the KV cache in --kv) on the golden's model and tokens, and\n"
    "gates each tap: the candidate's max abs error and sqrt(NMSE) may be at most 2x the baseline's\n"
    "and its logit KL at most 4x, each bound held above a floor of a few ULPs. Prints a table and\n"
    "one FAIL line per failure.",
    {{"golden", "DIR", "golden folder (kvfid golden)", true},
     {"candidate", "FILE", "the engine's taps, a .safetensors file (F32 or F64)", true},
     {"weights", "FORMAT", "weight storage of the baseline: f32, f16, bf16 or a block format such as q8_0 (default f32)"},
     {"kv", "POLICY", "KV-cache policy of the baseline: a format or e.g. k=q8_0+v=f16+hot=64 (default f32); k and v taps count ULPs in a plain one, else in f32"},
     {"arith", "FORMAT", "arithmetic of the baseline: f32, f16 or bf16 (default f32)"},
     {"model", "PATH", "the model (default: the path in the golden's manifest); its sha256 must match"},
     json_report_option(),
     junit_report_option()},
    run_compare};

}  // namespace kvfid::cli
