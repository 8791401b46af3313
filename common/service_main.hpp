#pragma once
// The start every Sluice binary shares: Abseil's lock-order checks off (gRPC's mutexes
// are Abseil's; see service_main.cpp), the open-file limit raised as Node raises it
// (raise_open_file_limit below), termination signals blocked before any
// thread exists (so only the main thread waits for them), `.env` / `.env.production`
// loaded from SLUICE_ENV_DIR or the working directory without overriding set
// variables, logging configured from LOG_LEVEL / NODE_ENV, process metrics
// registered. Any exception from `body` (a ConfigError above all) becomes one line
// `<name>: <message>` on stderr and exit code 1.
#include <cstdint>
#include <functional>

#include "common/env.hpp"

namespace sluice {

int run_service(const char* name, const std::function<int(const Env& env)>& body);

// Raises this process's soft limit on open files (RLIMIT_NOFILE) to its hard limit, as
// Node does for the reference at start (docs/protocol.md#admission-limits): container
// runtimes often start processes at a soft 1024 under a far higher hard limit, and every
// client is a file. With no hard limit, the highest the kernel accepts up to 2^20.
// Returns the soft limit in force afterwards (0 if it cannot be read).
uint64_t raise_open_file_limit();

}  // namespace sluice
