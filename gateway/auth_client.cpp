#include "gateway/auth_client.hpp"

#include <chrono>

#include "common/grpc_auth.hpp"
#include "common/log.hpp"

namespace sluice::gateway {

namespace v1 = sluice::v1;

// One in-flight unary call: its context, request and reply must outlive the call.
template <typename Request, typename Reply>
struct AuthClient::Call {
  grpc::ClientContext context;
  Request request;
  Reply reply;
};

namespace {
// The reference waits up to 15 s for a pool connection; allow for that and the query.
constexpr auto kDeadline = std::chrono::seconds(20);
}  // namespace

AuthClient::AuthClient(std::shared_ptr<grpc::Channel> channel, std::string internal_token)
    : stub_(v1::Auth::NewStub(std::move(channel))), internal_token_(std::move(internal_token)) {}

AuthClient::~AuthClient() { stop(); }

void AuthClient::stop() {
  std::unique_lock lock(mutex_);
  stopping_ = true;
  for (auto* context : in_flight_) context->TryCancel();
  idle_.wait(lock, [this] { return in_flight_.empty(); });
}

size_t AuthClient::calls_in_flight() const {
  std::lock_guard lock(mutex_);
  return in_flight_.size();
}

template <typename Request, typename Reply, typename Rpc, typename OnDone>
void AuthClient::start(std::shared_ptr<Call<Request, Reply>> call, Rpc rpc, OnDone on_done) {
  bool refused;
  {
    std::lock_guard lock(mutex_);
    refused = stopping_;
    if (!refused) in_flight_.insert(&call->context);
  }
  if (refused) {
    on_done(call, grpc::Status(grpc::StatusCode::CANCELLED, "the gateway is stopping"));
    return;
  }
  call->context.set_deadline(std::chrono::system_clock::now() + kDeadline);
  attach_internal_token(call->context, internal_token_);
  rpc(stub_->async(), &call->context, &call->request, &call->reply,
      [this, call, on_done = std::move(on_done)](grpc::Status status) {
        on_done(call, status);
        // Last: stop() may return, and the client be destroyed, from here on.
        std::lock_guard lock(mutex_);
        in_flight_.erase(&call->context);
        if (in_flight_.empty()) idle_.notify_all();
      });
}

void AuthClient::lookup_token(const std::string& token, std::function<void(TokenResult)> done, bool fresh) {
  auto call = std::make_shared<Call<v1::TokenRequest, v1::TokenReply>>();
  call->request.set_token(token);
  call->request.set_fresh(fresh);
  start(call, [](auto* api, auto... args) { api->LookupToken(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          TokenResult result;
          if (!status.ok()) {
            log::warn("token lookup failed",
                      {{"grpc_status", static_cast<int>(status.error_code())}, {"detail", status.error_message()}});
            result.status = status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ? LookupStatus::busy
                                                                                    : LookupStatus::error;
          } else if (!call->reply.found()) {
            result.status = LookupStatus::not_found;
          } else {
            auto info = std::make_shared<AuthInfo>();
            const auto& r = call->reply;
            info->access_token_id = r.access_token_id();
            info->account_id = r.account_id();
            info->permissions = r.permissions();
            info->scopes.assign(r.scopes().begin(), r.scopes().end());
            if (r.has_chosen_languages()) {
              info->chosen_languages.emplace(r.chosen_languages().begin(), r.chosen_languages().end());
            }
            result.status = LookupStatus::ok;
            result.info = std::move(info);
            result.age = std::chrono::milliseconds(r.age_ms());
          }
          done(std::move(result));
        });
}

void AuthClient::check_list(const std::string& list_id, int64_t account_id, std::function<void(LookupStatus)> done) {
  auto call = std::make_shared<Call<v1::ListOwnershipRequest, v1::ListOwnershipReply>>();
  call->request.set_list_id(list_id);
  call->request.set_account_id(account_id);
  start(call, [](auto* api, auto... args) { api->CheckListOwnership(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(LookupStatus::error);
          done(call->reply.owned() ? LookupStatus::ok : LookupStatus::not_found);
        });
}

void AuthClient::feed_access(FeedKind kind, std::function<void(LookupStatus, FeedAccess)> done) {
  auto call = std::make_shared<Call<v1::FeedAccessRequest, v1::FeedAccessReply>>();
  call->request.set_kind(kind == FeedKind::topic ? v1::FEED_KIND_TOPIC : v1::FEED_KIND_LIVE);
  start(call, [](auto* api, auto... args) { api->GetFeedAccess(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(LookupStatus::error, FeedAccess{});
          done(LookupStatus::ok, FeedAccess{call->reply.local_access(), call->reply.remote_access()});
        });
}

void AuthClient::relations(int64_t account_id, std::chrono::milliseconds max_age,
                           std::function<void(LookupStatus, std::shared_ptr<const v1::RelationsReply>)> done) {
  auto call = std::make_shared<Call<v1::RelationsRequest, v1::RelationsReply>>();
  call->request.set_account_id(account_id);
  call->request.set_max_age_ms(max_age.count());
  start(call, [](auto* api, auto... args) { api->GetRelations(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(LookupStatus::error, nullptr);
          // The reply lives in `call`: share it without a copy.
          done(LookupStatus::ok, std::shared_ptr<const v1::RelationsReply>(call, &call->reply));
        });
}

void AuthClient::filters(int64_t account_id, bool fresh,
                         std::function<void(LookupStatus, std::shared_ptr<const v1::FiltersReply>)> done) {
  auto call = std::make_shared<Call<v1::FiltersRequest, v1::FiltersReply>>();
  call->request.set_account_id(account_id);
  call->request.set_fresh(fresh);
  start(call, [](auto* api, auto... args) { api->GetFilters(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(LookupStatus::error, nullptr);
          done(LookupStatus::ok, std::shared_ptr<const v1::FiltersReply>(call, &call->reply));
        });
}

}  // namespace sluice::gateway
