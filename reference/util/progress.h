#pragma once
// Progress of a long computation on a terminal: a redrawn bar with an ETA when the
// stream is interactive, otherwise a plain line at most every few seconds (CI logs).
// Used from one thread.
#include <chrono>
#include <cstdint>
#include <iosfwd>
#include <string>

namespace kvfid::ref {

class Progress {
 public:
  // Plain lines are written at most once per `line_interval_seconds` (and at the end).
  Progress(std::string task, std::ostream& out, bool interactive, double line_interval_seconds = 5.0);
  // On std::cerr, interactive when stderr is a terminal.
  static Progress on_stderr(std::string task);

  void add_total(std::int64_t steps);      // more work is now expected (e.g. a retry)
  void set_stage(const std::string& stage);  // shown beside the count
  void advance(std::int64_t steps = 1);
  void finish();  // the final state on its own line; later calls do nothing

 private:
  using Clock = std::chrono::steady_clock;
  void report(bool force);
  std::string status_text() const;

  std::string task_;
  std::ostream& out_;
  bool interactive_;
  double line_interval_;
  std::string stage_;
  std::int64_t total_ = 0;
  std::int64_t done_ = 0;
  bool finished_ = false;
  Clock::time_point start_ = Clock::now();
  Clock::time_point last_line_ = start_;
  std::int64_t last_line_done_ = -1;  // done_ when the last plain line was written
};

}  // namespace kvfid::ref
