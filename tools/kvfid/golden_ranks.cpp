// kvfid golden under mpirun: every rank loads the model (mapped: a rank reads the weight
// rows it computes with), computes its share of every projection and attention, and
// receives the rest (reference/mp/shards.h); rank 0 writes the golden, which is byte for
// byte the one-process golden (tests/tools/mpi/).
//
// Failures: one the ranks meet alike (bad tokens, a missing model on every host) is
// agreed on and printed once by rank 0, exit 2 from every rank. One a rank meets alone
// (its copy of the model unreadable, out of memory) is printed by that rank, naming it,
// and ends the whole job (MPI_Abort, exit 2) so no rank waits forever. Only rank 0
// writes, and only after every value is certified (write_golden is atomic).
#include <exception>
#include <iostream>
#include <optional>
#include <string>

#include "reference/dist/mpi_world.h"
#include "reference/golden/golden_io.h"
#include "reference/mp/mp_parallel.h"
#include "reference/util/progress.h"
#include "tools/kvfid/failure_line.h"
#include "tools/kvfid/golden_job.h"

namespace kvfid::cli {
using namespace kvfid::ref;  // the specification's names: the layer below

namespace {

const char* const kLayout =
    "tensor parallel: each projection's output rows and each attention (head, position) item split into one "
    "contiguous block per rank, the blocks exchanged bit for bit; every other operation replicated";

// "kvfid golden: X" said by rank r of n: "kvfid golden: rank r of n: X".
std::string from_rank(const std::string& line, int rank, int ranks) {
  const std::string prefix = "kvfid golden: ";
  const std::string where = "rank " + std::to_string(rank) + " of " + std::to_string(ranks) + ": ";
  return line.rfind(prefix, 0) == 0 ? prefix + where + line.substr(prefix.size()) : prefix + where + line;
}

// What makes two ranks' goldens the same computation: the model's bytes, the tokens and
// every option that changes a value (the output folder and the model's path do not).
std::string fingerprint(const GoldenJob& job) {
  const GoldenOptions& o = job.options;
  return std::string(certification_method_name(o.method)) + "|sha256 " + job.model.sha256 + "|" + nlohmann::json(job.tokens).dump() + "|" + to_string(o.taps) + "|" +
         std::to_string(o.precision_bits) + "|" + std::to_string(o.guard_bits) + "|" + std::to_string(o.max_precision_bits);
}

}  // namespace

int run_golden_ranks(const ParsedArgs& args) {
  MpiWorld world;
  const bool root = world.rank() == 0;

  // A step every rank takes: when some rank failed it, the lowest such rank speaks for
  // all; when that is not rank 0, rank 0 got past the step, so the failure is that
  // rank's own and the line names it. Returns the exit status, or nothing to go on.
  auto agree = [&](const FailureLine& mine) -> std::optional<int> {
    const int failed = world.first_failure(!mine.text.empty());
    if (failed < 0) return std::nullopt;
    const std::string said = world.broadcast(std::to_string(mine.exit_code) + mine.text, failed);
    if (root) std::cerr << (failed == 0 ? said.substr(1) : from_rank(said.substr(1), failed, world.ranks())) << '\n';
    return said[0] - '0';
  };

  std::optional<GoldenJob> job;
  FailureLine failure;
  try {
    job.emplace(prepare_golden(args, root));
  } catch (...) {
    failure = failure_line("golden", std::current_exception());
  }
  if (const std::optional<int> code = agree(failure)) return *code;

  // Every rank must compute the same golden from the same model, though its path may
  // differ from host to host: a stale copy on one host would mix two models.
  const std::string mine = fingerprint(*job), root_print = world.broadcast(mine, 0);
  if (mine != root_print)
    failure = {"kvfid golden: its model (sha256 " + job->model.sha256 + ") or its tokens and options differ from rank 0's (" +
                   root_print.substr(0, root_print.find('|')) + "): every rank must compute the same golden",
               kExitBadInput};
  if (const std::optional<int> code = agree(failure)) return *code;

  std::optional<Progress> progress;
  if (root) {
    report_plan(*job, resolve_thread_count(job->options.threads) * world.ranks());
    progress.emplace(Progress::on_stderr("kvfid golden"));
  }
  job->options.progress = root ? &*progress : nullptr;
  job->options.shards = &world;
  GoldenResult golden;
  try {
    golden = compute_golden(job->model, job->tokens, job->options);
  } catch (const CertificationError& e) {
    // Every rank computed the same values, so every rank fails alike.
    if (root) {
      progress->finish();
      std::cerr << "kvfid golden: " << e.what() << '\n';
    }
    return kExitFidelityFailure;
  } catch (...) {
    const FailureLine own = failure_line("golden", std::current_exception());
    std::cerr << from_rank(own.text, world.rank(), world.ranks()) << std::endl;
    world.abort(own.exit_code);
  }
  if (!root) return kExitPass;
  nlohmann::json manifest = golden_manifest(*job, golden);
  manifest["distribution"] = {{"ranks", world.ranks()}, {"layout", kLayout}};
  write_golden(job->out, golden.taps, manifest);
  report_written(*job, golden);
  return kExitPass;
}

}  // namespace kvfid::cli
