#pragma once
// The stream table (docs/protocol.md#sse-paths, docs/protocol.md#stream-table, docs/protocol.md#websocket-stream-echo,
// docs/protocol.md#scopes-per-stream, docs/protocol.md#subscribe): which stream a path
// names, which scopes it needs, and which Redis channels it listens to. Pure
// functions: no I/O, no database (ownership and feed-access checks are described
// in the result for the caller to run).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <variant>
#include <vector>

#include "common/js_json.hpp"
#include "gateway/query_string.hpp"

namespace sluice::gateway {

// docs/protocol.md#sse-paths: the SSE stream name for a request path, or nullopt for
// "Unknown channel requested". `only_media` picks the :media variants.
std::optional<std::string> stream_name_for_path(std::string_view path, const Params& query);

// docs/protocol.md#only_media-truthiness: present, non-empty and not one of 0 f F false FALSE off OFF;
// a repeated parameter (array) is truthy.
bool only_media_truthy(const Params& query);

// docs/protocol.md#scopes-per-stream: `read`, or `read:notifications` for user:notification and
// `read:statuses` for every other name (unknown names included).
bool scopes_allow_stream(std::string_view stream_name, const std::vector<std::string>& scopes);
bool scopes_include_notifications(const std::vector<std::string>& scopes);

enum class FeedKind { none, live, topic };

// What a subscription to one stream needs.
struct StreamPlan {
  std::string name;                  // stream name, also the connected_channels label
  // Redis channels without namespace, in order; once admitted, the channel keys
  // (common/channel_key.hpp) of the token's instance.
  std::vector<std::string> channels;
  std::string echo_json;             // the WebSocket `stream` field, e.g. ["hashtag","Café"]
  bool filtered = false;             // docs/protocol.md#filtered-streams
  FeedKind feed_kind = FeedKind::none;
  std::optional<std::string> list_id;  // list ownership to check (docs/protocol.md#list-ownership)

  // docs/protocol.md#subscribe: a socket keeps one subscription per channel-id list.
  std::string key() const;
};

struct StreamError {
  int status;
  std::string message;
  // Sent as Retry-After when set (docs/protocol.md#auth-overload).
  int retry_after_seconds = 0;
};

// Who asks for a stream: the token's account and scopes.
struct StreamRequester {
  int64_t account_id = 0;
  std::vector<std::string> scopes;
};

// docs/protocol.md#stream-table and docs/protocol.md#websocket-stream-echo: channels for
// `stream_name` with `params` (query parameters or the fields of a WebSocket
// subscribe message). Errors use the reference's
// messages: "Unknown stream type" 400, "Missing tag name parameter" 400,
// "Missing list name parameter" 400, "An unexpected error occurred" 500.
std::variant<StreamPlan, StreamError> plan_stream(std::string_view stream_name, const Params& params,
                                                  const StreamRequester& requester);

// Every stream name the reference primes in its metrics (docs/protocol.md#metrics), in its order.
const std::vector<std::string>& metric_stream_names();

}  // namespace sluice::gateway
