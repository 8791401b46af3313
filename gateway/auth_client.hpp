#pragma once
// The gateway's side of the auth service: asynchronous lookups whose callbacks
// run on a gRPC thread (callers post back to their own worker).
#include <grpcpp/grpcpp.h>

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "gateway/streams.hpp"
#include "sluice/v1/auth.grpc.pb.h"

namespace sluice::gateway {

// What a token grants, fixed for the life of a connection (contract §3.3).
struct AuthInfo {
  int64_t access_token_id = 0;
  int64_t account_id = 0;
  int64_t permissions = 0;
  std::vector<std::string> scopes;
  std::optional<std::vector<std::string>> chosen_languages;
};

// §7.5: VIEW_FEEDS lets a role see every feed whatever the settings say.
inline constexpr int64_t kPermissionViewFeeds = 0x100000;

enum class LookupStatus { ok, not_found, error };

struct TokenResult {
  LookupStatus status = LookupStatus::error;
  std::shared_ptr<const AuthInfo> info;
};

struct FeedAccess {
  bool local = true;
  bool remote = true;
};

class AuthClient {
 public:
  AuthClient(std::shared_ptr<grpc::Channel> channel, std::string internal_token);

  // `fresh` bypasses the auth service's cache (after a kill, see RecentKills).
  void lookup_token(const std::string& token, std::function<void(TokenResult)> done, bool fresh = false);
  // status ok + owned, not_found (not owned), or error.
  void check_list(const std::string& list_id, int64_t account_id, std::function<void(LookupStatus)> done);
  void feed_access(FeedKind kind, std::function<void(LookupStatus, FeedAccess)> done);
  // §7.2 step 3 and §7.4: one viewer's relations and keyword filters.
  void relations(int64_t account_id,
                 std::function<void(LookupStatus, std::shared_ptr<const sluice::v1::RelationsReply>)> done);
  void filters(int64_t account_id, bool fresh,
               std::function<void(LookupStatus, std::shared_ptr<const sluice::v1::FiltersReply>)> done);

 private:
  template <typename Request, typename Reply>
  struct Call;

  std::unique_ptr<sluice::v1::Auth::Stub> stub_;
  std::string internal_token_;
};

}  // namespace sluice::gateway
