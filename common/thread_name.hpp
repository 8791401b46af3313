#pragma once
// Names the calling thread as `top -H`, `perf report --sort comm` and gdb show it.
// Linux keeps 15 bytes; longer names are cut there. Without a name a thread shows
// the name of the thread that started it, so that a profile once put a gateway
// worker's writes under one of gRPC's pollers (docs/benchmarks.md#where-the-time-goes-1000-sse-listeners-one-token).
#include <pthread.h>

#include <string>
#include <string_view>

namespace sluice {

inline void name_this_thread(std::string_view name) {
  const std::string cut(name.substr(0, 15));
  pthread_setname_np(pthread_self(), cut.c_str());
}

}  // namespace sluice
