#include "common/event_deduplicator.hpp"

#include "common/channel_key.hpp"

#include <algorithm>
#include <functional>

namespace sluice {

namespace {
// Content identity within one process (both copies are hashed here). A 64-bit
// collision between two different contents of one channel within the window would
// drop one event; at the rates a channel carries that is below 1 in 10^12 per year.
uint64_t content_key(const v1::ChannelEvent& event) {
  uint64_t h = std::hash<std::string_view>{}(event.event());
  return h ^ (std::hash<std::string_view>{}(event.payload()) + 0x9e3779b97f4a7c15ULL + (h << 6) + (h >> 2));
}
}  // namespace

uint64_t& EventDeduplicator::sent(Seen& seen, int source) {
  for (auto& [who, count] : seen.sent_by) {
    if (who == source) return count;
  }
  return seen.sent_by.emplace_back(source, 0).second;
}

std::vector<EventDeduplicator::Event> EventDeduplicator::offer(int source, Event event, Clock::time_point now) {
  std::vector<Event> out;
  if (now - last_sweep_ >= window_) {
    forget_older_than(now - window_);
    last_sweep_ = now;
  }
  // Channels are channel keys (common/channel_key.hpp): one per instance.
  std::string qualified;
  if (!event->tenant().empty()) qualified = channel_key(event->tenant(), event->channel());
  Channel& channel = channels_[event->tenant().empty() ? event->channel() : qualified];
  channel.last_sent[source] = now;
  // The broker classified it (docs/protocol.md#system-channels).
  channel.system = channel.system || event->system_channel() != v1::SYSTEM_CHANNEL_NONE;
  const uint64_t key = content_key(*event);
  Seen& seen = channel.contents[key];
  seen.last_seen = now;

  auto catching = channel.catching_up.find(source);
  if (catching == channel.catching_up.end()) {
    accept(source, channel, key, seen, std::move(event), now, out);
    return out;
  }
  auto resolution = match(catching->second, channel, key, std::move(event));
  if (!resolution) return out;
  // Copies that replayed the log were the other source's deliveries: this source was
  // behind, so it is ahead of nothing and its probation ends. It has relayed what was
  // delivered up to where it reached; what the other source delivered after that, it
  // has still to relay, and those copies must count as replays too.
  Catchup done = std::move(catching->second);
  channel.catching_up.erase(catching);
  dropped_ += resolution->replayed;
  for (auto& [other_key, other] : channel.contents) sent(other, source) = std::max(sent(other, source), other.delivered);
  for (uint64_t at = std::max(resolution->reached, channel.log_base); at < channel.log_base + channel.log.size(); ++at) {
    auto owed = channel.contents.find(channel.log[at - channel.log_base]);
    if (owed != channel.contents.end() && sent(owed->second, source) > 0) --sent(owed->second, source);
  }
  if (resolution->replayed > 0) {
    if (auto mine = channel.probation.find(source); mine != channel.probation.end()) release(channel, mine, out);
  }
  for (size_t i = resolution->replayed; i < done.copies.size(); ++i) {
    Copy& copy = done.copies[i];
    accept(source, channel, copy.key, channel.contents[copy.key], std::move(copy.event), now, out);
  }
  return out;
}

std::optional<EventDeduplicator::Resolution> EventDeduplicator::match(Catchup& catchup, const Channel& channel,
                                                                      uint64_t key, Event event) {
  // Past this many unresolved copies (a long run of one content), the likeliest
  // reading is taken.
  constexpr size_t kMostUnresolved = 1024;
  const size_t index = catchup.copies.size();
  catchup.copies.push_back({key, std::move(event)});
  const uint64_t end = channel.log_base + channel.log.size();
  if (index == 0) {
    // Its first copy may be new (level or ahead), or replay any delivery of its content.
    catchup.readings.push_back({end, true, 0});
    for (size_t at = 0; at < channel.log.size(); ++at) {
      if (channel.log[at] == key) catchup.readings.push_back({channel.log_base + at + 1});
    }
  } else {
    std::erase_if(catchup.readings, [&](Reading& reading) {
      if (reading.beyond) return false;
      if (reading.next == end) {
        reading.beyond = true;  // this copy is the first beyond the log
        reading.split = index;
        return false;
      }
      if (reading.next < channel.log_base || channel.log[reading.next - channel.log_base] != key) return true;
      ++reading.next;
      return false;
    });
  }
  bool open = std::any_of(catchup.readings.begin(), catchup.readings.end(),
                          [](const Reading& reading) { return !reading.beyond; });
  if (open && catchup.copies.size() < kMostUnresolved) return std::nullopt;
  // The reading that takes most copies for replays: a copy wrongly taken for one is
  // still delivered by the other source; one wrongly taken for new would be twice. A
  // reading still open takes them all (the source trails the other one, as a broker in
  // another zone does). Of two such (a periodic run of contents), the one nearest the
  // log's end: the source is then counted as owing the fewest of the other's
  // deliveries, and a copy it owes is dropped, so one counted as owed wrongly would be
  // lost if the other source stopped; one not counted wrongly is at worst twice.
  Resolution best{0, end};
  for (const auto& reading : catchup.readings) {
    Resolution taken = reading.beyond ? Resolution{reading.split, end} : Resolution{catchup.copies.size(), reading.next};
    if (taken.replayed > best.replayed || (taken.replayed == best.replayed && taken.reached > best.reached)) {
      best = taken;
    }
  }
  return best;
}

void EventDeduplicator::accept(int source, Channel& channel, uint64_t key, Seen& seen, Event event,
                               Clock::time_point now, std::vector<Event>& out) {
  const uint64_t count = ++sent(seen, source);

  auto mine = channel.probation.find(source);
  // A probation past its end that holds nothing ends here, at this source's first copy
  // (release_overdue looks only where copies are held).
  if (mine != channel.probation.end() && mine->second.held.empty() && overdue(channel, *mine, now)) {
    release(channel, mine, out);
    mine = channel.probation.end();
  }
  if (mine != channel.probation.end()) {
    if (count <= seen.delivered) {
      // The other source has delivered this one too: it has caught up, and what this
      // source holds comes after everything it had still to relay.
      ++dropped_;
      release(channel, mine, out);
    } else {
      mine->second.held.push_back({key, count, std::move(event)});
      ++held_copies_;
    }
    return;
  }

  // A newcomer holding this copy has waited long enough: this source has caught up with
  // it, or has passed the newcomer's first held copy without relaying it (its own Redis
  // subscription restarted and missed it). The held copies go out first, in order, and
  // this one is then their duplicate. Waiting on for the first held would hold the
  // newcomer's copies for as long as this source relays. Only for a content never
  // delivered before: one that was may stand several times in either stream, and the
  // newcomer's counts of it are then a reading, not a position.
  if (seen.delivered == 0) {
    for (auto it = channel.probation.begin(); it != channel.probation.end();) {
      auto next = std::next(it);
      const auto& held = it->second.held;
      if (std::any_of(held.begin(), held.end(), [&](const Held& h) { return h.key == key && h.count <= count; })) {
        release(channel, it, out);
      }
      it = next;
    }
  }
  if (count > seen.delivered) {
    seen.delivered = count;
    deliver(channel, key, std::move(event), out);
  } else {
    ++dropped_;
  }
  // This copy may be the one a newcomer holds first: then the newcomer's copies go out.
  for (auto it = channel.probation.begin(); it != channel.probation.end();) {
    auto next = std::next(it);
    if (!it->second.held.empty()) {
      const Held& first = it->second.held.front();
      auto known = channel.contents.find(first.key);
      if (known == channel.contents.end() || first.count <= known->second.delivered) release(channel, it, out);
    }
    it = next;
  }
}

void EventDeduplicator::deliver(Channel& channel, uint64_t key, Event event, std::vector<Event>& out) {
  // Enough to match a source that is a few seconds behind on a busy channel; trimmed
  // by halves so that appending stays amortised O(1).
  constexpr size_t kLogKept = 2048;
  if (channel.log.size() == 2 * kLogKept) {
    channel.log.erase(channel.log.begin(), channel.log.begin() + kLogKept);
    channel.log_base += kLogKept;
  }
  channel.log.push_back(key);
  out.push_back(std::move(event));
}

void EventDeduplicator::release(Channel& channel, std::map<int, Probation>::iterator it, std::vector<Event>& out) {
  held_copies_ -= it->second.held.size();
  for (auto& held : it->second.held) {
    auto known = channel.contents.find(held.key);
    if (known != channel.contents.end() && held.count <= known->second.delivered) {
      ++dropped_;  // the other source delivered it meanwhile
      continue;
    }
    if (known != channel.contents.end()) known->second.delivered = held.count;
    deliver(channel, held.key, std::move(held.event), out);
  }
  channel.probation.erase(it);
  --holds_;
}

std::vector<EventDeduplicator::Event> EventDeduplicator::rejoin(int source, const std::string& channel,
                                                                Clock::time_point now) {
  std::vector<Event> out;
  if (auto it = channels_.find(channel); it != channels_.end()) rejoin_channel(source, it->second, now, out);
  return out;
}

std::vector<EventDeduplicator::Event> EventDeduplicator::resubscribed(int source, const std::string& name,
                                                                      Clock::time_point now) {
  std::vector<Event> out;
  Channel& channel = channels_[name];
  rejoin_channel(source, channel, now, out);
  channel.last_sent[source] = now;
  return out;
}

void EventDeduplicator::forget(const std::string& channel) {
  auto it = channels_.find(channel);
  if (it == channels_.end()) return;
  holds_ -= it->second.probation.size();
  for (const auto& [source, probation] : it->second.probation) held_copies_ -= probation.held.size();
  channels_.erase(it);
}

std::vector<EventDeduplicator::Event> EventDeduplicator::reopened(int source,
                                                                 const std::unordered_set<std::string_view>& channels,
                                                                 Clock::time_point now) {
  std::vector<Event> out;
  for (auto& [name, channel] : channels_) {
    if (channel.system || channels.count(name)) rejoin_channel(source, channel, now, out);
  }
  return out;
}

void EventDeduplicator::rejoin_channel(int source, Channel& channel, Clock::time_point now, std::vector<Event>& out) {
  // Copies of its previous stream still unresolved were replays or will be delivered by
  // the other source: they are let go.
  if (auto old = channel.catching_up.find(source); old != channel.catching_up.end()) {
    dropped_ += old->second.copies.size();
    channel.catching_up.erase(old);
  }
  // Its copies can replay only what another source delivered: with none that relayed
  // the channel within the window (a broker alone, its own stream or subscription
  // restarting), every copy is new, and matching would take a new publish of the last
  // content for a replay.
  bool another_sent = false;
  for (const auto& [other, at] : channel.last_sent) another_sent = another_sent || (other != source && now - at < window_);
  if (another_sent) channel.catching_up[source] = Catchup{};
  // Only a source that is itself established can be waited for: two sources that
  // rejoin together would otherwise each hold its copies for the other.
  bool another_is_relaying = false;
  for (const auto& [other, at] : channel.last_sent) {
    another_is_relaying = another_is_relaying ||
                          (other != source && now - at < hold_limit_ && !channel.probation.count(other));
  }
  auto mine = channel.probation.find(source);
  if (another_is_relaying && mine != channel.probation.end() && mine->second.until > now) {
    // Its stream ended again within its limit while its copies were held (a second
    // failure): they are still ahead of the other source and go out when it catches up,
    // before anything of the new stream, which comes later in Redis's order. The limit
    // stands: copies the other source never relays (its own subscription restarted past
    // them) go out at the first rejoin after it.
    return;
  }
  // Copies held from its previous stream were received: they go out first.
  if (mine != channel.probation.end()) release(channel, mine, out);
  if (another_is_relaying) {
    channel.probation[source] = Probation{now + hold_limit_, {}};
    ++holds_;
  }
}

// At the limit, and only once no other source has relayed the channel for a limit's
// length: one that is still relaying is merely behind (the CI fault run saw a broker
// 4 s behind under load) and will catch up with the held copies.
bool EventDeduplicator::overdue(const Channel& channel, const std::pair<const int, Probation>& probation,
                                Clock::time_point now) const {
  Clock::time_point others_last{};
  for (const auto& [other, at] : channel.last_sent) {
    if (other != probation.first) others_last = std::max(others_last, at);
  }
  return probation.second.until <= now && now - others_last >= hold_limit_;
}

std::vector<EventDeduplicator::Event> EventDeduplicator::release_overdue(Clock::time_point now) {
  std::vector<Event> out;
  if (holds_ == 0) return out;
  for (auto& [name, channel] : channels_) {
    for (auto it = channel.probation.begin(); it != channel.probation.end();) {
      auto next = std::next(it);
      if (overdue(channel, *it, now)) release(channel, it, out);
      it = next;
    }
  }
  return out;
}

size_t EventDeduplicator::remembered() const {
  size_t total = 0;
  for (const auto& [name, channel] : channels_) total += channel.contents.size();
  return total;
}

size_t EventDeduplicator::logged() const {
  size_t total = 0;
  for (const auto& [name, channel] : channels_) total += channel.log.size();
  return total;
}

void EventDeduplicator::forget_older_than(Clock::time_point cutoff) {
  for (auto it = channels_.begin(); it != channels_.end();) {
    Channel& channel = it->second;
    std::erase_if(channel.contents, [&](const auto& entry) { return entry.second.last_seen < cutoff; });
    std::erase_if(channel.last_sent, [&](const auto& entry) { return entry.second < cutoff; });

    // Deliveries older than the window are nobody's to replay: the log keeps what a
    // source may still be behind by, not 2,048 to 4,096 keys on every busy channel.
    size_t stale = 0;
    while (stale < channel.log.size() && !channel.contents.count(channel.log[stale])) ++stale;
    if (stale > 0) {
      channel.log.erase(channel.log.begin(), channel.log.begin() + static_cast<std::ptrdiff_t>(stale));
      channel.log_base += stale;
      if (channel.log.capacity() > 4 * channel.log.size() + 64) channel.log.shrink_to_fit();
    }
    // A channel nobody relayed for a window goes, with the probations that hold nothing
    // and are past their limit (a broker that is away is retried every second, each
    // attempt opening one: kept, they kept the channel here for good). While the channel
    // is busy they stay: their source may be connected and not yet relaying, with the
    // other one behind. So does a channel whose subscription a source restarted within
    // the window (last_sent set by resubscribed(), no copy yet), and one whose probation
    // is still within its limit (a window shorter than two limits, which the settings
    // allow): those probations are what keeps the order there.
    const Clock::time_point now = cutoff + window_;
    bool keeps_order = std::any_of(channel.probation.begin(), channel.probation.end(), [&](const auto& entry) {
      return !entry.second.held.empty() || entry.second.until > now;
    });
    if (channel.contents.empty() && channel.last_sent.empty() && !keeps_order) {
      holds_ -= channel.probation.size();
      it = channels_.erase(it);
    } else {
      it = std::next(it);
    }
  }
}

}  // namespace sluice
