#include "tools/kvfid/commands.h"

namespace kvfid::cli {

extern const CommandSpec kCompareCommand;
extern const CommandSpec kCheckCommand;

const std::vector<const CommandSpec*>& all_commands() {
  static const std::vector<const CommandSpec*> commands = {
      &kCompareCommand,
      &kCheckCommand,
  };
  return commands;
}

}  // namespace kvfid::cli
