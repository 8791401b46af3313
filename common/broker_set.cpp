#include "common/broker_set.hpp"

#include <arpa/inet.h>
#include <netdb.h>
#include <sys/socket.h>

#include <algorithm>
#include <set>
#include <unordered_set>

#include "common/config_error.hpp"
#include "common/env.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/thread_name.hpp"

namespace sluice {

namespace {
constexpr std::string_view kDnsScheme = "dns:///";

// FNV-1a: stable across processes and builds, which std::hash is not; every gateway
// must place a channel on the same brokers.
uint64_t stable_hash(std::string_view a, std::string_view b) {
  uint64_t h = 1469598103934665603ULL;
  auto mix = [&h](std::string_view text) {
    for (unsigned char c : text) {
      h ^= c;
      h *= 1099511628211ULL;
    }
  };
  mix(a);
  mix(std::string_view("\n", 1));
  mix(b);
  // FNV's low bits mix poorly for short inputs: finish with a 64-bit avalanche.
  h ^= h >> 33;
  h *= 0xff51afd7ed558ccdULL;
  h ^= h >> 33;
  return h;
}

std::string trim(std::string_view text) {
  size_t begin = text.find_first_not_of(" \t");
  if (begin == std::string_view::npos) return {};
  size_t end = text.find_last_not_of(" \t");
  return std::string(text.substr(begin, end - begin + 1));
}
}  // namespace

BrokerSetOptions BrokerSetOptions::from_env(const Env& env, std::string default_addresses) {
  BrokerSetOptions options;
  options.addresses = env.non_empty("SLUICE_BROKER_ADDR").value_or(std::move(default_addresses));
  options.replicas = static_cast<size_t>(env.non_negative("SLUICE_BROKER_REPLICAS", 2));
  if (options.replicas == 0) throw ConfigError("SLUICE_BROKER_REPLICAS must be at least 1");
  options.resolve_interval = std::chrono::seconds(env.non_negative("SLUICE_BROKER_RESOLVE_SECONDS", 10));
  if (options.resolve_interval.count() == 0) throw ConfigError("SLUICE_BROKER_RESOLVE_SECONDS must be at least 1");
  options.dedup_window = std::chrono::milliseconds(env.non_negative("SLUICE_BROKER_DEDUP_WINDOW_MS", 10000));
  // The window must outlast the gap between two brokers' copies of one event, which is
  // seconds when one is behind (the fault matrix saw 4 s; the default is 10 s); below the
  // 2 s hold limit even an ordinary lag forgets first copies, and every event comes
  // twice (docs/scale-out.md#brokers). 0 did exactly that.
  if (options.dedup_window < std::chrono::seconds(2)) {
    throw ConfigError("SLUICE_BROKER_DEDUP_WINDOW_MS must be at least 2000 (two brokers' copies can be seconds apart)");
  }
  broker_address_items(options.addresses);  // a bad list stops the process at startup
  return options;
}

std::vector<std::string> broker_address_items(const std::string& addresses) {
  std::vector<std::string> items;
  size_t start = 0;
  for (;;) {
    size_t comma = addresses.find(',', start);
    std::string item = trim(std::string_view(addresses).substr(start, comma == std::string::npos ? std::string::npos : comma - start));
    if (item.empty()) throw ConfigError("SLUICE_BROKER_ADDR has an empty item: \"" + addresses + "\"");
    if (item.starts_with(kDnsScheme) && item.rfind(':') < kDnsScheme.size()) {
      throw ConfigError("SLUICE_BROKER_ADDR item " + item + " needs a port (dns:///name:port)");
    }
    items.push_back(std::move(item));
    if (comma == std::string::npos) return items;
    start = comma + 1;
  }
}

std::optional<std::vector<BrokerTarget>> expand_broker_item(const std::string& item, const Resolver& resolve) {
  if (!item.starts_with(kDnsScheme)) return std::vector<BrokerTarget>{{item, ""}};
  std::string name = item.substr(kDnsScheme.size());
  size_t colon = name.rfind(':');
  std::string host = name.substr(0, colon), port = name.substr(colon + 1);
  auto addresses = resolve(host, port);
  if (!addresses || addresses->empty()) return std::nullopt;
  // One family: a dual-stack Service (or `localhost`) names each broker by an IPv4 and
  // an IPv6 address, which nothing pairs up, and as two brokers a channel's two
  // replicas could be one pod. IPv4 when there is any, so every process picks alike.
  const bool any_ipv4 = std::any_of(addresses->begin(), addresses->end(),
                                    [](const std::string& address) { return address.starts_with("ipv4:"); });
  std::vector<BrokerTarget> targets;
  for (auto& address : *addresses) {
    if (!any_ipv4 || address.starts_with("ipv4:")) targets.push_back({std::move(address), host});
  }
  return targets;
}

Resolver system_resolver() {
  return [](const std::string& host, const std::string& port) -> std::optional<std::vector<std::string>> {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    addrinfo* found = nullptr;
    if (::getaddrinfo(host.c_str(), port.c_str(), &hints, &found) != 0) return std::nullopt;
    std::set<std::string> targets;
    for (addrinfo* a = found; a; a = a->ai_next) {
      char text[INET6_ADDRSTRLEN] = {0};
      if (a->ai_family == AF_INET) {
        ::inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(a->ai_addr)->sin_addr, text, sizeof text);
        targets.insert("ipv4:" + std::string(text) + ":" + port);
      } else if (a->ai_family == AF_INET6) {
        ::inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(a->ai_addr)->sin6_addr, text, sizeof text);
        targets.insert("ipv6:[" + std::string(text) + "]:" + port);
      }
    }
    ::freeaddrinfo(found);
    return std::vector<std::string>(targets.begin(), targets.end());
  };
}

