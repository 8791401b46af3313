// run_service (common/service_main.hpp), the start every Sluice binary shares: it
// switches off Abseil's lock-order checks, which Debian's Abseil (built without
// NDEBUG) runs on every absl::Mutex, gRPC's locks included, and which by default
// abort the process when two locks are seen taken in both orders.
#include <absl/synchronization/mutex.h>
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/wait.h>
#include <unistd.h>

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

// Whether this process's Abseil, left as it starts, kills a process for that cycle.
bool abseil_aborts_on_a_lock_order_cycle() {
  pid_t child = fork();
  if (child == 0) {
    int null_fd = open("/dev/null", O_WRONLY);
    if (null_fd >= 0) dup2(null_fd, STDERR_FILENO);  // its report would only be noise here
    lock_in_both_orders();
    _exit(0);
  }
  int status = 0;
  if (child < 0 || waitpid(child, &status, 0) != child) return false;
  return WIFSIGNALED(status);
}

TEST(RunService, ALockOrderCycleInAServiceDoesNotAbortIt) {
  if (!abseil_aborts_on_a_lock_order_cycle()) {
    GTEST_SKIP() << "this Abseil does not abort on a lock-order cycle (built with NDEBUG), so there is nothing to switch off";
  }
  // In a child process: run_service changes process-wide state (signals, logging).
  // _exit, not exit: the child leaves without the leak check of the threads it
  // inherited half-copied.
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(_exit(run_service("sluice-test", [](const Env&) {
                lock_in_both_orders();
                return 7;
              })),
              testing::ExitedWithCode(7), "");
}

}  // namespace
}  // namespace sluice
