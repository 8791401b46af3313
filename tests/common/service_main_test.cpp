// run_service (common/service_main.hpp), the start every Sluice binary shares: it
// switches off Abseil's lock-order checks, which Debian's Abseil (built without
// NDEBUG) runs on every absl::Mutex, gRPC's mutexes included, and which by default
// abort the process when two locks are seen taken in both orders.
#include <absl/synchronization/mutex.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

#include <csignal>
#include <cstdlib>

#include "common/service_main.hpp"

namespace sluice {
namespace {

// Takes two locks in one order, then in the other: no deadlock (one thread), but a
// lock-order cycle to Abseil's checks.
void lock_in_both_orders() {
  absl::Mutex first;
  absl::Mutex second;
  {
    absl::MutexLock a(&first);
    absl::MutexLock b(&second);
  }
  {
    absl::MutexLock b(&second);
    absl::MutexLock a(&first);
  }
}

TEST(RunService, ALockOrderCycleInAServiceDoesNotAbortIt) {
  // Each statement runs in a fresh process (the binary run again, not a fork of this
  // threaded one). _exit: the statement ends with its own status, without static
  // destructors or the leak check running while gRPC's threads are alive.
  GTEST_FLAG_SET(death_test_style, "threadsafe");

  // Whether this Abseil, left as it starts, kills a process for the cycle.
  bool abseil_aborts = false;
  EXPECT_EXIT(
      {
        lock_in_both_orders();
        _exit(0);
      },
      [&abseil_aborts](int status) {
        abseil_aborts = WIFSIGNALED(status) && WTERMSIG(status) == SIGABRT;
        return true;
      },
      "");

  EXPECT_EXIT(
      {
        setenv("SLUICE_ENV_DIR", "/dev/null", 1);  // no stray .env in the working directory
        _exit(run_service("sluice-test", [](const Env&) {
          lock_in_both_orders();
          return 7;
        }));
      },
      testing::ExitedWithCode(7), "");

  if (!abseil_aborts) {
    GTEST_SKIP() << "this Abseil does not abort on a lock-order cycle (built with NDEBUG): the check above shows nothing";
  }
}

}  // namespace
}  // namespace sluice
