#include "reference/util/progress.h"

#include <cmath>
#include <iostream>
#include <sstream>
#include <unistd.h>

namespace kvfid::ref {

namespace {

constexpr int kBarWidth = 30;

std::string format_seconds(double s) {
  const long total = std::lround(s);
  std::ostringstream o;
  if (total >= 3600) o << total / 3600 << "h" << (total % 3600) / 60 << "m";
  else if (total >= 60) o << total / 60 << "m" << total % 60 << "s";
  else o << total << "s";
  return o.str();
}

}  // namespace

Progress::Progress(std::string task, std::ostream& out, bool interactive, double line_interval_seconds)
    : task_(std::move(task)), out_(out), interactive_(interactive), line_interval_(line_interval_seconds) {}

Progress Progress::on_stderr(std::string task) { return Progress(std::move(task), std::cerr, ::isatty(2) == 1); }

void Progress::add_total(std::int64_t steps) { total_ += steps; }

void Progress::set_stage(const std::string& stage) { stage_ = stage; }

void Progress::advance(std::int64_t steps) {
  done_ += steps;
  report(false);
}

void Progress::finish() {
  if (finished_) return;
  report(true);
  if (interactive_) out_ << '\n';
  out_.flush();
  finished_ = true;
}

std::string Progress::status_text() const {
  std::ostringstream o;
  const double elapsed = std::chrono::duration<double>(Clock::now() - start_).count();
  const double fraction = total_ > 0 ? std::min(1.0, double(done_) / double(total_)) : 0.0;
  o << task_;
  if (!stage_.empty()) o << " (" << stage_ << ")";
  if (interactive_) {
    const int filled = int(fraction * kBarWidth);
    o << " [" << std::string(filled, '#') << std::string(kBarWidth - filled, ' ') << "]";
  }
  o << ' ' << done_ << '/' << total_ << " (" << std::lround(100 * fraction) << "%), " << format_seconds(elapsed)
    << " elapsed";
  if (done_ > 0 && done_ < total_) o << ", ETA " << format_seconds(elapsed / done_ * double(total_ - done_));
  return o.str();
}

void Progress::report(bool force) {
  if (finished_) return;
  if (interactive_) {
    // \33[K clears what a longer previous line left behind.
    out_ << '\r' << status_text() << "\33[K" << std::flush;
    return;
  }
  const auto now = Clock::now();
  if (force && done_ == last_line_done_) return;  // the final state is already on screen
  if (!force && std::chrono::duration<double>(now - last_line_).count() < line_interval_) return;
  last_line_ = now;
  last_line_done_ = done_;
  out_ << status_text() << '\n' << std::flush;
}

}  // namespace kvfid::ref
