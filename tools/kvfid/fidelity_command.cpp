#include "tools/kvfid/fidelity_command.h"

#include <filesystem>
#include <iostream>

#include <nlohmann/json.hpp>

#include "reference/calibration/kv_policy_fit.h"
#include "reference/io/atomic_file.h"
#include "reference/util/brief_text.h"
#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/metrics/fidelity_report.h"
#include "reference/metrics/report_json.h"
#include "reference/metrics/report_junit.h"
#include "reference/metrics/report_table.h"
#include "reference/mp/memory_estimate.h"
#include "reference/mp/mp_parallel.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace fs = std::filesystem;

OptionSpec json_report_option() { return {"json", "FILE", "also write the whole report as JSON"}; }
OptionSpec junit_report_option() { return {"junit", "FILE", "also write the report as JUnit XML (one testcase per tap and metric)"}; }

void check_report_paths(const ParsedArgs& args) {
  for (const char* flag : {"json", "junit"}) {
    if (!args.has(flag)) continue;
    const fs::path path = fs::path(args.str(flag)).lexically_normal();
    const fs::path parent = path.has_parent_path() ? path.parent_path() : fs::path(".");
    std::error_code ec;
    if (!fs::is_directory(parent, ec))
      throw InputError("--" + std::string(flag), "folder '" + parent.string() + "' does not exist");
    if (fs::is_directory(path, ec)) throw InputError("--" + std::string(flag), "'" + path.string() + "' is a folder");
  }
}

void check_golden_model(const Model& model, const std::string& model_path, const Golden& golden,
                        const std::string& golden_dir) {
  const std::string manifest = golden_dir + "/" + kGoldenManifestFile;
  const auto recorded = golden.manifest.find("model_sha256");
  if (recorded == golden.manifest.end() || !recorded->is_string())
    throw InputError(manifest, "has no model_sha256: cannot tell which model the golden was made from");
  if (model.sha256 != recorded->get<std::string>())
    throw InputError(model_path, "sha256 " + model.sha256 + " is not the golden's model (" + manifest +
                                     " records model_sha256 " + recorded->get<std::string>() + ")");
  // The sha256 covers the weights only: a config.json edited beside them (RoPE scaling,
  // theta, eps) is another model, which the baseline would share and the gate not see.
  const auto config = golden.manifest.find("config");
  if (config != golden.manifest.end()) {
    const nlohmann::json own = to_json(model.config);
    for (const auto& [key, value] : config->items())
      if (!own.contains(key) || own[key] != value)
        throw InputError(model_path, "its config differs from the golden's model (" + manifest + " records " + key +
                                         " = " + brief_text(value.dump(), 160) + ", the model has " +
                                         (own.contains(key) ? brief_text(own[key].dump(), 160) : std::string("none")) + ")");
    for (const auto& [key, value] : own.items())
      if (!config->contains(key))
        throw InputError(model_path, "its config differs from the golden's model (" + manifest + " records no " + key +
                                         ", the model has " + brief_text(value.dump(), 160) + ")");
  }
  validate_tokens(golden.tokens, model.config, manifest);
}

Model load_golden_model(const std::string& model_path, const Golden& golden, const std::string& golden_dir) {
  Model model = load_model(model_path);
  check_golden_model(model, model_path, golden, golden_dir);
  return model;
}

std::uint64_t baseline_bytes(const std::string& model_path, const Golden& golden) {
  const ForwardShape shape{load_model_config(model_path), int(golden.tokens.size()), golden_tap_selection(golden), true,
                           resolve_thread_count(0)};
  return emulated_bytes(shape);
}

TapSelection golden_tap_selection(const Golden& golden) {
  // Exactly the golden's taps: its names, which hold no glob characters, as a list.
  std::vector<std::string> names;
  for (const TapTensor& t : golden.taps)
    if (!t.name.empty()) names.push_back(t.name);  // read_golden guarantees logits, so never none
  return TapSelection::list(std::move(names));
}

namespace {

// The golden's taps in canonical order (logits, then layer by layer; read_taps gives them
// sorted by name, which puts layers.10 before layers.2), any others after.
TapSet in_canonical_order(const TapSet& taps, const ModelConfig& config, int tokens, const TapSelection& selection) {
  TapSet ordered;
  for (const TapSpec& spec : tap_specs(config, tokens, selection))
    if (const TapTensor* t = find_tap(taps, spec.name)) ordered.push_back(*t);
  for (const TapTensor& t : taps)
    if (!find_tap(ordered, t.name)) ordered.push_back(t);
  return ordered;
}

}  // namespace

int report_fidelity(const FidelityRun& run, const TapSet& candidate, const ParsedArgs& args) {
  const Emulation& e = run.baseline;
  std::cerr << "kvfid " << run.command << ": baseline: the plain algorithm with arithmetic " << to_string(e.arithmetic)
            << ", weights " << e.weights.name << ", KV " << e.kv.text << " over " << run.golden.tokens.size()
            << " tokens\n";
  const TapSelection selection = golden_tap_selection(run.golden);
  const TapSet baseline = emulated_forward(run.model, run.golden.tokens, e, selection);
  const TapSet golden = in_canonical_order(run.golden.taps, run.model.config, int(run.golden.tokens.size()), selection);
  const quant::KvPolicy policy = quant::resolve_kv_policy(e.kv, e.kv_scales, run.model.config);
  // k and v taps count ULPs in the cache's plain format when it has one, else in FP32.
  const FloatFormat kv_ulps = quant::uniform_plain_format(policy).value_or(FloatFormat::f32);
  const FidelityReport report = build_fidelity_report(golden, candidate, baseline, {kv_ulps, e.arithmetic, policy});

  std::cout << format_report_table(report);
  if (args.has("json")) {
    const nlohmann::json json =
        report_to_json(report, run.command, run.options, golden_manifest_summary(run.golden.manifest));
    write_file_atomic(args.str("json"), json.dump(2) + "\n");
  }
  if (args.has("junit")) write_file_atomic(args.str("junit"), report_to_junit(report, "kvfid." + run.command));
  return report.pass() ? kExitPass : kExitFidelityFailure;
}

}  // namespace kvfid::cli
