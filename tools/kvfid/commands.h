#pragma once
// The subcommands, in the order `kvfid --help` lists them. Each lives in cmd_NAME.cpp.
#include "tools/kvfid/command.h"

namespace kvfid::cli {

const std::vector<const CommandSpec*>& all_commands();

}  // namespace kvfid::cli
