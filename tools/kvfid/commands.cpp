#include "tools/kvfid/commands.h"

namespace kvfid::cli {

const std::vector<const CommandSpec*>& all_commands() {
  static const std::vector<const CommandSpec*> commands = {};
  return commands;
}

}  // namespace kvfid::cli
