#include "tools/kvfid/commands.h"

namespace kvfid::cli {

extern const CommandSpec kInfoCommand;
extern const CommandSpec kFixtureCommand;
extern const CommandSpec kConvertCommand;
extern const CommandSpec kGoldenCommand;
extern const CommandSpec kRunCommand;
extern const CommandSpec kCheckCommand;
extern const CommandSpec kCompareCommand;
extern const CommandSpec kBitwiseCommand;
extern const CommandSpec kQuantizeCommand;
extern const CommandSpec kQuantCommand;
extern const CommandSpec kDriftCommand;
extern const CommandSpec kOpCommand;
extern const CommandSpec kEvictCommand;

const std::vector<const CommandSpec*>& all_commands() {
  static const std::vector<const CommandSpec*> commands = {
      &kInfoCommand, &kFixtureCommand, &kConvertCommand, &kGoldenCommand,
      &kRunCommand,  &kCheckCommand,   &kCompareCommand, &kBitwiseCommand,
      &kQuantizeCommand,
      &kQuantCommand,
      &kDriftCommand,
      &kOpCommand,
      &kEvictCommand,
  };
  return commands;
}

}  // namespace kvfid::cli
