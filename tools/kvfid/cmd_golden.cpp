// kvfid golden: the certified MPFR forward of a model over a token list, written as a
// golden folder (golden.safetensors + manifest.json).
#include <algorithm>
#include <iomanip>
#include <iostream>
#include <sstream>
#include <string>

#include <nlohmann/json.hpp>

#include "reference/golden/golden_io.h"
#include "reference/io/atomic_file.h"
#include "reference/util/input_error.h"
#include "reference/io/load_model.h"
#include "reference/io/prompt.h"
#include "reference/mp/golden_forward.h"
#include "reference/mp/mp_parallel.h"
#include "reference/mp/time_estimate.h"
#include "reference/util/progress.h"
#include "tools/kvfid/command.h"
#include "tools/kvfid/golden_job.h"
#include "tools/kvfid/memory_check.h"
#include "tools/kvfid/mpi_launch.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

extern const CommandSpec kGoldenCommand;

namespace {

// The command line in a canonical form (options in the order --help lists them), for the
// manifest: enough to rerun the same computation.
std::string command_line(const ParsedArgs& args) {
  std::string line = "kvfid " + kGoldenCommand.name;
  for (const OptionSpec& o : kGoldenCommand.options) {
    if (!args.has(o.name)) continue;
    line += " --" + o.name;
    if (o.value_name.empty()) continue;
    const std::string value = args.str(o.name);
    line += value.find_first_of(" \t'\"") == std::string::npos ? " " + value : " '" + value + "'";
  }
  return line;
}

}  // namespace

GoldenJob prepare_golden(const ParsedArgs& args, bool writes) {
  if (args.has("tokens") == args.has("prompt")) throw UsageError("give exactly one of --tokens and --prompt");
  GoldenJob job;
  GoldenOptions& options = job.options;
  const long long bits = args.integer_or("bits", options.precision_bits);
  if (bits < 2 || bits > options.max_precision_bits)
    throw UsageError("--bits must be between 2 and " + std::to_string(options.max_precision_bits));
  const long long threads = args.integer_or("threads", 0);
  if (threads < 0) throw UsageError("--threads must be 0 (all cores) or positive");
  options.precision_bits = int(bits);
  options.threads = int(threads);
  options.taps = tap_selection_from_string(args.str_or("taps", "all"), "--taps");
  const std::string certify = args.str_or("certify", "enclosure");
  if (certify != "agreement" && certify != "enclosure") throw UsageError("--certify must be enclosure or agreement");
  options.method = certify == "agreement" ? CertificationMethod::agreement : CertificationMethod::enclosure;
  job.out = args.str("out");
  if (writes) check_output_folder(job.out);

  job.model_path = args.str("model");
  job.tokens = args.has("tokens") ? parse_token_list(args.str("tokens"), "--tokens") : read_prompt_file(args.str("prompt"));
  const ModelConfig config = load_model_config(job.model_path);
  validate_tokens(job.tokens, config, args.has("tokens") ? "--tokens" : args.str("prompt"));
  const ForwardShape shape{config, int(job.tokens.size()), options.taps, false, resolve_thread_count(options.threads)};
  check_memory("kvfid golden", job.model_path, golden_memory_bytes(shape, options));
  job.model = load_model(job.model_path);
  check_tap_selection(options.taps, config, "--taps");
  job.command = command_line(args);
  return job;
}

nlohmann::json golden_manifest(const GoldenJob& job, const GoldenResult& golden) {
  return {{"model", job.model_path},
          {"model_sha256", job.model.sha256},
          {"config", to_json(job.model.config)},
          {"tokens", job.tokens},
          {"taps", to_string(job.options.taps)},
          {"precision_bits", golden.certification.at("precision_bits")},
          {"certification", golden.certification},
          {"kvfid_version", KVFID_VERSION},
          {"command", job.command}};
}

void report_plan(const GoldenJob& job, int workers) {
  const GoldenWork work = golden_work(job.model.config, int(job.tokens.size()));
  auto duration = [](double seconds) {
    std::ostringstream s;
    s << std::fixed << std::setprecision(1);
    if (seconds < 120)
      s << seconds << " s";
    else
      s << seconds / 60 << " min";
    return s.str();
  };
  std::cerr << "kvfid golden: " << job.tokens.size() << " tokens, about " << duration(work.cpu_seconds)
            << " of CPU time, " << duration(work.cpu_seconds / std::max(workers, 1)) << " on " << workers
            << " threads (estimated from the shape at the measured MPFR rates)\n";
}

void report_written(const GoldenJob& job, const GoldenResult& golden) {
  std::cerr << "kvfid golden: " << golden.certification.at("values_certified") << " values certified at "
            << golden.certification.at("precision_bits") << " bits, written to " << job.out << '\n';
}

namespace {

int run_golden(const ParsedArgs& args) {
#ifdef KVFID_WITH_MPI
  if (launched_ranks() >= 1) return run_golden_ranks(args);
#endif
  GoldenJob job = prepare_golden(args, true);
  report_plan(job, resolve_thread_count(job.options.threads));
  Progress progress = Progress::on_stderr("kvfid golden");
  job.options.progress = &progress;
  GoldenResult golden;
  try {
    golden = compute_golden(job.model, job.tokens, job.options);
  } catch (const CertificationError& e) {
    progress.finish();
    std::cerr << "kvfid golden: " << e.what() << '\n';
    return kExitFidelityFailure;
  }
  write_golden(job.out, golden.taps, golden_manifest(job, golden));
  report_written(job, golden);
  return kExitPass;
}

}  // namespace

extern const CommandSpec kGoldenCommand = {
    "golden",
    "certified reference logits and taps for a token list (MPFR)",
    "Runs the model's forward pass in MPFR over the given tokens and proves every output value "
    "rounds correctly to float64, checked with mpfr_can_round against an error bound (--certify: a proven "
    "enclosure, or two runs' agreement); the precision grows until all pass (an enclosure extrapolates what "
    "its failed attempt lost over the layers it ran, and computes each later layer at the fewest limbs its "
    "radii leave worth computing; agreement doubles it); exit 1 past 1024 bits. The golden's bytes "
    "do not depend on the method. "
    "Writes DIR/golden.safetensors (F64 taps) and DIR/manifest.json. Uses every core by default; "
    "the result does not depend on the thread count. Under mpirun (a build with OpenMPI), the ranks share "
    "the work and rank 0 writes a golden byte-identical to one process's: e.g. mpirun -np 4 --hostfile "
    "HOSTS kvfid golden ... with the model at the same path on every host (README: Goldens past one machine).",
    {{"model", "PATH", kModelPathHelp, true},
     {"tokens", "IDS", "comma-separated token ids, e.g. 1,2,3"},
     {"prompt", "FILE", "file of token ids (commas, spaces or newlines; # comments)"},
     {"out", "DIR", "golden folder to write (created if missing)", true},
     {"bits", "N", "working precision of the first attempt (default 128)"},
     {"certify", "enclosure|agreement",
      "how each value is shown to round correctly: enclosure (default) carries a proven radius with every value "
      "(ball arithmetic), a proof in one pass, whose worst-case radii need more precision on deep models; "
      "agreement, a cross-check, reruns at +64 bits and bounds the error by the runs' difference (MPFR's test "
      "idiom, not a proof)"},
     {"taps", "all|logits|LIST",
      "which taps to record (default all); LIST: comma-separated tap names or globs, e.g. "
      "logits,layers.0.*,layers.23.* (logits are always recorded; a pattern matching no tap is an error)"},
     {"threads", "N", "threads to use, 0 = all cores (default 0)"}},
    run_golden,
};

}  // namespace kvfid::cli
