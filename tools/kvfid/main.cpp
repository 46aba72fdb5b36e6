// kvfid: one binary, one subcommand per job. Exit 0 = pass, 1 = a fidelity check
// failed, 2 = bad input or usage.
#include <exception>
#include <iostream>
#include <optional>
#include <string>
#include <vector>

#include "reference/util/interrupt.h"
#include "tools/kvfid/commands.h"
#include "tools/kvfid/failure_line.h"
#include "tools/kvfid/mpi_launch.h"

using namespace kvfid::cli;

namespace {

void print_overview(std::ostream& out) {
  out << "usage: kvfid COMMAND [options]   (kvfid COMMAND --help for its options)\n\n"
      << "kvfid checks LLM inference engines against an exact MPFR reference.\n\ncommands:\n";
  for (const CommandSpec* c : all_commands())
    out << "  " << c->name << std::string(c->name.size() < 12 ? 12 - c->name.size() : 1, ' ') << c->summary << '\n';
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<std::string> args(argv + 1, argv + argc);
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    print_overview(args.empty() ? std::cerr : std::cout);
    return args.empty() ? kExitBadInput : kExitPass;
  }
  const CommandSpec* command = nullptr;
  for (const CommandSpec* c : all_commands())
    if (c->name == args[0]) command = c;
  if (!command) {
    std::cerr << "kvfid: unknown command '" << args[0] << "' (kvfid --help lists them)\n";
    return kExitBadInput;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  for (const auto& a : rest)
    if (a == "--help" || a == "-h") {
      std::cout << help_text(*command);
      return kExitPass;
    }
  if (const std::optional<FailureLine> refused = refuse_launch(command->name)) {
    if (launched_rank() == 0) std::cerr << refused->text << '\n';
    return refused->exit_code;
  }
  kvfid::ref::install_interrupt_handlers();
  try {
    return command->run(parse_args(*command, rest));
  } catch (const kvfid::ref::Interrupted& e) {
    std::cerr << "kvfid " << command->name << ": " << e.what() << '\n';
    kvfid::ref::die_of(e.signal());
  } catch (...) {
    const FailureLine failure = failure_line(command->name, std::current_exception());
    std::cerr << failure.text << '\n';
    return failure.exit_code;
  }
}
