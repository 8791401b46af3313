#pragma once
// Every channel a process follows is held through two brokers when two or more exist
// (docs/scale-out.md#brokers), so each Redis message reaches it twice. This decides
// which copy is delivered, without any help from the brokers:
//
// per channel and content (event name and payload), each source (one broker stream)
// counts the copies it has sent; the N-th copy is delivered by whichever source sends
// its N-th first, and every later N-th copy is dropped. Two legitimately identical
// publishes are therefore both delivered (each broker sends two), a broker that dies
// loses nothing while the other one holds the channel, and a broker that is slower
// only sends copies that are dropped. Order within a channel is kept: each broker
// relays one Redis subscription in Redis's order, and the first copy of the N-th
// message always comes after the first copy of the (N-1)-th.
//
// A source that (re)starts following a channel never sends what was published
// before; `align` counts it as having sent what has been delivered, so its next copy
// is not mistaken for an old one. Counts are forgotten once a content has not been
// seen for `window` (longer than two brokers can plausibly differ in delay).
// Thread-safe: broker streams deliver from gRPC threads.
#include <chrono>
#include <cstdint>
#include <mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace sluice {

class EventDeduplicator {
 public:
  using Clock = std::chrono::steady_clock;

  explicit EventDeduplicator(std::chrono::milliseconds window) : window_(window) {}

  // True when this copy is the first of its kind and must be delivered.
  bool admit(int source, const std::string& channel, std::string_view event, std::string_view payload,
             Clock::time_point now);
  // `source` begins following `channel` (or every channel, for a reopened stream).
  void align(int source, const std::string& channel);
  void align_all(int source);

  // Contents remembered, for tests and metrics.
  size_t remembered() const;

 private:
  struct Seen {
    uint64_t delivered = 0;
    std::vector<std::pair<int, uint64_t>> sent_by;  // per source; two entries in the usual case
    Clock::time_point last_seen;
  };
  using Contents = std::unordered_map<uint64_t, Seen>;

  static uint64_t& sent(Seen& seen, int source);
  void forget_older_than(Clock::time_point cutoff);

  const std::chrono::milliseconds window_;
  mutable std::mutex mutex_;
  std::unordered_map<std::string, Contents> channels_;
  Clock::time_point last_sweep_{};
};

}  // namespace sluice
