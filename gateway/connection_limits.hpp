#pragma once
// How many client connections one gateway holds, in total and per client address
// (docs/protocol.md#admission-limits). Every accepted socket carries a ticket from
// accept until it closes, whichever session owns it meanwhile; a stream request on
// a connection past a limit is refused with 503 or 429 and Retry-After.
#include <atomic>
#include <cstddef>
#include <memory>
#include <mutex>
#include <string>
#include <unordered_map>

#include "common/metrics.hpp"

namespace sluice::gateway {

class ConnectionLimits {
 public:
  // 0 means no cap for `max_per_address`. `open_gauge` (optional) follows the open count.
  ConnectionLimits(size_t max_connections, size_t max_per_address, metrics::Gauge* open_gauge = nullptr);

  class Ticket {
   public:
    ~Ticket();
    Ticket(const Ticket&) = delete;
    Ticket& operator=(const Ticket&) = delete;
    // Whether this connection may open a stream: false once past the gateway's limit.
    bool within_connection_limit() const;
    // Counts the connection against `address` (once per address; later calls with it
    // only answer): false when the address already holds its cap. A request from
    // another address (a proxy's kept-alive connection serving the next client) moves
    // the claim to it. Addresses of trusted proxies are the caller's to exempt.
    bool claim_address(const std::string& address);

   private:
    friend class ConnectionLimits;
    explicit Ticket(ConnectionLimits& limits) : limits_(limits) {}
    void release_address_locked();
    ConnectionLimits& limits_;
    std::string address_;
    bool address_claimed_ = false;
  };

  // Called for every accepted socket; the connection counts until the ticket dies.
  std::shared_ptr<Ticket> admit();
  size_t open_connections() const { return open_.load(std::memory_order_relaxed); }
  size_t max_connections() const { return max_connections_; }

 private:
  const size_t max_connections_;
  const size_t max_per_address_;
  metrics::Gauge* const open_gauge_;
  std::atomic<size_t> open_{0};
  std::mutex mutex_;
  std::unordered_map<std::string, size_t> per_address_;
};

// Travels with a client socket from accept until it closes.
using ConnectionTicket = std::shared_ptr<ConnectionLimits::Ticket>;

// The default gateway-wide limit: the open-file limit less headroom for the
// process's own descriptors (gRPC, Redis and PostgreSQL in the all-in-one, logs)
// and for refusals to be answered at all.
size_t default_max_connections(size_t open_file_limit);
// The same for this process's open-file limit (RLIMIT_NOFILE).
size_t default_max_connections();

}  // namespace sluice::gateway
