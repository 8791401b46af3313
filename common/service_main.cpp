#include "common/service_main.hpp"

#include <absl/synchronization/mutex.h>
#include <sys/resource.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/signals.hpp"

namespace sluice {

uint64_t raise_open_file_limit() {
  rlimit limit{};
  if (::getrlimit(RLIMIT_NOFILE, &limit) != 0) return 0;
  if (limit.rlim_cur == limit.rlim_max) return limit.rlim_cur;
  if (limit.rlim_max != RLIM_INFINITY) {
    rlimit raised{limit.rlim_max, limit.rlim_max};
    return ::setrlimit(RLIMIT_NOFILE, &raised) == 0 ? raised.rlim_cur : limit.rlim_cur;
  }
  // No hard limit: the kernel still refuses more than fs.nr_open. Search for the
  // highest soft limit it takes, up to 2^20 (Node's ceiling).
  rlim_t taken = limit.rlim_cur;
  rlim_t refused = (rlim_t{1} << 20) + 1;
  while (taken + 1 < refused) {
    rlimit attempt{taken + (refused - taken) / 2, RLIM_INFINITY};
    if (::setrlimit(RLIMIT_NOFILE, &attempt) == 0) taken = attempt.rlim_cur;
    else refused = attempt.rlim_cur;
  }
  return taken;
}

int run_service(const char* name, const std::function<int(const Env& env)>& body) {
  try {
    // Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC's mutexes among them)
    // keeps a graph of the order locks are taken in, and by default aborts the process
    // when it sees two taken in both orders. That is a debugging aid: it costs CPU on
    // every lock, and would turn a report into a crash of a server with thousands of
    // clients (docs/benchmarks.md#abseils-lock-order-checks-switched-off-2026-12-05).
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
    raise_open_file_limit();
    block_termination_signals();
    const char* env_dir = std::getenv("SLUICE_ENV_DIR");
    std::string dotenv = load_dotenv_into_process(env_dir ? env_dir : "");
    Env env = Env::from_process();
    log::configure(name, env.get_or("LOG_LEVEL", ""), env.non_empty("NODE_ENV").value_or("development"));
    if (!dotenv.empty()) log::info("loaded environment file", {{"path", dotenv}});
    metrics::register_process_metrics(metrics::Registry::global());
    return body(env);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "%s: %s\n", name, e.what());
    return 1;
  }
}

}  // namespace sluice
