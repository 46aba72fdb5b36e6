#include "tools/kvfid/commands.h"

namespace kvfid::cli {

extern const CommandSpec kRunCommand;

const std::vector<const CommandSpec*>& all_commands() {
  static const std::vector<const CommandSpec*> commands = {
      &kRunCommand,
  };
  return commands;
}

}  // namespace kvfid::cli
