#pragma once
// What a command that threw tells its user: one line and exit 2, never an abort.
// Messages are flattened to one line, and running out of memory is named as such.
// main() uses it for every command; the ranks of a distributed golden use it too, so a
// rank's failure reads like the same failure in one process.
#include <exception>
#include <string>

namespace kvfid::cli {

struct FailureLine {
  std::string text;  // without a trailing newline; empty: no failure
  int exit_code = 2;
};

// `command`: the subcommand's name; `error`: what it threw.
FailureLine failure_line(const std::string& command, std::exception_ptr error);

// Control characters (a newline inside a message) would break the one-line rule.
std::string one_line(std::string text);

}  // namespace kvfid::cli
