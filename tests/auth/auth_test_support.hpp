#pragma once
// Shared pieces of the auth suite: one real PostgreSQL for the whole suite, the auth
// tier behind a real (in-process) gRPC channel, metric readers and polling.
#include <grpcpp/grpcpp.h>

#include <signal.h>
#include <sys/types.h>

#include <atomic>
#include <chrono>
#include <fstream>
#include <functional>
#include <memory>
#include <string>
#include <thread>

#include "auth/auth_tier.hpp"
#include "common/metrics.hpp"
#include "sluice/v1/auth.grpc.pb.h"
#include "tests/support/servers.hpp"

namespace sluice::auth_test {

// Started on first use, stopped when the suite's process exits.
inline testing::PostgresServer& shared_pg() {
  static testing::PostgresServer server;
  return server;
}

inline PgConfig pg_config(int pool_size = 4) {
  auto& pg = shared_pg();
  PgConfig config;
  config.params = {{"host", "127.0.0.1"},
                   {"port", std::to_string(pg.port())},
                   {"user", pg.user()},
                   {"dbname", pg.database()},
                   {"connect_timeout", "15"},
                   {"application_name", ""}};
  config.pool_size = pool_size;
  return config;
}

inline uint64_t queries_sent(const std::string& query) {
  return metrics::Registry::global().counter("sluice_auth_queries_total", "", {{"query", query}}).value();
}
inline uint64_t cache_hits(const std::string& cache) {
  return metrics::Registry::global().counter("sluice_auth_cache_hits_total", "", {{"cache", cache}}).value();
}
inline uint64_t cache_misses(const std::string& cache) {
  return metrics::Registry::global().counter("sluice_auth_cache_misses_total", "", {{"cache", cache}}).value();
}

// Polls `condition` until it holds or `timeout` passes.
inline bool eventually(const std::function<bool()>& condition,
                       std::chrono::milliseconds timeout = std::chrono::seconds(20)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
  }
  return condition();
}

// A clock the test moves by hand, for TTL expiry without sleeping.
struct ManualClock {
  std::shared_ptr<std::atomic<int64_t>> ms = std::make_shared<std::atomic<int64_t>>(1'000'000);
  void advance(std::chrono::milliseconds by) { ms->fetch_add(by.count()); }
  std::function<std::chrono::steady_clock::time_point()> function() const {
    auto shared = ms;
    return [shared] { return std::chrono::steady_clock::time_point(std::chrono::milliseconds(shared->load())); };
  }
};

// Stops the shared PostgreSQL with a fast shutdown of the postmaster itself.
// PostgresServer::stop() signals the `runuser` wrapper when the suite runs as root,
// which turns into a smart shutdown and then SIGKILL of the postmaster, leaving
// backends behind that keep the next start() from working.
inline void stop_shared_pg() {
  auto& pg = shared_pg();
  std::ifstream pid_file(pg.query_value("SHOW data_directory") + "/postmaster.pid");
  pid_t postmaster = 0;
  pid_file >> postmaster;
  if (postmaster > 0 && ::kill(postmaster, SIGINT) == 0) {
    eventually([&] { return ::kill(postmaster, 0) != 0; }, std::chrono::seconds(30));
  }
  pg.stop();
}

inline AuthConfig test_config(int pool_size = 4) {
  AuthConfig config;
  config.pg = pg_config(pool_size);
  config.admin_listen = "";
  config.readiness_interval = std::chrono::milliseconds(100);
  config.checkout_timeout = std::chrono::seconds(5);
  return config;
}

