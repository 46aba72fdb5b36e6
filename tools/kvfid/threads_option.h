#pragma once
// --threads N, shared by the commands that run the engine: how many host threads the
// CPU twin uses (EngineOptions::threads). The bits never depend on it.
#include "tools/kvfid/command.h"

namespace kvfid::cli {

// Most threads --threads accepts: far more than any host has cores, and small enough
// that a typo cannot ask the system for millions of threads.
inline constexpr long long kMaxThreads = 1024;

OptionSpec threads_option();

// The --threads value, or 0 (one per hardware thread) when absent; InputError naming
// --threads outside [1, kMaxThreads].
int threads_from_args(const ParsedArgs& args);

}  // namespace kvfid::cli
