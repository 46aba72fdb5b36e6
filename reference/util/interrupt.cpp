#include "reference/util/interrupt.h"

#include <atomic>
#include <csignal>
#include <exception>
#include <cstdlib>
#include <string>

namespace kvfid::ref {

namespace {

// Both are read in the handler: a lock-free atomic and a sig_atomic_t are safe there.
std::atomic<int> open_scopes{0};
volatile std::sig_atomic_t recorded = 0;
static_assert(std::atomic<int>::is_always_lock_free);

extern "C" void on_signal(int signal) {
  if (open_scopes.load() > 0) {
    if (recorded == 0) {
      recorded = signal;
      return;
    }
  }
  std::signal(signal, SIG_DFL);  // outside a scope, or a second signal: act now
  std::raise(signal);
}

std::string signal_name(int signal) { return signal == SIGINT ? "SIGINT" : signal == SIGTERM ? "SIGTERM" : std::to_string(signal); }

}  // namespace

Interrupted::Interrupted(int signal)
    : std::runtime_error("interrupted by " + signal_name(signal) + "; nothing was written"), signal_(signal) {}

void install_interrupt_handlers() {
  std::signal(SIGINT, on_signal);
  std::signal(SIGTERM, on_signal);
}

CleanupScope::CleanupScope() { open_scopes.fetch_add(1); }

// A signal recorded during a scope that then completed (its files landed) is acted on
// as the last scope closes; while an exception unwinds (Interrupted among them) the
// caller reports first.
CleanupScope::~CleanupScope() {
  if (open_scopes.fetch_sub(1) == 1 && recorded != 0 && std::uncaught_exceptions() == 0) die_of(recorded);
}

void throw_if_interrupted() {
  if (recorded != 0) throw Interrupted(recorded);
}

void die_of(int signal) {
  std::signal(signal, SIG_DFL);
  std::raise(signal);
  std::_Exit(128 + signal);  // a signal whose default is not to end the process
}

}  // namespace kvfid::ref
