#include "auth/auth_service.hpp"

#include <memory>
#include <mutex>
#include <vector>

#include "auth/auth_queries.hpp"
#include "common/grpc_auth.hpp"
#include "common/log.hpp"

namespace sluice {

grpc::Status status_for_error(std::exception_ptr error, const std::string& tenant, bool* logged) {
  if (logged) *logged = false;
  try {
    std::rethrow_exception(error);
  } catch (const ServiceStopping& e) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, e.what());
  } catch (const WorkRefused& e) {
    return grpc::Status(grpc::StatusCode::RESOURCE_EXHAUSTED, e.what());
  } catch (const UnqueryableTokenError& e) {
    // The client's own doing, as cheap to send as any bad token: no warning per request,
    // and a status the gateways' retry policy does not send to another replica.
    return grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, e.what());
  } catch (const NullScopesError& e) {
    log::error("token lookup failed", log::for_tenant(tenant, {{"error", e.what()}}));
    if (logged) *logged = true;
    return grpc::Status(grpc::StatusCode::INTERNAL, e.what());
  } catch (const std::exception& e) {
    log::warn("database query failed", log::for_tenant(tenant, {{"error", e.what()}}));
    if (logged) *logged = true;
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, e.what());
  } catch (...) {
    return grpc::Status(grpc::StatusCode::UNAVAILABLE, "database query failed");
  }
}

AuthService::AuthService(AuthTenants& tenants, std::string internal_token)
    : tenants_(tenants), internal_token_(std::move(internal_token)) {}

void AuthService::set_system_events_live(SystemEventsLive live) {
  std::lock_guard lock(live_mutex_);
  system_events_live_ = std::move(live);
}

bool AuthService::system_events_live(const std::string& tenant) const {
  // Asked under the lock, so that set_system_events_live({}) returns only once no call
  // still reads what the old answer refers to (the caller may then destroy it).
  std::lock_guard lock(live_mutex_);
  return !system_events_live_ || system_events_live_(tenant);
}

AuthService::Call AuthService::start(grpc::CallbackServerContext* context, const std::string& tenant_name) {
  Call call{context->DefaultReactor(), nullptr};
  if (!internal_token_ok(*context, internal_token_)) {
    call.reactor->Finish(grpc::Status(grpc::StatusCode::UNAUTHENTICATED, "missing or wrong internal token"));
    return call;
  }
  AuthTenants::Found found = tenants_.find(tenant_name);
  if (!found.tenant) {
    call.reactor->Finish(grpc::Status(
        found.unknown ? grpc::StatusCode::NOT_FOUND : grpc::StatusCode::FAILED_PRECONDITION, found.error));
  }
  call.tenant = std::move(found.tenant);
  return call;
}

namespace {

// The answer to a call from one cache lookup: the reply, with the answer's age where the
// reply carries one (the gateway bounds staleness with it), or the error's status.
template <class Reply>
AuthCache::Done<Reply> finish_with(grpc::ServerUnaryReactor* reactor, Reply* reply, std::shared_ptr<TenantAuth> tenant) {
  return [reactor, reply, tenant = std::move(tenant)](const AuthAnswer<Reply>& answer) {
    if (!answer.value) return reactor->Finish(status_for_error(answer.error, tenant->name()));
    *reply = *answer.value;
    if constexpr (requires { reply->set_age_ms(int64_t{}); }) reply->set_age_ms(answer.age.count());
    reactor->Finish(grpc::Status::OK);
  };
}

}  // namespace

