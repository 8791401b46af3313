#include "common/service_main.hpp"

#include <absl/synchronization/mutex.h>

#include <cstdio>
#include <cstdlib>
#include <exception>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/signals.hpp"

namespace sluice {

int run_service(const char* name, const std::function<int(const Env& env)>& body) {
  try {
    // Debian builds Abseil without NDEBUG, so every absl::Mutex (gRPC's mutexes among them)
    // keeps a graph of the order locks are taken in, and by default aborts the process
    // when it sees two taken in both orders. That is a debugging aid: it costs CPU on
    // every lock, and would turn a report into a crash of a server with thousands of
    // clients (docs/benchmarks.md#abseils-lock-order-checks-switched-off-2026-12-05).
    absl::SetMutexDeadlockDetectionMode(absl::OnDeadlockCycle::kIgnore);
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
