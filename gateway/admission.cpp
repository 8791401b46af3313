#include "gateway/admission.hpp"

#include <boost/asio/post.hpp>

#include "common/channel_key.hpp"
#include "gateway/gateway_context.hpp"

namespace sluice::gateway {

namespace {
// docs/protocol.md#auth-overload: what every lookup the auth tier refused under load tells the client.
StreamError service_busy() { return StreamError{503, "Service busy", kRetryAfterSeconds}; }
}  // namespace

std::optional<StreamError> token_refusal(const TokenResult& result) {
  switch (result.status) {
    case LookupStatus::ok: return std::nullopt;
    case LookupStatus::not_found: return StreamError{401, "Invalid access token"};
    case LookupStatus::busy: return service_busy();
    case LookupStatus::error: break;
  }
  return StreamError{500, "An unexpected error occurred"};
}

std::optional<StreamError> list_refusal(LookupStatus status) {
  if (status == LookupStatus::ok) return std::nullopt;
  if (status == LookupStatus::busy) return service_busy();
  return StreamError{401, "Not authorized to stream this list"};
}

std::optional<StreamError> feed_access_refusal(LookupStatus status) {
  if (status == LookupStatus::ok) return std::nullopt;
  if (status == LookupStatus::busy) return service_busy();
  return StreamError{500, "An unexpected error occurred"};
}

std::optional<StreamError> scope_refusal(std::string_view stream_name, const AuthInfo& auth) {
  if (scopes_allow_stream(stream_name, auth.scopes)) return std::nullopt;
  return StreamError{401, "Access token does not have the required scopes"};
}

namespace {

void check_feed_access(GatewayContext& context, asio::io_context& io, const AuthInfo& auth,
                       std::shared_ptr<AdmittedStream> admitted, AccessChecked done) {
  if (admitted->plan.feed_kind == FeedKind::none || (auth.permissions & kPermissionViewFeeds)) {
    return done(std::move(*admitted));
  }
  context.auth.feed_access(auth.tenant, admitted->plan.feed_kind, [admitted, done = std::move(done), &io](LookupStatus status,
                                                                                             FeedAccess access) {
    asio::post(io, [admitted, done, status, access] {
      if (auto refusal = feed_access_refusal(status)) return done(std::move(*refusal));
      admitted->rules.filter_local = !access.local;
      admitted->rules.filter_remote = !access.remote;
      done(std::move(*admitted));
    });
  });
}

}  // namespace

void check_stream_access(GatewayContext& context, asio::io_context& io, std::shared_ptr<const AuthInfo> auth,
                         StreamPlan plan, AccessChecked done) {
  auto admitted = std::make_shared<AdmittedStream>();
  admitted->plan = std::move(plan);
  admitted->rules.languages = ChosenLanguages(auth->chosen_languages);
  // docs/hosting.md#tenants: the stream hears its own instance's channels only.
  if (!auth->tenant.empty()) {
    for (auto& channel : admitted->plan.channels) channel = sluice::channel_key(auth->tenant, channel);
  }
  if (!admitted->plan.list_id) return check_feed_access(context, io, *auth, std::move(admitted), std::move(done));
  context.auth.check_list(auth->tenant, *admitted->plan.list_id, auth->account_id,
                          [&context, &io, auth, admitted, done = std::move(done)](LookupStatus status) mutable {
                            asio::post(io, [&context, &io, auth, admitted, done = std::move(done), status]() mutable {
                              if (auto refusal = list_refusal(status)) return done(std::move(*refusal));
                              check_feed_access(context, io, *auth, std::move(admitted), std::move(done));
                            });
                          });
}

}  // namespace sluice::gateway