// The auth tier registered on a grpc::Server with no port, reached through its
// in-process channel: every call crosses real gRPC serialization and threading.
class AuthHarness {
 public:
  explicit AuthHarness(AuthConfig config) : tier_(std::make_unique<AuthTier>(std::move(config))) {
    grpc::ServerBuilder builder;
    builder.RegisterService(tier_->service());
    server_ = builder.BuildAndStart();
    channel_ = server_->InProcessChannel(grpc::ChannelArguments());
    stub_ = v1::Auth::NewStub(channel_);
  }
  ~AuthHarness() {
    tier_->stop();
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(5));
    server_->Wait();
  }

  AuthTier& tier() { return *tier_; }
  v1::Auth::Stub& stub() { return *stub_; }

  grpc::Status lookup(const std::string& token, v1::TokenReply* reply, const std::string& internal_token = "") {
    grpc::ClientContext context;
    if (!internal_token.empty()) context.AddMetadata("x-sluice-internal-token", internal_token);
    v1::TokenRequest request;
    request.set_token(token);
    return stub_->LookupToken(&context, request, reply);
  }
  v1::TokenReply lookup_ok(const std::string& token) {
    v1::TokenReply reply;
    auto status = lookup(token, &reply);
    if (!status.ok()) throw std::runtime_error("LookupToken failed: " + status.error_message());
    return reply;
  }
  grpc::Status owned(const std::string& list_id, int64_t account_id, bool* owned) {
    grpc::ClientContext context;
    v1::ListOwnershipRequest request;
    request.set_list_id(list_id);
    request.set_account_id(account_id);
    v1::ListOwnershipReply reply;
    auto status = stub_->CheckListOwnership(&context, request, &reply);
    *owned = reply.owned();
    return status;
  }
  v1::FeedAccessReply feed_access(v1::FeedKind kind, grpc::Status* status_out = nullptr) {
    grpc::ClientContext context;
    v1::FeedAccessRequest request;
    request.set_kind(kind);
    v1::FeedAccessReply reply;
    auto status = stub_->GetFeedAccess(&context, request, &reply);
    if (status_out) *status_out = status;
    else if (!status.ok()) throw std::runtime_error("GetFeedAccess failed: " + status.error_message());
    return reply;
  }
  // `max_age_ms` as a gateway sends it; nullopt as an older gateway (field unset).
  v1::RelationsReply relations(int64_t account_id, std::optional<int64_t> max_age_ms = 0) {
    grpc::ClientContext context;
    v1::RelationsRequest request;
    request.set_account_id(account_id);
    if (max_age_ms) request.set_max_age_ms(*max_age_ms);
    v1::RelationsReply reply;
    auto status = stub_->GetRelations(&context, request, &reply);
    if (!status.ok()) throw std::runtime_error("GetRelations failed: " + status.error_message());
    return reply;
  }
  grpc::Status relations_batch(const std::vector<int64_t>& account_ids, int64_t max_age_ms,
                               v1::RelationsBatchReply* reply) {
    grpc::ClientContext context;
    v1::RelationsBatchRequest request;
    request.mutable_account_ids()->Add(account_ids.begin(), account_ids.end());
    request.set_max_age_ms(max_age_ms);
    return stub_->GetRelationsBatch(&context, request, reply);
  }
  v1::FiltersReply filters(int64_t account_id) {
    grpc::ClientContext context;
    v1::FiltersRequest request;
    request.set_account_id(account_id);
    v1::FiltersReply reply;
    auto status = stub_->GetFilters(&context, request, &reply);
    if (!status.ok()) throw std::runtime_error("GetFilters failed: " + status.error_message());
    return reply;
  }

 private:
  std::unique_ptr<AuthTier> tier_;
  std::unique_ptr<grpc::Server> server_;
  std::shared_ptr<grpc::Channel> channel_;
  std::unique_ptr<v1::Auth::Stub> stub_;
};

inline std::string sql_quote(const std::string& text) {
  std::string out = "'";
  for (char c : text) {
    if (c == '\'') out += '\'';
    out += c;
  }
  return out + "'";
}

// A name no other test of the suite uses.
inline std::string unique_name(const std::string& prefix) {
  static std::atomic<int> counter{0};
  return prefix + std::to_string(++counter);
}

}  // namespace sluice::auth_test
