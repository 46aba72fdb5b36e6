#pragma once
// Runs a program (usually the built kvfid) and captures what it printed and how it exited.
#include <string>
#include <vector>

namespace kvfid::test {

struct CliResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// argv[0] is the program. Arguments are passed verbatim (no shell expansion).
CliResult run_command(const std::vector<std::string>& argv);
// kvfid_binary() with these arguments.
CliResult run_kvfid(const std::vector<std::string>& args);

// The lines of `text` without their newlines; a final unterminated line counts too.
std::vector<std::string> split_lines(const std::string& text);

}  // namespace kvfid::test