std::vector<size_t> place_channel(const std::string& channel, const std::vector<BrokerTarget>& brokers,
                                  size_t replicas) {
  std::vector<std::pair<uint64_t, size_t>> scored;
  for (size_t i = 0; i < brokers.size(); ++i) scored.emplace_back(stable_hash(brokers[i].address, channel), i);
  size_t keep = std::min(replicas, scored.size());
  std::partial_sort(scored.begin(), scored.begin() + static_cast<std::ptrdiff_t>(keep), scored.end(),
                    [](const auto& a, const auto& b) { return a.first > b.first; });
  std::vector<size_t> chosen;
  for (size_t i = 0; i < keep; ++i) chosen.push_back(scored[i].second);
  return chosen;
}

BrokerSet::BrokerSet(BrokerSetOptions options, StreamFactory connect, std::string process_id,
                     BrokerLink::EventHandler on_event, std::function<void()> on_system_events_missed,
                     Resolver resolve)
    : options_(std::move(options)),
      connect_(std::move(connect)),
      process_id_(std::move(process_id)),
      on_event_(std::move(on_event)),
      on_system_events_missed_(std::move(on_system_events_missed)),
      resolve_(std::move(resolve)),
      items_(broker_address_items(options_.addresses)),
      dedup_(options_.dedup_window) {
  for (const auto& item : items_) dynamic_ = dynamic_ || item.starts_with(kDnsScheme);
}

BrokerSet::~BrokerSet() { stop(); }

void BrokerSet::start() {
  auto targets = resolve_all();
  {
    std::lock_guard lock(mutex_);
    started_ = true;
    if (targets) apply_members_locked(*targets);
  }
  supervisor_ = std::thread([this] {
    name_this_thread("broker-set");
    supervise();
  });
}

void BrokerSet::stop() {
  std::map<std::string, Member> members;
  std::map<std::string, Leaving> leaving;
  {
    std::lock_guard lock(mutex_);
    if (stopping_) return;
    stopping_ = true;
  }
  wake_.notify_all();
  if (supervisor_.joinable()) supervisor_.join();
  {
    std::lock_guard lock(mutex_);
    members.swap(members_);
    leaving.swap(leaving_);
  }
  // Outside the lock: a link's threads may be delivering.
  for (auto& [address, member] : members) member.link->stop();
  for (auto& [address, gone] : leaving) gone.link->stop();
}

