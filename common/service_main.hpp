#pragma once
// The start every Sluice binary shares: Abseil's lock-order checks off (gRPC's mutexes
// are Abseil's; see service_main.cpp), termination signals blocked before any
// thread exists (so only the main thread waits for them), `.env` / `.env.production`
// loaded from SLUICE_ENV_DIR or the working directory without overriding set
// variables, logging configured from LOG_LEVEL / NODE_ENV, process metrics
// registered. Any exception from `body` (a ConfigError above all) becomes one line
// `<name>: <message>` on stderr and exit code 1.
#include <functional>

#include "common/env.hpp"

namespace sluice {

int run_service(const char* name, const std::function<int(const Env& env)>& body);

}  // namespace sluice
