// sluice-bench: a client worker process. One single-threaded epoll loop holds
// this worker's share of the listening clients (non-blocking sockets with a
// minimal HTTP/1.1 + chunked SSE and RFC 6455 client), opens them at its share
// of the connect rate, measures connect and event latency, and talks to the
// coordinator over two pipes (newline-delimited JSON up, commands down).
#pragma once

#include <sys/socket.h>

#include <cstdint>
#include <string>

#include "bench/options.hpp"
#include "bench/plan.hpp"
#include "bench/verifier.hpp"

namespace sluice_bench {

struct WorkerConfig {
  uint32_t id = 0;
  uint32_t count = 1;
  const Options* options = nullptr;
  const Plan* plan = nullptr;
  sockaddr_storage target{};
  socklen_t target_len = 0;
  bool spread_sources = false;  // bind sources to 127.0.0.2.. (IPv4 loopback targets only)
  std::string host_header;
  const VerifierSetup* verify = nullptr;  // what the server must send (bench/verifier.hpp)
  uint64_t seed = 0;
  int to_parent = -1;    // worker writes progress / final lines here
  int from_parent = -1;  // coordinator writes "expect [...]" and "finish"
  uint64_t deadline_mono_ns = 0;  // hard stop, whatever happens
};

// Runs the worker; returns the process exit status.
int run_worker(const WorkerConfig& config);

// Commands (coordinator -> worker), one per line:
//   expect [n0,n1,...]   events published on each plan channel (enables loss accounting:
//                        channel c carried sequence numbers 0..n_c-1)
//   finish               close every client, send the final report, exit
// Reports (worker -> coordinator), one JSON object per line:
//   {"t":"p",...}  progress, every 200 ms
//   {"t":"f",...}  final, once, after "finish"

}  // namespace sluice_bench
