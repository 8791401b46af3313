#include "broker/broker_tier.hpp"

#include <unistd.h>

#include <boost/asio/post.hpp>

#include "broker/local_gateway_stream.hpp"
#include "common/config_error.hpp"
#include "common/log.hpp"
#include "common/thread_name.hpp"

namespace sluice {
namespace {

std::string make_broker_id() {
  char host[256] = {};
  if (::gethostname(host, sizeof(host) - 1) != 0) host[0] = '\0';
  return std::string(host) + ":" + std::to_string(::getpid());
}

}  // namespace

BrokerConfig BrokerConfig::from_env(const Env& env) {
  BrokerConfig config;
  config.redis = redis_config_from_env(env);
  config.listen = env.get_or("SLUICE_BROKER_LISTEN", "127.0.0.1:50051");
  if (config.listen.empty()) throw ConfigError("Invalid SLUICE_BROKER_LISTEN environment variable: empty");
  config.admin_listen = env.get_or("SLUICE_BROKER_ADMIN_LISTEN", "127.0.0.1:9091");
  config.internal_token = env.get_or("SLUICE_INTERNAL_TOKEN", "");
  int64_t queue = env.non_negative("SLUICE_BROKER_GATEWAY_QUEUE", 65536);
  if (queue < 1) {
    throw ConfigError("Invalid SLUICE_BROKER_GATEWAY_QUEUE environment variable: must be at least 1, got '" +
                      std::to_string(queue) + "'");
  }
  config.gateway_queue = static_cast<size_t>(queue);
  int64_t queue_bytes = env.non_negative("SLUICE_BROKER_GATEWAY_QUEUE_BYTES", 128 << 20);
  if (queue_bytes < 1) {
    throw ConfigError("Invalid SLUICE_BROKER_GATEWAY_QUEUE_BYTES environment variable: must be at least 1, got '" +
                      std::to_string(queue_bytes) + "'");
  }
  config.gateway_queue_bytes = static_cast<size_t>(queue_bytes);
  return config;
}

BrokerTier::BrokerTier(BrokerConfig config, std::shared_ptr<const Tenants> tenants)
    : config_(std::move(config)),
      tenants_(tenants ? broker::BrokerTenants(io_, *tenants, config_.heartbeat_interval)
                       : broker::BrokerTenants(io_, config_.redis, config_.heartbeat_interval)),
      service_(tenants_,
               broker::BrokerService::Options{config_.internal_token, config_.gateway_queue,
                                                            config_.gateway_queue_bytes, make_broker_id()}) {}

BrokerTier::~BrokerTier() { stop(); }

grpc::Service* BrokerTier::service() { return &service_; }

BrokerStreamOpener BrokerTier::local_streams() { return broker::local_gateway_streams(service_, io_); }

void BrokerTier::start() {
  if (started_) return;
  started_ = true;
  work_.emplace(io_.get_executor());
  boost::asio::post(io_, [this] { tenants_.start(); });
  serving_ = true;
  thread_ = std::thread([this] {
    name_this_thread("broker-redis");
    // One dedicated thread for all Redis I/O. A handler that throws is a bug, but
    // must not take the broker down with it.
    while (true) {
      try {
        io_.run();
        return;
      } catch (const std::exception& error) {
        log::error("Redis thread caught an exception", {{"error", error.what()}});
      }
    }
  });
}

void BrokerTier::stop() {
  // Also for a tier never started: in-process streams opened on it are ended (their
  // messages would wait for a Redis thread that never runs), and no more are opened.
  service_.close_all();
  if (!started_ || stopped_) return;
  stopped_ = true;
  serving_ = false;
  boost::asio::post(io_, [this] { tenants_.stop(); });
  work_.reset();
  thread_.join();
}

bool BrokerTier::ready() const {
  if (tenants_.multi_tenant()) return serving_.load();
  return tenants_.only().subscriber().ready();
}

bool BrokerTier::system_events_live(const std::string& tenant) const {
  if (!tenants_.multi_tenant()) return tenants_.only().subscriber().system_channels_live();
  auto served = tenants_.find(tenant);
  return served && served->subscriber().system_channels_live();
}

void BrokerTier::set_readiness_callback(std::function<void(bool)> callback) {
  if (!tenants_.multi_tenant()) return tenants_.only().subscriber().set_readiness_callback(std::move(callback));
  if (callback) callback(true);
}

void BrokerTier::add_system_listener(broker::RedisSubscriber::SystemListener listener) {
  tenants_.add_system_listener(std::move(listener));
}

void BrokerTier::update_tenants(std::shared_ptr<const Tenants> tenants) {
  boost::asio::post(io_, [this, tenants = std::move(tenants)] { tenants_.update(*tenants); });
}

}  // namespace sluice
