#include "tools/kvfid/commands.h"

namespace kvfid::cli {

extern const CommandSpec kFixtureCommand;

const std::vector<const CommandSpec*>& all_commands() {
  static const std::vector<const CommandSpec*> commands = {
      &kFixtureCommand,
  };
  return commands;
}

}  // namespace kvfid::cli