std::optional<std::vector<BrokerTarget>> BrokerSet::resolve_all() const {
  std::set<BrokerTarget> all;
  for (const auto& item : items_) {
    auto targets = expand_broker_item(item, resolve_);
    if (!targets) {
      log::warn("cannot resolve a broker name; keeping the brokers already known", {{"item", item}});
      return std::nullopt;
    }
    all.insert(targets->begin(), targets->end());
  }
  return std::vector<BrokerTarget>(all.begin(), all.end());
}

// Re-resolves DNS items, ends handovers that are due, and releases held copies.
void BrokerSet::supervise() {
  auto next_resolve = std::chrono::steady_clock::now() + options_.resolve_interval;
  std::unique_lock lock(mutex_);
  while (!stopping_) {
    auto now = std::chrono::steady_clock::now();
    // Never resolved yet (DNS was not answering at start): retry each second.
    bool unresolved = members_.empty();
    if (dynamic_ && (now >= next_resolve || unresolved)) {
      lock.unlock();
      auto targets = resolve_all();
      lock.lock();
      if (stopping_) break;
      if (targets) apply_members_locked(*targets);
      next_resolve = now + options_.resolve_interval;
    }
    std::vector<std::unique_ptr<BrokerLink>> to_stop;
    run_due_locked(now, to_stop);
    if (!to_stop.empty()) {
      lock.unlock();
      for (auto& link : to_stop) link->stop();
      to_stop.clear();
      lock.lock();
      continue;
    }
    // Copies a rejoining broker holds go out at their limit even on a quiet channel.
    release_overdue();
    // Once a second at most when idle (a hold can begin on another thread between the
    // check below and the wait; its notification is then missed, not its release).
    auto wake_at = now + std::chrono::seconds(1);
    if (dynamic_ && !members_.empty()) wake_at = std::min(wake_at, next_resolve);
    if (holding_copies()) wake_at = std::min(wake_at, now + std::chrono::milliseconds(100));
    for (const auto& handover : handovers_) wake_at = std::min(wake_at, handover.at);
    for (const auto& [address, gone] : leaving_) wake_at = std::min(wake_at, gone.at);
    wake_.wait_until(lock, wake_at, [&] { return stopping_ || first_copy_held_.exchange(false); });
  }
}

void BrokerSet::apply_members_locked(const std::vector<BrokerTarget>& targets) {
  static auto& joined = metrics::Registry::global().counter(
      "sluice_broker_membership_changes_total", "Brokers that joined or left this process's set");
  bool changed = targets.size() != members_.size();
  for (const auto& target : targets) changed = changed || !members_.count(target.address);
  if (!changed) return;

  auto now = std::chrono::steady_clock::now();
  std::set<std::string> wanted_addresses;
  for (const auto& target : targets) wanted_addresses.insert(target.address);
  for (auto it = members_.begin(); it != members_.end();) {
    if (wanted_addresses.count(it->first)) {
      ++it;
      continue;
    }
    log::info("broker left", {{"broker", it->first}});
    joined.inc();
    // Its channels are acquired on their new brokers below; it keeps serving them
    // until the handover is over.
    leaving_[it->first] = Leaving{now + options_.handover, std::move(it->second.link)};
    it = members_.erase(it);
  }
  for (const auto& target : targets) {
    if (members_.count(target.address)) continue;
    if (!members_.empty() || !leaving_.empty()) log::info("broker joined", {{"broker", target.address}});
    if (started_ && !members_.empty()) joined.inc();
    Member member{target, next_source_++, nullptr};
    int source = member.source;
    member.link = std::make_unique<BrokerLink>(
        connect_(target), process_id_,
        BrokerLink::Callbacks{
            [this, source](BrokerLink::Events events) { deliver(source, std::move(events)); },
            on_system_events_missed_, [this, source](const std::vector<std::string>& channels) { stream_opening(source, channels); },
            [this, source](const std::string& channel) { resubscribed(source, channel); }});
    auto [it, inserted] = members_.emplace(target.address, std::move(member));
    if (started_) it->second.link->start();
  }
  update_replicated_locked();

  // Move every channel to its new brokers: acquire where it is new first.
  for (auto& [channel, wanted] : channels_) {
    auto placed = place_locked(channel);
    for (const auto& address : placed) {
      if (std::find(wanted.holders.begin(), wanted.holders.end(), address) != wanted.holders.end()) continue;
      rejoin(members_.at(address).source, channel);
      members_.at(address).link->acquire(channel, wanted.heartbeat);
    }
    for (const auto& address : wanted.holders) {
      if (std::find(placed.begin(), placed.end(), address) != placed.end()) continue;
      if (members_.count(address)) handovers_.push_back({now + options_.handover, address, channel});
      // A broker that left takes its channels with it at the end of its handover.
    }
    wanted.holders = std::move(placed);
  }
  wake_.notify_all();
}

