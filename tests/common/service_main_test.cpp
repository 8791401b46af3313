// run_service (common/service_main.hpp), the start every Sluice binary shares: it
// switches off Abseil's lock-order checks, which Debian's Abseil (built without
// NDEBUG) runs on every absl::Mutex, gRPC's mutexes included, and which by default
// abort the process when two locks are seen taken in both orders.
#include <absl/synchronization/mutex.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
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

// Container runtimes may start a process at a soft limit of 1024 open files under a far
// higher hard one; the reference's Node raises it, and so must every Sluice binary, or a
// gateway refuses clients past about a thousand (its connection limit follows the soft
// limit). Lowered here, then run_service must have raised it again before the body.
TEST(RunService, TheOpenFileLimitIsRaisedToTheHardLimitBeforeTheServiceStarts) {
  rlimit start{};
  ASSERT_EQ(::getrlimit(RLIMIT_NOFILE, &start), 0);
  const rlim_t lowered = std::min<rlim_t>(start.rlim_cur, 512) - 1;
  const rlim_t expected = start.rlim_max == RLIM_INFINITY ? rlim_t{1} << 20 : start.rlim_max;
  if (lowered >= expected) GTEST_SKIP() << "the hard limit leaves no room to lower the soft one";

  // In the child: 2 if the limit could not be lowered, 3 if the body saw it still low.
  auto lower_then_serve = [&] {
    setenv("SLUICE_ENV_DIR", "/dev/null", 1);
    rlimit low{lowered, start.rlim_max};
    if (::setrlimit(RLIMIT_NOFILE, &low) != 0) return 2;
    return run_service("sluice-test", [&](const Env&) {
      rlimit seen{};
      ::getrlimit(RLIMIT_NOFILE, &seen);
      // With no hard limit the kernel's fs.nr_open may stop it below 2^20.
      bool raised = start.rlim_max == RLIM_INFINITY ? seen.rlim_cur > lowered : seen.rlim_cur == expected;
      return raised ? 0 : 3;
    });
  };
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(_exit(lower_then_serve()), testing::ExitedWithCode(0), "");

  // And what it says it did, in this process (the limit put back after).
  rlimit low{lowered, start.rlim_max};
  ASSERT_EQ(::setrlimit(RLIMIT_NOFILE, &low), 0);
  uint64_t reported = raise_open_file_limit();
  rlimit now{};
  ::getrlimit(RLIMIT_NOFILE, &now);
  ::setrlimit(RLIMIT_NOFILE, &start);
  EXPECT_EQ(reported, now.rlim_cur);
  EXPECT_GT(now.rlim_cur, lowered);
}

}  // namespace
}  // namespace sluice
