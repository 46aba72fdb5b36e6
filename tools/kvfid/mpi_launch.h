#pragma once
// Whether this process is one rank of an MPI launch (mpirun/mpiexec), read from the
// launcher's environment before any MPI call: a plain `kvfid golden` never initializes
// MPI, and a build without MPI still recognizes a launch it cannot serve.
#include <optional>
#include <string>

#include "tools/kvfid/failure_line.h"

namespace kvfid::cli {

// The job's size as the launcher set it (OMPI_COMM_WORLD_SIZE, or PMI_SIZE for
// MPICH-style launchers); 0 when not launched by one.
int launched_ranks();
// This process's rank in the launch; 0 when not launched by one.
int launched_rank();
// True when this binary was built with MPI (CMake found it): `golden` can then share
// its work across the ranks.
bool built_with_mpi();

// A launch `command` cannot serve: every command but golden runs as one process, and
// golden needs a build with MPI. Empty when the command may run.
std::optional<FailureLine> refuse_launch(const std::string& command);

}  // namespace kvfid::cli
