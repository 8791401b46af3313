#pragma once
// The brokers a process follows (docs/scale-out.md#brokers). SLUICE_BROKER_ADDR is a
// comma-separated list; an item `dns:///name:port` stands for every address the name
// resolves to (a Kubernetes headless Service), re-resolved every
// SLUICE_BROKER_RESOLVE_SECONDS; any other item is one broker.
//
// Each channel is held through `replicas` (2) of them, chosen by rendezvous hashing of
// the channel name over the broker addresses: every gateway with the same list picks
// the same two, so each channel costs Redis two subscriptions in the whole fleet, and
// when a broker joins or leaves only the channels it gains or loses move. The copies
// meet in one EventDeduplicator. With one broker, nothing is replicated or compared,
// unless the brokers are a DNS name (a second may join): then its deliveries are recorded.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/broker_link.hpp"
#include "common/event_deduplicator.hpp"

namespace sluice {

class Env;

// One broker to connect to: a gRPC target, and the name its TLS certificate carries
// when the target is an address resolved from a DNS name (empty: the target's host).
struct BrokerTarget {
  std::string address;
  std::string tls_name;
  bool operator==(const BrokerTarget&) const = default;
  bool operator<(const BrokerTarget& other) const { return address < other.address; }
};

struct BrokerSetOptions {
  // SLUICE_BROKER_ADDR, as written.
  std::string addresses = "127.0.0.1:50051";
  size_t replicas = 2;                                                 // SLUICE_BROKER_REPLICAS
  std::chrono::milliseconds resolve_interval = std::chrono::seconds(10);  // SLUICE_BROKER_RESOLVE_SECONDS
  std::chrono::milliseconds dedup_window = std::chrono::seconds(10);      // SLUICE_BROKER_DEDUP_WINDOW_MS
  // A channel that moves to another broker stays on the old one this long, so
  // that the new subscription is in Redis before the old one ends.
  std::chrono::milliseconds handover = std::chrono::seconds(2);

  static BrokerSetOptions from_env(const Env& env, std::string default_addresses);
};

// The list's items, in order; throws ConfigError for an empty list or item.
std::vector<std::string> broker_address_items(const std::string& addresses);
// What one item names now: itself, or (dns:///) every address the name resolves to,
// of one family (IPv4 if it has any: each broker once on a dual-stack network).
// `resolve` maps host and port to "ipv4:a.b.c.d:port" / "ipv6:[..]:port" targets;
// nullopt when resolution failed (the caller keeps what it had).
using Resolver = std::function<std::optional<std::vector<std::string>>(const std::string& host, const std::string& port)>;
std::optional<std::vector<BrokerTarget>> expand_broker_item(const std::string& item, const Resolver& resolve);
Resolver system_resolver();

// The `replicas` brokers (indexes into `brokers`) that hold `channel`, best first.
std::vector<size_t> place_channel(const std::string& channel, const std::vector<BrokerTarget>& brokers,
                                  size_t replicas);

class BrokerSet {
 public:
  // How streams to one broker are opened: grpc_broker_streams over a channel to it, or
  // the all-in-one's in-process broker.
  using StreamFactory = std::function<BrokerStreamOpener(const BrokerTarget&)>;

  BrokerSet(BrokerSetOptions options, StreamFactory connect, std::string process_id, BrokerLink::EventHandler on_event,
            std::function<void()> on_system_events_missed = {}, Resolver resolve = system_resolver());
  ~BrokerSet();

  void start();
  void stop();

  // The same contract as BrokerLink's, over every broker that holds the channel.
  void acquire(const std::string& channel, bool heartbeat);
  void touch(const std::string& channel);
  void release(const std::string& channel);

  // Ready while every channel still has a broker: all of them with one broker,
  // all but one with several (each channel is on two).
  bool connected() const;
  size_t broker_count() const;

 private:
  struct Member {
    BrokerTarget target;
    int source = 0;  // the de-duplicator's name for this broker's stream
    std::unique_ptr<BrokerLink> link;
  };
  struct Wanted {
    int count = 0;
    bool heartbeat = false;
    std::vector<std::string> holders;  // the brokers it was acquired on
  };
  // A channel that moved keeps its old broker until `at`: the new subscription is
  // in Redis by then, and the de-duplicator drops the overlap.
  struct Handover {
    std::chrono::steady_clock::time_point at;
    std::string address;
    std::string channel;
  };
  struct Leaving {
    std::chrono::steady_clock::time_point at;
    std::unique_ptr<BrokerLink> link;
  };

  void supervise();
  std::optional<std::vector<BrokerTarget>> resolve_all() const;
  void apply_members_locked(const std::vector<BrokerTarget>& targets);
  std::vector<std::string> place_locked(const std::string& channel) const;
  void update_replicated_locked();
  BrokerLink* link_locked(const std::string& address);
  void run_due_locked(std::chrono::steady_clock::time_point now, std::vector<std::unique_ptr<BrokerLink>>& to_stop);
  void deliver(int source, BrokerLink::Events events);
  void stream_opening(int source, const std::vector<std::string>& channels);
  void resubscribed(int source, const std::string& channel);
  // With deliver_mutex_ held: passes events on, and counts the dropped copies.
  void hand_on_locked(std::vector<EventDeduplicator::Event> events);
  // `source` starts relaying `channel` (takes deliver_mutex_; callers may hold mutex_).
  void rejoin(int source, const std::string& channel);
  void release_overdue();
  bool holding_copies();

  const BrokerSetOptions options_;
  StreamFactory connect_;
  std::string process_id_;
  BrokerLink::EventHandler on_event_;
  // Each time a stream is confirmed (re)opened, or its broker subscribed the system
  // channels again after losing Redis: system events may have been missed.
  std::function<void()> on_system_events_missed_;
  Resolver resolve_;
  std::vector<std::string> items_;
  bool dynamic_ = false;  // some item is a DNS name to re-resolve

  std::mutex deliver_mutex_;  // guards dedup_; taken after mutex_ when both are
  EventDeduplicator dedup_;
  uint64_t dropped_reported_ = 0;
  std::atomic<bool> replicated_{false};

  mutable std::mutex mutex_;
  std::condition_variable wake_;
  std::atomic<bool> first_copy_held_{false};  // set by deliver(): the supervisor's 100 ms looks begin
  std::map<std::string, Member> members_;  // by address: the placement's order
  std::map<std::string, Leaving> leaving_;
  std::unordered_map<std::string, Wanted> channels_;
  std::vector<Handover> handovers_;
  int next_source_ = 1;
  bool started_ = false;
  bool stopping_ = false;
  std::thread supervisor_;
};

}  // namespace sluice