grpc::ServerUnaryReactor* AuthService::LookupToken(grpc::CallbackServerContext* context,
                                                   const v1::TokenRequest* request, v1::TokenReply* reply) {
  auto [reactor, tenant] = start(context, request->tenant());
  if (!tenant) return reactor;
  const bool trusted = system_events_live(request->tenant());
  if (request->fresh() || !trusted) tenant->cache().forget_token(request->token());
  auto finish = finish_with(reactor, reply, tenant);
  if (!trusted) {
    // Nor is the answer kept: a kill that comes before the events are live again would
    // not drop it (the caches are emptied only when they come back).
    finish = [tenant = tenant, token = request->token(), finish = std::move(finish)](const AuthAnswer<v1::TokenReply>& answer) {
      tenant->cache().forget_token(token);
      finish(answer);
    };
  }
  tenant->cache().lookup_token(request->token(), std::move(finish));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::CheckListOwnership(grpc::CallbackServerContext* context,
                                                          const v1::ListOwnershipRequest* request,
                                                          v1::ListOwnershipReply* reply) {
  auto [reactor, tenant] = start(context, request->tenant());
  if (!tenant) return reactor;
  tenant->cache().check_list_ownership(request->list_id(), request->account_id(),
                              [reactor = reactor, reply, tenant = tenant](const AuthAnswer<bool>& answer) {
                                if (!answer.value) return reactor->Finish(status_for_error(answer.error, tenant->name()));
                                reply->set_owned(*answer.value);
                                reactor->Finish(grpc::Status::OK);
                              });
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::GetFeedAccess(grpc::CallbackServerContext* context,
                                                     const v1::FeedAccessRequest* request,
                                                     v1::FeedAccessReply* reply) {
  auto [reactor, tenant] = start(context, request->tenant());
  if (!tenant) return reactor;
  if (request->kind() != v1::FEED_KIND_LIVE && request->kind() != v1::FEED_KIND_TOPIC) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "feed kind must be LIVE or TOPIC"));
    return reactor;
  }
  tenant->cache().feed_access(request->kind(), finish_with(reactor, reply, tenant));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::GetRelations(grpc::CallbackServerContext* context,
                                                    const v1::RelationsRequest* request, v1::RelationsReply* reply) {
  auto [reactor, tenant] = start(context, request->tenant());
  if (!tenant) return reactor;
  // The gateway owns the staleness bound (SLUICE_RELATIONS_MAX_STALENESS_MS) and sends
  // it; an older gateway that does not gets the documented default.
  constexpr int64_t kDefaultMaxAgeMs = 5000;
  auto max_age = std::chrono::milliseconds(
      request->has_max_age_ms() ? std::max<int64_t>(0, request->max_age_ms()) : kDefaultMaxAgeMs);
  std::vector<AuthCache::Done<v1::RelationsReply>> done;
  done.push_back(finish_with(reactor, reply, tenant));
  tenant->cache().relations({request->account_id()}, max_age, std::move(done));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::GetRelationsBatch(grpc::CallbackServerContext* context,
                                                         const v1::RelationsBatchRequest* request,
                                                         v1::RelationsBatchReply* reply) {
  auto [reactor, tenant] = start(context, request->tenant());
  if (!tenant) return reactor;
  constexpr int kMaxBatch = 1000;
  if (request->account_ids_size() > kMaxBatch) {
    reactor->Finish(grpc::Status(grpc::StatusCode::INVALID_ARGUMENT, "at most 1000 accounts per batch"));
    return reactor;
  }
  if (request->account_ids_size() == 0) {
    reactor->Finish(grpc::Status::OK);
    return reactor;
  }
  // Each viewer is looked up as by GetRelations (same cache, same bound), and those not
  // cached are one query together. The answers come back on whichever thread ran them
  // (a hit inline, the rest on a worker), so they are counted under a lock and the last
  // one finishes the call.
  struct Pending {
    std::mutex mutex;
    int remaining;
    bool failure_logged = false;  // one line a batch: with PostgreSQL away, all fail alike
  };
  auto pending = std::make_shared<Pending>();
  const int count = request->account_ids_size();
  pending->remaining = count;
  std::vector<int64_t> accounts(request->account_ids().begin(), request->account_ids().end());
  std::vector<AuthCache::Done<v1::RelationsReply>> dones;
  dones.reserve(count);
  for (int64_t account : accounts) {
    v1::RelationsBatchEntry* entry = reply->add_entries();
    entry->set_account_id(account);
    // Init-captures: clang before 16 cannot capture a structured binding by name.
    dones.push_back([reactor = reactor, entry, pending, tenant = tenant](const AuthAnswer<v1::RelationsReply>& answer) {
      std::unique_lock lock(pending->mutex);
      if (answer.value) {
        entry->set_ok(true);
        *entry->mutable_relations() = *answer.value;
        entry->mutable_relations()->set_age_ms(answer.age.count());
      } else if (!pending->failure_logged) {
        // Logged as GetRelations logs it, the first failure of the batch only (a refusal
        // is not one); the other viewers still get theirs.
        (void)status_for_error(answer.error, tenant->name(), &pending->failure_logged);
      }
      if (--pending->remaining > 0) return;
      lock.unlock();
      reactor->Finish(grpc::Status::OK);
    });
  }
  const auto max_age = std::chrono::milliseconds(std::max<int64_t>(0, request->max_age_ms()));
  // The last answer may finish the call (and free request and reply) inside this call,
  // so it is given copies only.
  tenant->cache().relations(accounts, max_age, std::move(dones));
  return reactor;
}

grpc::ServerUnaryReactor* AuthService::GetFilters(grpc::CallbackServerContext* context,
                                                  const v1::FiltersRequest* request, v1::FiltersReply* reply) {
  auto [reactor, tenant] = start(context, request->tenant());
  if (!tenant) return reactor;
  if (request->fresh()) tenant->cache().forget_filters(request->account_id());
  tenant->cache().filters(request->account_id(), finish_with(reactor, reply, tenant));
  return reactor;
}

}  // namespace sluice
