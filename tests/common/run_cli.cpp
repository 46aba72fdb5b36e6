#include "tests/common/run_cli.h"

#include <atomic>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <stdexcept>

#include <fcntl.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include "tests/common/test_env.h"

namespace kvfid::test {

namespace {
namespace fs = std::filesystem;

// POSIX shell single quoting: only ' itself needs care.
std::string quote(const std::string& s) {
  std::string out = "'";
  for (char c : s) out += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return out + "'";
}

std::string slurp(const fs::path& p) {
  std::ifstream in(p, std::ios::binary);
  std::ostringstream s;
  s << in.rdbuf();
  return s.str();
}

}  // namespace

CliResult run_command(const std::vector<std::string>& argv) {
  static std::atomic<int> counter{0};
  const fs::path dir = fs::temp_directory_path() / ("kvfid-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  const std::string tag = std::to_string(counter++);
  const fs::path out = dir / (tag + ".out"), err = dir / (tag + ".err");
  std::string command;
  for (const auto& a : argv) command += quote(a) + " ";
  command += "</dev/null >" + quote(out.string()) + " 2>" + quote(err.string());
  const int status = std::system(command.c_str());
  if (status == -1) throw std::runtime_error("cannot run: " + command);
  CliResult r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.out = slurp(out);
  r.err = slurp(err);
  fs::remove(out);
  fs::remove(err);
  return r;
}

StartedCommand start_command(const std::vector<std::string>& argv, std::optional<std::uint64_t> address_space_limit) {
  static std::atomic<int> counter{0};
  const fs::path dir = fs::temp_directory_path() / ("kvfid-cli-" + std::to_string(::getpid()));
  fs::create_directories(dir);
  StartedCommand started;
  started.err_path = (dir / ("started" + std::to_string(counter++) + ".err")).string();
  std::vector<char*> args;
  for (const std::string& a : argv) args.push_back(const_cast<char*>(a.c_str()));
  args.push_back(nullptr);
  started.pid = ::fork();
  if (started.pid < 0) throw std::runtime_error("fork failed");
  if (started.pid == 0) {
    const int null = ::open("/dev/null", O_RDWR);
    const int err_fd = ::open(started.err_path.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
    ::dup2(null, 0), ::dup2(null, 1), ::dup2(err_fd, 2);
    if (address_space_limit) {
      const rlimit limit{rlim_t(*address_space_limit), rlim_t(*address_space_limit)};
      ::setrlimit(RLIMIT_AS, &limit);
    }
    ::execv(args[0], args.data());
    ::_exit(127);
  }
  return started;
}

MeasuredRun wait_command(const StartedCommand& started) {
  int status = 0;
  rusage usage{};
  if (::wait4(started.pid, &status, 0, &usage) != started.pid) throw std::runtime_error("wait4 failed");
  MeasuredRun r;
  r.exit_code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  r.err = slurp(started.err_path);
  fs::remove(started.err_path);
  r.peak_rss_bytes = std::uint64_t(usage.ru_maxrss) * 1024;  // Linux reports KiB
  return r;
}

MeasuredRun run_measured(const std::vector<std::string>& argv, std::optional<std::uint64_t> address_space_limit) {
  return wait_command(start_command(argv, address_space_limit));
}

CliResult run_kvfid(const std::vector<std::string>& args) {
  std::vector<std::string> argv = {kvfid_binary()};
  argv.insert(argv.end(), args.begin(), args.end());
  return run_command(argv);
}

std::vector<std::string> split_lines(const std::string& text) {
  std::vector<std::string> lines;
  std::istringstream in(text);
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

}  // namespace kvfid::test