// Copies are compared only while two streams can carry the same channel: with several
// members, one leaving, or a DNS name that may bring a second at any time. In the last
// case the deliveries of a lone broker are recorded too, so that one joining (a
// replacement pod under a new address) is matched against them and held behind it
// like any rejoining broker (docs/scale-out.md#brokers), not taken for new.
void BrokerSet::update_replicated_locked() {
  replicated_.store(members_.size() > 1 || !leaving_.empty() || (dynamic_ && options_.replicas > 1),
                    std::memory_order_release);
}

std::vector<std::string> BrokerSet::place_locked(const std::string& channel) const {
  std::vector<BrokerTarget> targets;
  for (const auto& [address, member] : members_) targets.push_back(member.target);
  std::vector<std::string> placed;
  for (size_t index : place_channel(channel, targets, options_.replicas)) placed.push_back(targets[index].address);
  return placed;
}

BrokerLink* BrokerSet::link_locked(const std::string& address) {
  if (auto it = members_.find(address); it != members_.end()) return it->second.link.get();
  if (auto it = leaving_.find(address); it != leaving_.end()) return it->second.link.get();
  return nullptr;
}

void BrokerSet::run_due_locked(std::chrono::steady_clock::time_point now,
                               std::vector<std::unique_ptr<BrokerLink>>& to_stop) {
  std::erase_if(handovers_, [&](const Handover& handover) {
    if (handover.at > now) return false;
    if (auto* link = link_locked(handover.address)) link->release(handover.channel);
    return true;
  });
  for (auto it = leaving_.begin(); it != leaving_.end();) {
    if (it->second.at > now) {
      ++it;
      continue;
    }
    to_stop.push_back(std::move(it->second.link));
    it = leaving_.erase(it);
  }
  if (!to_stop.empty()) update_replicated_locked();
}

void BrokerSet::acquire(const std::string& channel, bool heartbeat) {
  std::lock_guard lock(mutex_);
  auto& wanted = channels_[channel];
  wanted.heartbeat = wanted.heartbeat || heartbeat;
  if (++wanted.count > 1) {
    if (heartbeat) {
      for (const auto& address : wanted.holders) {
        if (auto* link = link_locked(address)) link->touch(channel);
      }
    }
    return;
  }
  wanted.holders = place_locked(channel);
  {
    std::lock_guard dedup_lock(deliver_mutex_);
    dedup_.forget(channel);
  }
  for (const auto& address : wanted.holders) {
    rejoin(members_.at(address).source, channel);
    members_.at(address).link->acquire(channel, heartbeat);
  }
}

void BrokerSet::touch(const std::string& channel) {
  std::lock_guard lock(mutex_);
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  for (const auto& address : it->second.holders) {
    if (auto* link = link_locked(address)) link->touch(channel);
  }
}

