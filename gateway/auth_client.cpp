#include "gateway/auth_client.hpp"

#include <chrono>
#include <mutex>

#include "common/grpc_auth.hpp"
#include "common/grpc_channel.hpp"
#include "common/log.hpp"

namespace sluice::gateway {

namespace v1 = sluice::v1;

// One in-flight unary call: its context, request and reply must outlive the call. Every
// request names the instance it is for (docs/hosting.md#tenants; empty without a
// tenants file).
template <typename Request, typename Reply>
struct AuthClient::Call {
  explicit Call(const std::string& tenant) { request.set_tenant(tenant); }
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

namespace {
// How a failed call reads (docs/protocol.md#auth-overload). Busy, so the client is told
// to retry (503, Retry-After): the auth tier is overloaded, or stopping on every replica
// tried, or it does not serve the instance yet because its copy of the tenants file is
// older than ours (docs/hosting.md#reloading). Anything else is a failure.
LookupStatus failed_lookup(const grpc::Status& status, const std::string& tenant) {
  const bool retry =
      status.error_code() == grpc::StatusCode::RESOURCE_EXHAUSTED ||
      (status.error_code() == grpc::StatusCode::UNAVAILABLE && status.error_message() == kAuthStoppingMessage) ||
      (status.error_code() == grpc::StatusCode::NOT_FOUND && !tenant.empty());
  return retry ? LookupStatus::busy : LookupStatus::error;
}
}  // namespace

void AuthClient::lookup_token(const std::string& tenant, const std::string& token, std::function<void(TokenResult)> done,
                              bool fresh) {
  auto call = std::make_shared<Call<v1::TokenRequest, v1::TokenReply>>(tenant);
  call->request.set_token(token);
  call->request.set_fresh(fresh);
  start(call, [](auto* api, auto... args) { api->LookupToken(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          TokenResult result;
          if (!status.ok()) {
            log::warn("token lookup failed",
                      log::for_tenant(call->request.tenant(), {{"grpc_status", static_cast<int>(status.error_code())},
                                                               {"detail", status.error_message()}}));
            result.status = failed_lookup(status, call->request.tenant());
          } else if (!call->reply.found()) {
            result.status = LookupStatus::not_found;
          } else {
            auto info = std::make_shared<AuthInfo>();
            info->tenant = call->request.tenant();
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

void AuthClient::check_list(const std::string& tenant, const std::string& list_id, int64_t account_id,
                            std::function<void(LookupStatus)> done) {
  auto call = std::make_shared<Call<v1::ListOwnershipRequest, v1::ListOwnershipReply>>(tenant);
  call->request.set_list_id(list_id);
  call->request.set_account_id(account_id);
  start(call, [](auto* api, auto... args) { api->CheckListOwnership(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(failed_lookup(status, call->request.tenant()));
          done(call->reply.owned() ? LookupStatus::ok : LookupStatus::not_found);
        });
}

void AuthClient::feed_access(const std::string& tenant, FeedKind kind, std::function<void(LookupStatus, FeedAccess)> done) {
  auto call = std::make_shared<Call<v1::FeedAccessRequest, v1::FeedAccessReply>>(tenant);
  call->request.set_kind(kind == FeedKind::topic ? v1::FEED_KIND_TOPIC : v1::FEED_KIND_LIVE);
  start(call, [](auto* api, auto... args) { api->GetFeedAccess(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(failed_lookup(status, call->request.tenant()), FeedAccess{});
          done(LookupStatus::ok, FeedAccess{call->reply.local_access(), call->reply.remote_access()});
        });
}

void AuthClient::relations(const std::string& tenant, int64_t account_id, std::chrono::milliseconds max_age,
                           std::function<void(LookupStatus, std::shared_ptr<const v1::RelationsReply>)> done) {
  auto call = std::make_shared<Call<v1::RelationsRequest, v1::RelationsReply>>(tenant);
  call->request.set_account_id(account_id);
  call->request.set_max_age_ms(max_age.count());
  start(call, [](auto* api, auto... args) { api->GetRelations(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(LookupStatus::error, nullptr);
          // The reply lives in `call`: share it without a copy.
          done(LookupStatus::ok, std::shared_ptr<const v1::RelationsReply>(call, &call->reply));
        });
}

void AuthClient::relations_batch(const std::string& tenant, std::vector<int64_t> account_ids, std::chrono::milliseconds max_age,
                                 std::function<void(std::vector<RelationsResult>)> done) {
  if (!relations_batch_supported_.load(std::memory_order_relaxed)) {
    // One call per viewer; the answers come back on any gRPC thread, so they are
    // gathered under a lock and the last one hands them over.
    struct Gathered {
      std::mutex mutex;
      std::vector<RelationsResult> results;
      size_t remaining;
      std::function<void(std::vector<RelationsResult>)> done;
    };
    auto gathered = std::make_shared<Gathered>();
    gathered->results.resize(account_ids.size());
    gathered->remaining = account_ids.size();
    gathered->done = std::move(done);
    if (account_ids.empty()) return gathered->done({});
    for (size_t i = 0; i < account_ids.size(); ++i) {
      const int64_t account = account_ids[i];
      relations(tenant, account, max_age, [gathered, i, account](LookupStatus status,
                                                         std::shared_ptr<const v1::RelationsReply> reply) {
        std::unique_lock lock(gathered->mutex);
        gathered->results[i] = RelationsResult{account, status, std::move(reply)};
        if (--gathered->remaining > 0) return;
        lock.unlock();
        gathered->done(std::move(gathered->results));
      });
    }
    return;
  }
  auto call = std::make_shared<Call<v1::RelationsBatchRequest, v1::RelationsBatchReply>>(tenant);
  call->request.mutable_account_ids()->Add(account_ids.begin(), account_ids.end());
  call->request.set_max_age_ms(max_age.count());
  start(call, [](auto* api, auto... args) { api->GetRelationsBatch(args...); },
        [this, max_age, done = std::move(done)](const auto& call, const grpc::Status& status) {
          const auto& asked = call->request.account_ids();
          if (status.error_code() == grpc::StatusCode::UNIMPLEMENTED) {
            log::info("the auth service has no batched relations lookup; asking per viewer");
            relations_batch_supported_.store(false, std::memory_order_relaxed);
            return relations_batch(call->request.tenant(), {asked.begin(), asked.end()}, max_age, done);
          }
          std::vector<RelationsResult> results;
          results.reserve(asked.size());
          const auto& entries = call->reply.entries();
          for (int i = 0; i < asked.size(); ++i) {
            RelationsResult result{asked[i], LookupStatus::error, nullptr};
            // An entry is used only where it answers the account asked there.
            if (status.ok() && i < entries.size() && entries[i].account_id() == asked[i] && entries[i].ok()) {
              result.status = LookupStatus::ok;
              // The reply lives in `call`: share it without a copy.
              result.relations = std::shared_ptr<const v1::RelationsReply>(call, &entries[i].relations());
            }
            results.push_back(std::move(result));
          }
          done(std::move(results));
        });
}

void AuthClient::filters(const std::string& tenant, int64_t account_id, bool fresh,
                         std::function<void(LookupStatus, std::shared_ptr<const v1::FiltersReply>)> done) {
  auto call = std::make_shared<Call<v1::FiltersRequest, v1::FiltersReply>>(tenant);
  call->request.set_account_id(account_id);
  call->request.set_fresh(fresh);
  start(call, [](auto* api, auto... args) { api->GetFilters(args...); },
        [done = std::move(done)](const auto& call, const grpc::Status& status) {
          if (!status.ok()) return done(LookupStatus::error, nullptr);
          done(LookupStatus::ok, std::shared_ptr<const v1::FiltersReply>(call, &call->reply));
        });
}

}  // namespace sluice::gateway
