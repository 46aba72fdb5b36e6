// kvfid: one binary, one subcommand per job. Exit 0 = pass, 1 = a fidelity check
// failed, 2 = bad input or usage.
#include <exception>
#include <iostream>
#include <new>
#include <string>
#include <vector>

#include "reference/util/input_error.h"
#include "reference/util/available_memory.h"
#include "tools/kvfid/commands.h"

using namespace kvfid::cli;

namespace {

void print_overview(std::ostream& out) {
  out << "usage: kvfid COMMAND [options]   (kvfid COMMAND --help for its options)\n\n"
      << "kvfid checks LLM inference engines against an exact MPFR reference.\n\ncommands:\n";
  for (const CommandSpec* c : all_commands())
    out << "  " << c->name << std::string(c->name.size() < 12 ? 12 - c->name.size() : 1, ' ') << c->summary << '\n';
}

// Control characters (a newline inside a message) would break the one-line rule.
std::string one_line(std::string text) {
  for (char& c : text)
    if (static_cast<unsigned char>(c) < 0x20) c = ' ';
  return text;
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
  // Whatever escapes a command ends as one line and exit 2, never an abort: messages are
  // flattened to one line, and running out of memory is named as such.
  const std::string prefix = "kvfid " + command->name + ": ";
  try {
    return command->run(parse_args(*command, rest));
  } catch (const UsageError& e) {
    std::cerr << prefix << one_line(e.what()) << " (see kvfid " << command->name << " --help)\n";
  } catch (const kvfid::ref::InputError& e) {
    std::cerr << prefix << one_line(e.what()) << '\n';
  } catch (const kvfid::ref::MemoryError& e) {
    std::cerr << one_line(e.what()) << '\n';
  } catch (const std::bad_alloc&) {
    std::cerr << prefix << "out of memory: the input needs more memory than this machine could allocate\n";
  } catch (const std::exception& e) {
    std::cerr << prefix << "internal error: " << one_line(e.what()) << '\n';
  }
  return kExitBadInput;
}
