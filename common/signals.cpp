#include "common/signals.hpp"

#include <pthread.h>
#include <signal.h>

namespace sluice {
namespace {
// A process started with SIGHUP ignored (nohup) keeps ignoring it.
bool hangup_ignored = false;

sigset_t termination_set() {
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  if (!hangup_ignored) sigaddset(&set, SIGHUP);
  return set;
}
}  // namespace

void block_termination_signals() {
  struct sigaction hangup {};
  sigaction(SIGHUP, nullptr, &hangup);
  hangup_ignored = hangup.sa_handler == SIG_IGN;
  sigset_t set = termination_set();
  pthread_sigmask(SIG_BLOCK, &set, nullptr);
  // A client that goes away mid-write must not kill the process.
  signal(SIGPIPE, SIG_IGN);
}

int wait_for_termination_signal(const std::function<void()>& on_hangup) {
  sigset_t set = termination_set();
  for (;;) {
    int sig = 0;
    sigwait(&set, &sig);
    if (sig != SIGHUP || !on_hangup) return sig;
    on_hangup();
  }
}

}  // namespace sluice
