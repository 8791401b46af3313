#pragma once
// How sluice-broker and sluice-auth serve their tier on its own (the all-in-one serves
// both in one process, allinone/main.cpp): the tenants file and its reloads
// (docs/hosting.md#tenants), the internal gRPC server whose health follows the tier's
// readiness (common/internal_server.hpp), the admin listener, and the order a
// shutdown goes in. Decided here once, so the two processes cannot drift apart.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <exception>
#include <functional>
#include <memory>
#include <string>
#include <utility>

#include <nlohmann/json.hpp>

#include "common/admin_http.hpp"
#include "common/env.hpp"
#include "common/internal_server.hpp"
#include "common/internal_tls.hpp"
#include "common/log.hpp"
#include "common/tenants_file.hpp"

namespace sluice {

// `Tier` has: a constructor (Config, std::shared_ptr<const Tenants>), config() with
// `listen` and `admin_listen`, service(), ready(), set_readiness_callback(),
// update_tenants(std::shared_ptr<const Tenants>) and stop().
template <class Tier>
class StandaloneTier {
 public:
  struct Serving {
    const char* program;          // names the process in log lines, e.g. "sluice-broker"
    const char* service_name;     // the gRPC service and its health name, e.g. "sluice.v1.Broker"
    const char* listen_variable;  // named in the error when config().listen cannot be listened on
    std::chrono::milliseconds shutdown_grace;  // what calls in flight at a stop may still take
    std::function<void(grpc::ServerBuilder&)> configure_server = {};  // the tier's own channel arguments
  };

  // Reads the internal TLS settings and the tenants file from `env`, builds the tier
  // from `config` and serves it, NOT_SERVING until the tier says it is ready. Throws
  // ConfigError naming the variable that is wrong.
  template <class Config>
  StandaloneTier(const Env& env, Config config, Serving serving)
      : serving_(std::move(serving)),
        tls_(InternalTls::from_env(env)),
        tenants_file_(TenantsFile::from_env(env)),
        tier_(std::move(config), starting_tenants(tenants_file_.get())),
        follow_tenants_(tenants_file_.get(),
                        [this](std::shared_ptr<const Tenants> tenants) { tier_.update_tenants(std::move(tenants)); }),
        server_({tier_.config().listen, serving_.listen_variable, tls_}, {{serving_.service_name, tier_.service()}},
                serving_.configure_server),
        report_readiness_(tier_, server_, serving_.service_name),
        admin_(tier_.config().admin_listen, [this] { return tier_.ready(); }) {}
  // Left by a throw before serve() stopped it (an admin address that cannot be bound,
  // a setting the caller reads after): the same stop, for the server's own destructor
  // would wait for the broker streams that only the tier's stop ends.
  ~StandaloneTier() {
    if (stopped_) return;
    try {
      stop({});
    } catch (const std::exception& e) {  // while unwinding already: say it, do not terminate
      log::error("stopping after an error failed", {{"error", e.what()}});
    }
  }
  StandaloneTier(const StandaloneTier&) = delete;
  StandaloneTier& operator=(const StandaloneTier&) = delete;

  Tier& tier() { return tier_; }
  const InternalTls& tls() const { return tls_; }
  // nullptr without a tenants file (the one instance the environment describes).
  const TenantsFile* tenants_file() const { return tenants_file_.get(); }

  // Opens the admin listener, logs "<program> listening" with `where`, and waits for
  // SIGTERM or SIGINT (SIGHUP reads the tenants file again). Then: health NOT_SERVING
  // first, so probes and gateways turn away before calls are refused; `before_tier_stop`
  // (what feeds the tier from outside); the tier, which fails its queued work so that
  // calls in flight end quickly; the server, with the grace; the admin listener last.
  // Returns the exit status.
  int serve(const nlohmann::json& where, const std::function<void()>& before_tier_stop = {}) {
    admin_.start();
    log::info(std::string(serving_.program) + " listening", where);
    int signal = wait_for_termination_reloading(tenants_file_.get());
    log::info(std::string(serving_.program) + " shutting down", {{"signal", signal}});
    stop(before_tier_stop);
    return 0;
  }

 private:
  // Every step may be taken again once it has run (a throw part-way through serve()'s
  // leaves the rest to the destructor, which starts over).
  void stop(const std::function<void()>& before_tier_stop) {
    report_readiness_.stop();
    if (before_tier_stop) before_tier_stop();
    tier_.stop();
    server_.shutdown(serving_.shutdown_grace);
    admin_.stop();
    stopped_ = true;
  }

  // Declaration order is the order of construction; destruction undoes it backwards, so
  // what calls into the tier (the file watcher, the readiness report, the admin
  // listener) goes before the tier does, on every path out (a start that throws too).
  const Serving serving_;
  const InternalTls tls_;
  std::unique_ptr<TenantsFile> tenants_file_;
  Tier tier_;
  FollowTenants follow_tenants_;
  InternalServer server_;
  ReportReadiness<Tier> report_readiness_;
  AdminHttpServer admin_;
  bool stopped_ = false;
};

}  // namespace sluice
