#include "tools/kvfid/mpi_launch.h"

#include <cstdlib>

#include "tools/kvfid/command.h"

namespace kvfid::cli {

namespace {

// A launcher variable as a count; anything but a plain non-negative number is ignored.
int env_count(const char* open_mpi, const char* pmi) {
  for (const char* name : {open_mpi, pmi}) {
    const char* value = std::getenv(name);
    if (!value || !*value) continue;
    char* end = nullptr;
    const long n = std::strtol(value, &end, 10);
    if (*end == '\0' && n >= 0 && n < (1L << 24)) return int(n);
  }
  return -1;
}

}  // namespace

int launched_ranks() {
  const int n = env_count("OMPI_COMM_WORLD_SIZE", "PMI_SIZE");
  return n < 0 ? 0 : n;
}

int launched_rank() {
  const int r = env_count("OMPI_COMM_WORLD_RANK", "PMI_RANK");
  return r < 0 ? 0 : r;
}

bool built_with_mpi() {
#ifdef KVFID_WITH_MPI
  return true;
#else
  return false;
#endif
}

std::optional<FailureLine> refuse_launch(const std::string& command) {
  const int ranks = launched_ranks();
  if (ranks <= 1) return std::nullopt;
  const std::string prefix = "kvfid " + command + ": ";
  if (command != "golden")
    return FailureLine{prefix + "runs as one process; of kvfid's commands only golden shares its work across the " +
                           std::to_string(ranks) + " ranks of an MPI launch",
                       kExitBadInput};
  if (!built_with_mpi())
    return FailureLine{prefix + "this kvfid was built without MPI, so its " + std::to_string(ranks) +
                           " ranks would each compute the whole golden: run it as one process, or rebuild with "
                           "libopenmpi-dev installed",
                       kExitBadInput};
  return std::nullopt;
}

}  // namespace kvfid::cli
