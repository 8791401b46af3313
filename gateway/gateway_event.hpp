#pragma once
// An event from the broker, prepared ONCE for every worker thread: the pieces of
// SSE and WebSocket frames that do not depend on the stream name are built here,
// on the gRPC thread that received it, and shared read-only.
#include <atomic>
#include <memory>
#include <string>
#include <string_view>

#include "sluice/v1/broker.pb.h"

namespace sluice::gateway {

struct GatewayEvent {
  std::shared_ptr<const sluice::v1::ChannelEvent> source;
  // update/status.update with an object payload: the steps of docs/protocol.md#filtered-streams apply.
  bool is_status = false;
  // timeline:access_token:<id> or timeline:system:<account> (docs/protocol.md#system-channels);
  // the family and id are source->system_channel() and source->system_id().
  bool is_system = false;
  // The payload without its closing brace, for per-client `filtered` entries (a view
  // into source's payload). Empty when the status needs no `filtered` key.
  std::string_view payload_open;

  // The channel key (common/channel_key.hpp) the channel tables know this event's
  // channel by: its channel name, or tenant and name for an instance of a tenants file.
  const std::string& channel_key() const { return source->tenant().empty() ? source->channel() : qualified_key_; }

  // The frame pieces, each built the first time a worker needs it (any worker, once):
  // an event on a channel with SSE listeners only never escapes its payload for
  // WebSocket, and one outside filtered streams never builds the `filtered` variant.
  // `filtered`: with `"filtered":[]` appended as the last key (docs/protocol.md#filter-evaluation);
  // empty when the status has no such variant (payload_open empty).
  // The whole SSE chunk (docs/protocol.md#which-events-are-forwarded).
  const std::string& sse(bool filtered) const;
  // `,"event":…,"payload":…}` after `{"stream":<echo>`.
  const std::string& ws_tail(bool filtered) const;

  static std::shared_ptr<const GatewayEvent> prepare(std::shared_ptr<const sluice::v1::ChannelEvent> source);

 private:
  // pieces_[slot], built once by `piece(event, payload)` from the payload, or from the
  // payload with `"filtered":[]` when `filtered`.
  template <typename Piece>
  const std::string& built(int slot, bool filtered, Piece piece) const;
  std::string qualified_key_;  // set only for a tenant's event
  // Each piece's state: kNotBuilt, kBuilding (one worker builds it, the others wait),
  // kBuilt. Not std::call_once: glibc's makes a futex system call after every first
  // run, waiters or not, and pieces are built thousands of times a second; an atomic's
  // notify makes one only when a waiter is counted (libstdc++ counts them per bucket of
  // addresses, so now and then for another atomic's waiter). Not one mutex for the event either: a
  // worker building the SSE chunk would hold up one that needs the WebSocket tail
  // (docs/benchmarks.md#system-calls-that-wake-nobody-f6ce2d9-then-a304e8c-2026-12-04-night).
  static constexpr int kNotBuilt = 0, kBuilding = 1, kBuilt = 2;
  mutable std::atomic<int> state_[4] = {};
  mutable std::string pieces_[4];  // sse, sse filtered, ws tail, ws tail filtered
};

// The status payload with `"filtered":<filtered_json>` as its last key
// (docs/protocol.md#filter-evaluation); `payload_open` is the payload without its
// closing brace.
std::string payload_with_filtered(std::string_view payload_open, std::string_view filtered_json);

// `,"event":<event>,"payload":<payload as a JSON string>}`
std::string websocket_tail(std::string_view event, std::string_view payload);
// The whole WebSocket text frame for one stream echo.
std::string websocket_event_frame(std::string_view echo_json, std::string_view tail);

}  // namespace sluice::gateway
