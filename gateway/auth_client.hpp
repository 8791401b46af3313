#pragma once
// The gateway's side of the auth service: asynchronous lookups whose callbacks
// run on a gRPC thread (callers post back to their own worker). Every call in
// flight is tracked; stop() cancels them and returns once every callback has run,
// so no reply can reach a worker that is gone.
#include <grpcpp/grpcpp.h>

#include <atomic>
#include <condition_variable>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <unordered_set>
#include <optional>
#include <string>
#include <vector>

#include "gateway/streams.hpp"
#include "sluice/v1/auth.grpc.pb.h"

namespace sluice::gateway {

// What a token grants, fixed for the life of a connection (docs/protocol.md#what-a-token-grants).
struct AuthInfo {
  // The instance the token belongs to (docs/hosting.md#tenants): its tenants-file name,
  // empty for the environment's one instance. Every later lookup for the connection,
  // its channels and its viewer data are that instance's.
  std::string tenant;
  int64_t access_token_id = 0;
  int64_t account_id = 0;
  int64_t permissions = 0;
  std::vector<std::string> scopes;
  std::optional<std::vector<std::string>> chosen_languages;
  // Set by admission: RecentKills' mark when this answer was last checked against kills
  // (GatewayContext::authenticate); the worker ends the connection at registration when
  // a kill for it came later. 0: checked against none.
  uint64_t kills_mark = 0;
};

// docs/protocol.md#feed-access-settings: VIEW_FEEDS lets a role see every feed whatever the settings say.
inline constexpr int64_t kPermissionViewFeeds = 0x100000;

// busy: the auth tier refused the lookup under load (docs/protocol.md#auth-overload).
enum class LookupStatus { ok, not_found, error, busy };

struct TokenResult {
  LookupStatus status = LookupStatus::error;
  std::shared_ptr<AuthInfo> info;
  // How old the auth tier's answer was (0: just queried).
  std::chrono::milliseconds age{0};
};

struct FeedAccess {
  bool local = true;
  bool remote = true;
};

// One viewer's relations from a batch (AuthClient::relations_batch).
struct RelationsResult {
  int64_t account_id = 0;
  LookupStatus status = LookupStatus::error;
  std::shared_ptr<const sluice::v1::RelationsReply> relations;  // set when status is ok
};

class AuthClient {
 public:
  // Viewers per relations_batch call: bounded so that a reply stays far below gRPC's
  // 4 MB message limit even when some viewers block or mute thousands of accounts.
  static constexpr size_t kMaxRelationsBatch = 100;

  AuthClient(std::shared_ptr<grpc::Channel> channel, std::string internal_token);
  ~AuthClient();
  AuthClient(const AuthClient&) = delete;
  AuthClient& operator=(const AuthClient&) = delete;

  // Cancels every call in flight and waits until each callback has returned; later
  // calls fail at once with LookupStatus::error. Idempotent.
  void stop();
  size_t calls_in_flight() const;

  // Every lookup names its instance (`tenant`, AuthInfo::tenant): empty for the
  // environment's one instance.
  // `fresh` bypasses the auth service's cache (after a kill, see RecentKills).
  void lookup_token(const std::string& tenant, const std::string& token, std::function<void(TokenResult)> done, bool fresh = false);
  // status ok + owned, not_found (not owned), or error.
  void check_list(const std::string& tenant, const std::string& list_id, int64_t account_id, std::function<void(LookupStatus)> done);
  void feed_access(const std::string& tenant, FeedKind kind, std::function<void(LookupStatus, FeedAccess)> done);
  // docs/protocol.md#relations and docs/protocol.md#keyword-filters: viewers' relations and keyword filters.
  // Relations at most `max_age` old (SLUICE_RELATIONS_MAX_STALENESS_MS, which the gateway owns),
  // several viewers in one GetRelationsBatch call (at most kMaxRelationsBatch);
  // against an auth service without it (UNIMPLEMENTED: an older auth tier during a rolling
  // upgrade) one GetRelations per viewer, from then on. `done` runs once, with one result
  // per account in the order asked, on a gRPC thread.
  void relations_batch(const std::string& tenant, std::vector<int64_t> account_ids, std::chrono::milliseconds max_age,
                       std::function<void(std::vector<RelationsResult>)> done);
  void filters(const std::string& tenant, int64_t account_id, bool fresh,
               std::function<void(LookupStatus, std::shared_ptr<const sluice::v1::FiltersReply>)> done);

 private:
  template <typename Request, typename Reply>
  struct Call;
  // Starts `rpc` for `call` unless stopping; `on_done` gets the status and runs on
  // a gRPC thread (or inline with CANCELLED once stopped).
  template <typename Request, typename Reply, typename Rpc, typename OnDone>
  void start(std::shared_ptr<Call<Request, Reply>> call, Rpc rpc, OnDone on_done);
  // One viewer's relations (GetRelations): relations_batch's way to an older auth tier.
  void relations(const std::string& tenant, int64_t account_id, std::chrono::milliseconds max_age,
                 std::function<void(LookupStatus, std::shared_ptr<const sluice::v1::RelationsReply>)> done);

  std::unique_ptr<sluice::v1::Auth::Stub> stub_;
  std::string internal_token_;
  mutable std::mutex mutex_;
  std::condition_variable idle_;
  std::unordered_set<grpc::ClientContext*> in_flight_;
  bool stopping_ = false;
  std::atomic<bool> relations_batch_supported_{true};
};

}  // namespace sluice::gateway
