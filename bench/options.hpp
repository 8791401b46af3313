// sluice-bench: command-line options.
#pragma once

#include <sys/types.h>

#include <cstdint>
#include <optional>
#include <stdexcept>
#include <string>
#include <vector>

namespace sluice_bench {

struct TokenEntry {
  std::string token;
  std::string account_id;  // may be empty when no stream needs it
};

struct Options {
  // Target
  std::string host = "127.0.0.1";
  int port = 4000;
  bool allow_remote = false;

  // Clients
  uint32_t clients = 100;
  double sse_share = 1.0;                    // fraction of clients that use SSE, the rest WebSocket
  std::vector<std::string> streams{"user"};  // comma list; clients take them round-robin
  std::vector<TokenEntry> tokens;            // clients take them round-robin
  double connect_rate = 1000.0;              // total new connections per second
  uint32_t workers = 0;                      // 0: one per 15,000 clients
  uint32_t connect_timeout_ms = 10000;
  uint32_t source_pool = 256;  // source addresses 127.0.0.2.. used round-robin (loopback IPv4 only)
  bool spread_sources = true;

  // Events
  uint32_t events = 100;
  double rate = 10.0;  // events per second
  uint32_t payload_bytes = 2000;
  bool round_robin_channels = false;  // false: every event goes to every channel
  std::vector<std::string> event_mix{"update"};  // the s-th event on a channel is event_mix[s % size]
  std::string redis_host = "127.0.0.1";
  int redis_port = 6379;
  std::string redis_user;
  std::string redis_password;
  std::string redis_namespace;
  // Keep publishing through Redis outages (reconnect; excuse the events Redis may
  // never have had) instead of ending the run at the first failed PUBLISH.
  bool redis_outages = false;

  // Timing
  uint32_t settle_ms = 1000;
  uint32_t drain_ms = 5000;
  uint32_t linger_ms = 1000;
  uint32_t subscribe_timeout_ms = 10000;
  double max_seconds = 600.0;

  // Reporting
  std::vector<pid_t> server_pids;
  bool json_only = false;
  bool progress = true;
  bool fail_on_mismatch = false;  // exit 4 when the per-event verification finds anything
  bool self_test = false;         // run the verifier's fault-injection check and exit
};

// Parses argv. Prints usage and exits 0 for --help; throws UsageError otherwise.
Options parse_options(int argc, char** argv);
void print_usage(const char* argv0);

struct UsageError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace sluice_bench
