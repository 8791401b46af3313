#pragma once
// ONE admission path for SSE requests and WebSocket subscriptions
// (docs/protocol.md#stream-authentication-middleware, docs/protocol.md#subscribe):
// token → scopes → stream plan → list ownership → feed access, with one error type,
// StreamError (the status and message the client is given).
#include <functional>
#include <memory>
#include <optional>
#include <string_view>
#include <variant>

#include "gateway/auth_client.hpp"
#include "gateway/socket.hpp"
#include "gateway/status_decision.hpp"
#include "gateway/streams.hpp"

namespace sluice::gateway {

class GatewayContext;

// How long a client refused for load is asked to wait (Retry-After).
inline constexpr int kRetryAfterSeconds = 5;

// docs/protocol.md#token-lookup: what a failed lookup tells the client.
std::optional<StreamError> token_refusal(const TokenResult& result);

// docs/protocol.md#list-ownership: a list that is not the account's, or a failed check,
// is the reference's 401; a busy auth tier is 503 with Retry-After.
std::optional<StreamError> list_refusal(LookupStatus status);

// docs/protocol.md#feed-access-settings: a failed read is the reference's 500; a busy
// auth tier is 503 with Retry-After.
std::optional<StreamError> feed_access_refusal(LookupStatus status);

// docs/protocol.md#scopes-per-stream.
std::optional<StreamError> scope_refusal(std::string_view stream_name, const AuthInfo& auth);

// A stream the client may have.
struct AdmittedStream {
  StreamPlan plan;
  // docs/protocol.md#feed-access-check (from the feed-access settings) and
  // docs/protocol.md#language-check (from the token's account).
  SubscriptionRules rules;
};
using AccessChecked = std::function<void(std::variant<AdmittedStream, StreamError>)>;

// docs/protocol.md#list-ownership and docs/protocol.md#feed-access-settings: checks
// `plan` for `auth` through the auth service; `done` runs on `io` (the caller's worker).
void check_stream_access(GatewayContext& context, asio::io_context& io, std::shared_ptr<const AuthInfo> auth,
                         StreamPlan plan, AccessChecked done);

}  // namespace sluice::gateway
