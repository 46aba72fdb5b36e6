#include "tools/kvfid/commands.h"

namespace kvfid::cli {

extern const CommandSpec kGoldenCommand;

const std::vector<const CommandSpec*>& all_commands() {
  static const std::vector<const CommandSpec*> commands = {
      &kGoldenCommand,
  };
  return commands;
}

}  // namespace kvfid::cli
