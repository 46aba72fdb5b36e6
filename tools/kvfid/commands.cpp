#include "tools/kvfid/commands.h"

namespace kvfid::cli {

extern const CommandSpec kInfoCommand;
extern const CommandSpec kConvertCommand;

const std::vector<const CommandSpec*>& all_commands() {
  static const std::vector<const CommandSpec*> commands = {
      &kInfoCommand,
      &kConvertCommand,
  };
  return commands;
}

}  // namespace kvfid::cli
