#pragma once
// Runs a program (usually the built kvfid) and captures what it printed and how it exited.
#include <cstdint>
#include <optional>
#include <string>
#include <vector>

namespace kvfid::test {

// The CLI's exit codes, as the README promises them: a test states the contract on its
// own rather than reading the CLI's constants.
inline constexpr int kExitPass = 0, kExitFail = 1, kExitBadInput = 2;

struct CliResult {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string out;     // stdout
  std::string err;     // stderr
};

// argv[0] is the program. Arguments are passed verbatim (no shell expansion).
CliResult run_command(const std::vector<std::string>& argv);
// kvfid_binary() with these arguments.
CliResult run_kvfid(const std::vector<std::string>& args);

// Runs argv (no shell: fork and exec; stdout discarded) and returns its exit code, its
// stderr and the peak resident set size of that child alone (wait4's rusage,
// ru_maxrss), in bytes. address_space_limit, when set, is the child's RLIMIT_AS.
struct MeasuredRun {
  int exit_code = -1;  // 128 + signal when killed by a signal
  std::string err;
  std::uint64_t peak_rss_bytes = 0;
};
MeasuredRun run_measured(const std::vector<std::string>& argv, std::optional<std::uint64_t> address_space_limit = {});

// run_measured in two steps, for a test that acts on the process while it runs (sends
// it a signal, say): start it, then wait for it.
struct StartedCommand {
  int pid = -1;
  std::string err_path;  // where its stderr goes
};
StartedCommand start_command(const std::vector<std::string>& argv, std::optional<std::uint64_t> address_space_limit = {});
MeasuredRun wait_command(const StartedCommand& started);

// The lines of `text` without their newlines; a final unterminated line counts too.
std::vector<std::string> split_lines(const std::string& text);

}  // namespace kvfid::test
