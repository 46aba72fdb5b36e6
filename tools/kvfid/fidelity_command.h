#pragma once
// What `kvfid compare` and `kvfid check` share: loading the golden's model and checking
// it is the one the golden was made from, the baseline, the report on stdout and in
// --json/--junit, and the exit status.
#include <cstdint>
#include <string>

#include <nlohmann/json.hpp>

#include "reference/golden/golden_io.h"
#include "reference/model/model.h"
#include "reference/native/emulated_forward.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

// The report options both commands accept.
OptionSpec json_report_option();
OptionSpec junit_report_option();

// Throws InputError naming the flag when --json or --junit points into a folder that
// does not exist: found before a long computation, not after it.
void check_report_paths(const ParsedArgs& args);

// Checks that the loaded `model` (read from `model_path`) has the manifest's
// "model_sha256" and that the manifest's tokens fit it; InputError otherwise.
void check_golden_model(const Model& model, const std::string& model_path, const Golden& golden,
                        const std::string& golden_dir);
// Loads `model_path` and checks it as check_golden_model does.
Model load_golden_model(const std::string& model_path, const Golden& golden, const std::string& golden_dir);
// Working memory of the plain-algorithm baseline over the golden's tokens and taps
// (report_fidelity runs it), for the memory check made before the model is loaded.
std::uint64_t baseline_bytes(const std::string& model_path, const Golden& golden);

// The taps the golden holds, as a selection for the forward passes.
TapSelection golden_tap_selection(const Golden& golden);

struct FidelityRun {
  std::string command;     // "compare" or "check"
  const Golden& golden;
  const Model& model;
  Emulation baseline;      // the plain algorithm at the candidate's precision
  nlohmann::json options;  // what was asked, recorded in the JSON report
};

// Computes the baseline, judges `candidate` against the golden, prints the table, writes
// --json and --junit (each atomically) and returns kExitPass or kExitFidelityFailure.
int report_fidelity(const FidelityRun& run, const TapSet& candidate, const ParsedArgs& args);

}  // namespace kvfid::cli
