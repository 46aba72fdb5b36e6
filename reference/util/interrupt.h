#pragma once
// Ctrl-C and SIGTERM while temporaries are on disk. Outside a CleanupScope the signal
// ends the process at once, as it always did (nothing of ours is half-written then).
// Inside one (an atomic write staging its files: reference/io/atomic_file.h) the signal
// is only recorded; the write notices at its next piece of data, removes what it staged
// and throws Interrupted, and the CLI ends the process with that same signal.
#include <stdexcept>

namespace kvfid::ref {

class Interrupted : public std::runtime_error {
 public:
  explicit Interrupted(int signal);
  int signal() const { return signal_; }

 private:
  int signal_;
};

// Installs the SIGINT and SIGTERM handlers (once, by the program's main).
void install_interrupt_handlers();

// While one is alive, SIGINT and SIGTERM are recorded instead of acted on; a signal
// recorded by a scope that completes is acted on when the last scope closes.
class CleanupScope {
 public:
  CleanupScope();
  ~CleanupScope();
  CleanupScope(const CleanupScope&) = delete;
  CleanupScope& operator=(const CleanupScope&) = delete;
};

// Throws Interrupted when a signal was recorded.
void throw_if_interrupted();

// Ends the process by `signal`'s default action (after the caller cleaned up).
[[noreturn]] void die_of(int signal);

}  // namespace kvfid::ref
