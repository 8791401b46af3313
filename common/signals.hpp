#pragma once
// Blocks SIGINT, SIGTERM and SIGHUP in every thread and waits for them on the calling
// thread. Call block_termination_signals() first thing in main, before any thread starts.
#include <functional>

namespace sluice {

void block_termination_signals();
// Returns the terminating signal received. SIGHUP calls `on_hangup` (a reload,
// docs/hosting.md#tenants) and waits on; without one, SIGHUP terminates like SIGTERM.
// A process started with SIGHUP ignored (nohup) keeps ignoring it.
int wait_for_termination_signal(const std::function<void()>& on_hangup = {});

}  // namespace sluice
