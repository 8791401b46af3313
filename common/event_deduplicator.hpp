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
// only sends copies that are dropped. Order within a channel is kept while both relay
// it: each broker relays one Redis subscription in Redis's order, so the first copy of
// the N-th message always comes after the first copy of the (N-1)-th.
//
// A source that (re)starts following a channel (`rejoin`) may be BEHIND: its broker
// may already hold the Redis subscription for other processes and hand the new stream
// messages its Redis thread had not yet processed, which the other source delivered.
// So until it sends something beyond what was delivered, its copies are matched
// against the channel's recent deliveries, in order (`Catchup`): copies that replay
// them are dropped, and at its first copy beyond them it is counted as having sent
// everything delivered (so a later identical publish it relays first is new). Runs of
// identical contents leave several readings open; the copies wait until one is left,
// and the one that makes most of them old wins. It may also be AHEAD of the other
// source, whose stream still carries older messages: so while another source is
// relaying the channel, the newcomer's copies are held until that source catches up
// with the first of them (then they go out in order, minus what the other source
// delivered meanwhile), or relays a later one having missed the first (its own
// subscription restarted: they go out then), or has relayed nothing on the channel for
// `hold_limit` (it stopped relaying: nothing is lost, the held copies are merely late).
//
// Counts are forgotten once a content has not been seen for `window` (longer than two
// brokers can plausibly differ in delay). Not thread-safe: BrokerSet serialises calls.
#include <chrono>
#include <cstdint>
#include <deque>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "sluice/v1/broker.pb.h"

namespace sluice {

class EventDeduplicator {
 public:
  using Clock = std::chrono::steady_clock;
  using Event = std::shared_ptr<const v1::ChannelEvent>;

  explicit EventDeduplicator(std::chrono::milliseconds window,
                             std::chrono::milliseconds hold_limit = std::chrono::seconds(2))
      : window_(window), hold_limit_(hold_limit) {}

  // One copy from `source`: the events to deliver now, in order (usually none or this one).
  std::vector<Event> offer(int source, Event event, Clock::time_point now);
  // `source` begins following `channel`. Returns what it still held from before, to
  // deliver, unless another source is relaying the channel and the hold is within its
  // limit: then those copies stay held, ahead of the new stream's, until that source
  // catches up with them.
  std::vector<Event> rejoin(int source, const std::string& channel, Clock::time_point now);
  // `source`'s stream reopened, carrying `channels` and the system channels (which every
  // stream carries): a rejoin of each. Not of the channels other sources relay and it
  // does not: it would be held against them until they fell silent, which while they
  // relay is never (with three or more brokers most channels are such).
  std::vector<Event> reopened(int source, const std::unordered_set<std::string_view>& channels, Clock::time_point now);
  // The process starts following `channel` afresh (no one here followed it): what was
  // counted before is about copies nobody waits for, and a source counted as relaying
  // it would put the new subscriptions on probation against each other.
  void forget(const std::string& channel);
  // `source`'s Redis subscription of `channel` restarted (its broker's Redis connection
  // came back): a rejoin, and from now on `source` counts as relaying the channel, so a
  // source whose subscription restarts after it — and may lack what this one carries
  // first — is held until this one catches up, even before this one relays anything.
  std::vector<Event> resubscribed(int source, const std::string& channel, Clock::time_point now);
  // Held copies whose limit has passed, in order.
  std::vector<Event> release_overdue(Clock::time_point now);
  // A probation is open: a source that rejoined may have its next copies held.
  bool holding() const { return holds_ > 0; }
  // Copies are held: release_overdue is then due every 100 ms, for them to go out at
  // their limit. Not merely a probation: one opens for every channel of a broker at each
  // attempt to reach it, and while it is away the other keeps relaying, so those do not
  // end; looking at them every 100 ms scanned every channel for as long as the broker
  // stayed away (once a second does for them).
  bool holding_copies() const { return held_copies_ > 0; }
  // Copies dropped as duplicates so far.
  uint64_t dropped() const { return dropped_; }

  // Contents remembered, and deliveries logged, for tests.
  size_t remembered() const;
  size_t logged() const;

 private:
  struct Seen {
    uint64_t delivered = 0;
    std::vector<std::pair<int, uint64_t>> sent_by;  // per source; two entries in the usual case
    Clock::time_point last_seen;
  };
  struct Held {
    uint64_t key;
    uint64_t count;  // the source's count for that content when it was held
    Event event;
  };
  struct Probation {
    Clock::time_point until;
    std::deque<Held> held;
  };
  // A rejoined source whose copies so far all replay recent deliveries. Each reading
  // is a place in the delivery log its stream may have started from.
  struct Reading {
    uint64_t next;       // the log position its next copy must match
    bool beyond = false;  // the log was exhausted: copies from `split` on are new
    size_t split = 0;
  };
  struct Copy {
    uint64_t key;
    Event event;
  };
  struct Catchup {
    std::vector<Copy> copies;  // in arrival order, none delivered yet
    std::vector<Reading> readings;
  };
  struct Channel {
    std::unordered_map<uint64_t, Seen> contents;
    std::map<int, Clock::time_point> last_sent;  // per source
    std::map<int, Probation> probation;          // per rejoining source
    std::map<int, Catchup> catching_up;          // per rejoined source that has sent nothing new
    bool system = false;                         // a system channel: every source relays it
    std::vector<uint64_t> log;                   // contents delivered, in order (the most recent)
    uint64_t log_base = 0;                       // position of log.front()
  };

  static uint64_t& sent(Seen& seen, int source);
  // The usual path: counts the copy, and delivers, holds or drops it.
  void accept(int source, Channel& channel, uint64_t key, Seen& seen, Event event, Clock::time_point now,
              std::vector<Event>& out);
  // Whether a probation may end with what it holds: its limit passed, and the others
  // silent on the channel for as long.
  bool overdue(const Channel& channel, const std::pair<const int, Probation>& probation, Clock::time_point now) const;
  void deliver(Channel& channel, uint64_t key, Event event, std::vector<Event>& out);
  // How a catch-up ended: how many of the source's copies, from the first, were replays
  // (the rest are new, to accept in order), and the log position it has reached (the
  // log's end, or before it when the source is behind the other one and still has the
  // deliveries from there on to relay).
  struct Resolution {
    size_t replayed;
    uint64_t reached;
  };
  // Adds a catching-up source's copy; its resolution once the source is past the log,
  // or has sent so many copies that the likeliest reading is taken.
  std::optional<Resolution> match(Catchup& catchup, const Channel& channel, uint64_t key, Event event);
  void rejoin_channel(int source, Channel& channel, Clock::time_point now, std::vector<Event>& out);
  // Ends a probation: the held copies nobody delivered meanwhile go out, in order.
  void release(Channel& channel, std::map<int, Probation>::iterator it, std::vector<Event>& out);
  void forget_older_than(Clock::time_point cutoff);

  const std::chrono::milliseconds window_;
  const std::chrono::milliseconds hold_limit_;
  std::unordered_map<std::string, Channel> channels_;
  size_t holds_ = 0;        // probations open
  size_t held_copies_ = 0;  // copies they hold, all together
  uint64_t dropped_ = 0;
  Clock::time_point last_sweep_{};
};

}  // namespace sluice