void BrokerSet::release(const std::string& channel) {
  std::lock_guard lock(mutex_);
  auto it = channels_.find(channel);
  if (it == channels_.end() || --it->second.count > 0) return;
  for (const auto& address : it->second.holders) {
    if (auto* link = link_locked(address)) link->release(channel);
  }
  channels_.erase(it);
}

void BrokerSet::deliver(int source, BrokerLink::Events events) {
  if (!replicated_.load(std::memory_order_acquire)) return on_event_(std::move(events));
  // Deciding and handing on under one lock: the streams run on different threads, and
  // the order of first copies is the channel's order only if it is also the order of
  // delivery (the e2e test saw e54 before e53 without it).
  std::lock_guard lock(deliver_mutex_);
  const auto now = std::chrono::steady_clock::now();
  const bool held_before = dedup_.holding_copies();
  std::vector<EventDeduplicator::Event> first_copies;
  for (auto& event : events) {
    auto released = dedup_.offer(source, std::move(event), now);
    first_copies.insert(first_copies.end(), std::make_move_iterator(released.begin()),
                        std::make_move_iterator(released.end()));
  }
  hand_on_locked(std::move(first_copies));
  // The first held copy: the supervisor looks every 100 ms from now on (a probation
  // alone does not make it; docs/scale-out.md#brokers).
  if (!held_before && dedup_.holding_copies()) {
    first_copy_held_.store(true);  // the wait's predicate: a notification alone is slept through
    wake_.notify_all();
  }
}

void BrokerSet::hand_on_locked(std::vector<EventDeduplicator::Event> events) {
  static auto& dropped = metrics::Registry::global().counter(
      "sluice_broker_duplicates_dropped_total",
      "Copies of an event that arrived through a second broker and were dropped (docs/scale-out.md#brokers)");
  if (uint64_t now_dropped = dedup_.dropped(); now_dropped > dropped_reported_) {
    dropped.inc(now_dropped - dropped_reported_);
    dropped_reported_ = now_dropped;
  }
  if (!events.empty()) on_event_(std::move(events));
}

void BrokerSet::stream_opening(int source, const std::vector<std::string>& channels) {
  // A reopened stream missed what was published while it was down, and may run ahead
  // of the other broker's (docs/scale-out.md#brokers). Done before its subscriptions
  // go out, not when the broker says Ready: by then the other broker may already have
  // delivered messages this stream will carry too.
  const std::unordered_set<std::string_view> carried(channels.begin(), channels.end());  // outside the lock
  std::lock_guard lock(deliver_mutex_);
  hand_on_locked(dedup_.reopened(source, carried, std::chrono::steady_clock::now()));
}

void BrokerSet::resubscribed(int source, const std::string& channel) {
  // The broker's Redis subscription restarted: like a stream that reopens, it skips what
  // was published meanwhile, and the two brokers' subscriptions come back at different
  // moments (docs/scale-out.md#brokers).
  if (!replicated_.load(std::memory_order_acquire)) return;
  std::lock_guard lock(deliver_mutex_);
  hand_on_locked(dedup_.resubscribed(source, channel, std::chrono::steady_clock::now()));
}

void BrokerSet::rejoin(int source, const std::string& channel) {
  std::lock_guard lock(deliver_mutex_);
  hand_on_locked(dedup_.rejoin(source, channel, std::chrono::steady_clock::now()));
}

void BrokerSet::release_overdue() {
  std::lock_guard lock(deliver_mutex_);
  hand_on_locked(dedup_.release_overdue(std::chrono::steady_clock::now()));
}

bool BrokerSet::holding_copies() {
  std::lock_guard lock(deliver_mutex_);
  return dedup_.holding_copies();
}

bool BrokerSet::connected() const {
  std::lock_guard lock(mutex_);
  size_t up = 0;
  for (const auto& [address, member] : members_) up += member.link->connected() ? 1 : 0;
  size_t total = members_.size();
  if (total == 0) return false;
  return total - up < std::min(options_.replicas, total);
}

size_t BrokerSet::broker_count() const {
  std::lock_guard lock(mutex_);
  return members_.size();
}

}  // namespace sluice
