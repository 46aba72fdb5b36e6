#pragma once
// kvfid golden in steps, shared by the one-process run (cmd_golden.cpp) and the ranks of
// an MPI launch (golden_ranks.cpp): parse and load, compute, write.
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "reference/model/model.h"
#include "reference/mp/golden_forward.h"
#include "tools/kvfid/command.h"

namespace kvfid::cli {

struct GoldenJob {
  ref::GoldenOptions options;
  std::string model_path, out;
  std::vector<int> tokens;
  ref::Model model;
  std::string command;  // the command line in canonical form, for the manifest
};

// Parses the options, checks the tokens, the memory and (when `writes`: the process
// that will write) the output folder, and loads the model.
GoldenJob prepare_golden(const ParsedArgs& args, bool writes);
nlohmann::json golden_manifest(const GoldenJob& job, const ref::GoldenResult& golden);
// The opening line on stderr: the tokens and the estimated time (reference/mp/time_estimate.h)
// on `workers` threads in all (every rank's).
void report_plan(const GoldenJob& job, int workers);
// The closing line on stderr: values certified, precision, folder.
void report_written(const GoldenJob& job, const ref::GoldenResult& golden);

#ifdef KVFID_WITH_MPI
// The golden computed by the ranks of this MPI launch; rank 0 writes it. Returns the
// process's exit status (every rank returns the same, or the job is aborted).
int run_golden_ranks(const ParsedArgs& args);
#endif

}  // namespace kvfid::cli
