#pragma once
// The gRPC face of the auth tier (proto/sluice/v1/auth.proto), on gRPC's callback API:
// a cached answer finishes the call on gRPC's thread at once; a miss is answered later
// from a worker thread, so gRPC's threads never wait for PostgreSQL.
#include <grpcpp/grpcpp.h>

#include <functional>
#include <mutex>
#include <string>

#include "auth/auth_tenants.hpp"
#include "sluice/v1/auth.grpc.pb.h"

namespace sluice {

class AuthService final : public v1::Auth::CallbackService {
 public:
  // `internal_token`: SLUICE_INTERNAL_TOKEN; calls without it get UNAUTHENTICATED
  // (empty: no check). Each call is answered from its tenant's caches and database.
  AuthService(AuthTenants& tenants, std::string internal_token);

  // Whether the system events that drop revoked tokens from the caches reach this tier
  // now, for an instance. While they may be missed (no broker stream up, the broker's
  // Redis connection down), a cached "found" could be a token a kill has since revoked:
  // token lookups then ask PostgreSQL each time, as the reference always does
  // (docs/protocol.md#token-lookup). Unset: cached answers are trusted (a tier without
  // system events relies on the TTL alone). Any thread; `live` is called under a lock
  // this takes, so once it returns, no call uses the previous one any more.
  using SystemEventsLive = std::function<bool(const std::string& tenant)>;
  void set_system_events_live(SystemEventsLive live);

  grpc::ServerUnaryReactor* LookupToken(grpc::CallbackServerContext* context, const v1::TokenRequest* request,
                                        v1::TokenReply* reply) override;
  grpc::ServerUnaryReactor* CheckListOwnership(grpc::CallbackServerContext* context,
                                               const v1::ListOwnershipRequest* request,
                                               v1::ListOwnershipReply* reply) override;
  grpc::ServerUnaryReactor* GetFeedAccess(grpc::CallbackServerContext* context, const v1::FeedAccessRequest* request,
                                          v1::FeedAccessReply* reply) override;
  grpc::ServerUnaryReactor* GetRelations(grpc::CallbackServerContext* context, const v1::RelationsRequest* request,
                                         v1::RelationsReply* reply) override;
  grpc::ServerUnaryReactor* GetRelationsBatch(grpc::CallbackServerContext* context,
                                              const v1::RelationsBatchRequest* request,
                                              v1::RelationsBatchReply* reply) override;
  grpc::ServerUnaryReactor* GetFilters(grpc::CallbackServerContext* context, const v1::FiltersRequest* request,
                                       v1::FiltersReply* reply) override;

 private:
  // Every call starts here: the shared secret, then the request's instance. `tenant` is
  // null, with the reactor finished, when the secret is missing (UNAUTHENTICATED), this
  // tier does not serve the instance (NOT_FOUND) or its settings are wrong
  // (FAILED_PRECONDITION). Lookups keep the tenant until they answer.
  struct Call {
    grpc::ServerUnaryReactor* reactor;
    std::shared_ptr<TenantAuth> tenant;
  };
  Call start(grpc::CallbackServerContext* context, const std::string& tenant_name);

  bool system_events_live(const std::string& tenant) const;

  AuthTenants& tenants_;
  const std::string internal_token_;
  mutable std::mutex live_mutex_;
  SystemEventsLive system_events_live_;  // under live_mutex_
};

// Database failure (and shutdown) → UNAVAILABLE; NULL scopes → INTERNAL (docs/protocol.md#token-lookup:
// both are 500 for the client, only the first is worth retrying elsewhere); a busy tier
// → RESOURCE_EXHAUSTED. Failures, not refusals, are logged; `logged` (if given) says
// whether this one was. `tenant` names the instance in the log line (empty without a
// tenants file).
grpc::Status status_for_error(std::exception_ptr error, const std::string& tenant, bool* logged = nullptr);

}  // namespace sluice
