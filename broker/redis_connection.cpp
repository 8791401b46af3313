#include "broker/redis_connection.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <string>
#include <string_view>
#include <utility>

#include "common/log.hpp"

namespace sluice::broker {

namespace asio = boost::asio;

namespace {

// How long one connect (+ TLS handshake) + AUTH + SELECT, or one sentinel question,
// may take before the attempt is abandoned.
constexpr auto kHandshakeTimeout = std::chrono::seconds(3);
constexpr int kFirstBackoffMs = 100;
// Events resume within 1 s of Redis answering again (docs/reliability.md#faults): an
// attempt waits at most this long, then connect + re-subscribe take tens of ms. A
// refused connect costs Redis next to nothing, so a short cap is cheap.
constexpr int kMaxBackoffMs = 800;

std::string reply_error(const redisReply* reply) {
  if (!reply) return "no reply";
  if (reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING) {
    return std::string(reply->str, reply->len);
  }
  return "unexpected reply type " + std::to_string(reply->type);
}

}  // namespace

std::shared_ptr<asio::ssl::context> make_redis_tls_context(const RedisConfig& config) {
  auto context = std::make_shared<asio::ssl::context>(asio::ssl::context::tls_client);
  context->set_options(asio::ssl::context::default_workarounds | asio::ssl::context::no_sslv2 |
                       asio::ssl::context::no_sslv3 | asio::ssl::context::no_tlsv1 | asio::ssl::context::no_tlsv1_1);
  context->set_default_verify_paths();
  if (!config.tls_extra_ca_file.empty()) {
    boost::system::error_code ec;
    context->load_verify_file(config.tls_extra_ca_file, ec);
    if (ec) {
      // As Node: a warning, and the system CAs alone (docs/protocol.md#redis-configuration).
      log::warn("NODE_EXTRA_CA_CERTS cannot be loaded; Redis certificates are checked against the system CAs only",
                {{"file", config.tls_extra_ca_file}, {"error", ec.message()}});
    }
  }
  if (!config.tls_verify) {
    log::warn("NODE_TLS_REJECT_UNAUTHORIZED is '0': Redis certificates are not verified, as in Node");
    context->set_verify_mode(asio::ssl::verify_none);
    return context;
  }
  context->set_verify_mode(asio::ssl::verify_peer);
  return context;
}

RedisConnection::RedisConnection(boost::asio::io_context& io, RedisConfig config, std::string role,
                                 Callbacks callbacks)
    : io_(io),
      config_(std::move(config)),
      role_(std::move(role)),
      callbacks_(std::move(callbacks)),
      retry_timer_(io),
      handshake_timer_(io),
      random_(std::random_device{}()),
      connected_(metrics::Registry::global().gauge(
          "sluice_redis_connected", "Whether the broker's Redis connection is up (1) or down (0)",
          {{"connection", role_}})),
      reconnects_(metrics::Registry::global().counter(
          "sluice_redis_reconnects_total", "Connection attempts to Redis after a failed or lost connection",
          {{"connection", role_}})) {
  if (config_.tls) tls_ = make_redis_tls_context(config_);
}

RedisConnection::~RedisConnection() { stop(); }

std::chrono::milliseconds RedisConnection::backoff(int failures, std::mt19937& random) {
  int shift = std::clamp(failures, 0, 6);
  int base = std::min(kFirstBackoffMs << shift, kMaxBackoffMs);
  // Jitter spreads the reconnects of many brokers after a Redis restart.
  std::uniform_int_distribution<int> jitter(base / 2, base);
  return std::chrono::milliseconds(jitter(random));
}

void RedisConnection::start() {
  if (started_) return;
  started_ = true;
  log::info("Connecting to Redis", {{"connection", role_}, {"redis", config_.describe()}});
  connect();
}

void RedisConnection::stop() {
  if (stopping_) return;
  stopping_ = true;
  ++attempt_;
  retry_timer_.cancel();
  handshake_timer_.cancel();
  close_contexts();
  ready_.store(false, std::memory_order_release);
  connected_.set(0);
}

std::string RedisConnection::target() const {
  if (config_.mode == RedisConfig::Mode::sentinel && !master_.empty()) {
    return master_ + " (" + config_.describe() + ")";
  }
  return config_.describe();
}

void RedisConnection::connect() {
  if (stopping_) return;
  ++attempt_;
  arm_handshake_timer();
  switch (config_.mode) {
    case RedisConfig::Mode::sentinel:
      sentinels_asked_ = 0;
      ask_sentinel();
      break;
    case RedisConfig::Mode::unix_socket:
    case RedisConfig::Mode::tcp:
      open_data(config_.host, config_.port);
      break;
  }
}

void RedisConnection::arm_handshake_timer() {
  handshake_timer_.expires_after(kHandshakeTimeout);
  handshake_timer_.async_wait([this, attempt = attempt_](const boost::system::error_code& ec) {
    if (ec || attempt != attempt_ || ready() || stopping_) return;
    if (sentinel_) {
      std::exchange(sentinel_, nullptr)->close();
      next_sentinel("timed out");
    } else {
      fail("timed out");
    }
  });
}

std::shared_ptr<RespConnection> RedisConnection::open_connection(const RespConnection::Target& target, bool is_data) {
  RespConnection::Callbacks callbacks;
  if (is_data) {
    callbacks.on_push = [this](redisReply* reply) {
      if (callbacks_.on_push) callbacks_.on_push(reply);
    };
  }
  // A connection we closed ourselves calls nothing; one that fails ends its attempt.
  callbacks.on_closed = [this, is_data, attempt = attempt_](const std::string& why) {
    if (attempt != attempt_) return;
    if (is_data) {
      data_.reset();
      fail(why);
    } else {
      sentinel_.reset();
      next_sentinel(why);
    }
  };
  auto connection = std::make_shared<RespConnection>(io_, std::move(callbacks));
  connection->connect(target);
  return connection;
}

// AUTH with username and password when both are set, else with the password alone.
void RedisConnection::authenticate(RespConnection& connection, bool is_sentinel, const std::string& username,
                                   const std::string& password) {
  if (password.empty()) return;
  std::vector<std::string> args = {"AUTH"};
  if (!username.empty()) args.push_back(username);
  args.push_back(password);
  if (is_sentinel) {
    // A refused AUTH shows up as the error of the SENTINEL question that follows.
    connection.send(args, {});
    return;
  }
  connection.send(args, [this, attempt = attempt_](redisReply* reply) {
    if (attempt != attempt_ || !reply) return;
    if (reply->type == REDIS_REPLY_ERROR) fail("AUTH failed: " + reply_error(reply));
  });
}

void RedisConnection::ask_sentinel() {
  if (sentinels_asked_ >= config_.sentinels.size()) {
    fail("no sentinel named a master for '" + config_.sentinel_master + "'");
    return;
  }
  arm_handshake_timer();
  const RedisEndpoint& endpoint = config_.sentinels[sentinel_index()];
  sentinel_ = open_connection({endpoint.host, endpoint.port, {}, nullptr}, /*is_data=*/false);
  authenticate(*sentinel_, /*is_sentinel=*/true, config_.sentinel_username, config_.sentinel_password);
  sentinel_->send({"SENTINEL", "get-master-addr-by-name", config_.sentinel_master},
       [this, attempt = attempt_](redisReply* reply) {
         if (attempt != attempt_ || !reply) return;
         // Done with this sentinel either way (the reply stays valid until we return).
         if (auto sentinel = std::exchange(sentinel_, nullptr)) sentinel->close();
         if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING) {
           std::string host(reply->element[0]->str, reply->element[0]->len);
           std::string port_text(reply->element[1]->str, reply->element[1]->len);
           int port = std::atoi(port_text.c_str());
           master_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port_text;
           named_by_ = sentinel_index();
           arm_handshake_timer();
           open_data(host, port);
           return;
         }
         next_sentinel(reply->type == REDIS_REPLY_NIL ? "master unknown to this sentinel" : reply_error(reply));
       });
}

void RedisConnection::next_sentinel(const std::string& why) {
  log::debug("Redis sentinel did not answer",
             {{"connection", role_},
              {"sentinel", config_.sentinels[sentinel_index()].host + ":" +
                               std::to_string(config_.sentinels[sentinel_index()].port)},
              {"error", why}});
  ++sentinels_asked_;
  ask_sentinel();
}

void RedisConnection::open_data(const std::string& host, int port) {
  std::string path = config_.mode == RedisConfig::Mode::unix_socket ? config_.path : std::string();
  data_ = open_connection({host, port, path, tls_}, /*is_data=*/true);
  authenticate(*data_, /*is_sentinel=*/false, config_.username, config_.password);
  if (config_.db != 0) {
    data_->send({"SELECT", std::to_string(config_.db)}, [this, attempt = attempt_](redisReply* reply) {
      if (attempt != attempt_ || !reply) return;
      if (reply->type == REDIS_REPLY_ERROR) fail("SELECT failed: " + reply_error(reply));
    });
  }
  if (config_.mode == RedisConfig::Mode::sentinel) {
    // As ioredis does, the node a Sentinel named must be the master: just after a
    // failover a Sentinel may still name the old one, now a replica, where SUBSCRIBE
    // works but every `subscribed:` SET fails (READONLY) for as long as the connection
    // lasts. The attempt then fails and Sentinels are asked again. A user not allowed
    // ROLE (an error) cannot tell, and goes on.
    data_->send({"ROLE"}, [this, attempt = attempt_](redisReply* reply) {
      if (attempt != attempt_ || !reply || reply->type != REDIS_REPLY_ARRAY || reply->elements == 0) return;
      const redisReply* role = reply->element[0];
      if (role->type != REDIS_REPLY_STRING && role->type != REDIS_REPLY_STATUS) return;
      std::string_view name(role->str, role->len);
      if (name == "master") return;
      sentinel_first_ = (named_by_ + 1) % config_.sentinels.size();
      fail("the address Sentinel named is not the master (ROLE: " + std::string(name) + ")");
    });
  }
  // Replies come in order: once PING answers, AUTH, SELECT and ROLE went through.
  data_->send({"PING"}, [this, attempt = attempt_](redisReply* reply) {
    if (attempt != attempt_ || !reply) return;
    if (reply->type == REDIS_REPLY_ERROR) {
      fail(reply_error(reply));
      return;
    }
    handshake_done();
  });
}

void RedisConnection::handshake_done() {
  handshake_timer_.cancel();
  if (config_.mode == RedisConfig::Mode::sentinel) sentinel_first_ = named_by_;
  failures_ = 0;
  down_logged_ = false;
  ready_.store(true, std::memory_order_release);
  connected_.set(1);
  log::info("Redis connected", {{"connection", role_}, {"redis", target()}});
  if (callbacks_.on_ready) callbacks_.on_ready();
}

void RedisConnection::close_contexts() {
  if (auto sentinel = std::exchange(sentinel_, nullptr)) sentinel->close();
  if (auto data = std::exchange(data_, nullptr)) data->close();
}

void RedisConnection::fail(const std::string& why) {
  ++attempt_;
  handshake_timer_.cancel();
  close_contexts();
  bool was_ready = ready_.exchange(false, std::memory_order_acq_rel);
  connected_.set(0);
  if (stopping_) return;
  nlohmann::json fields = {{"connection", role_}, {"redis", target()}, {"error", why}};
  // One line per state change: the first failure is a warning, the retries while
  // Redis stays down are debug.
  if (was_ready) {
    log::warn("Redis connection lost; reconnecting", fields);
    down_logged_ = true;
    if (callbacks_.on_lost) callbacks_.on_lost();
  } else if (!down_logged_) {
    log::warn("Redis connection failed; retrying", fields);
    down_logged_ = true;
  } else {
    log::debug("Redis connection failed; retrying", fields);
  }
  auto delay = backoff(failures_++, random_);
  retry_timer_.expires_after(delay);
  retry_timer_.async_wait([this](const boost::system::error_code& ec) {
    if (ec || stopping_) return;
    reconnects_.inc();
    connect();
  });
}

bool RedisConnection::command(const std::vector<std::string>& args, ReplyHandler on_reply) {
  if (!ready() || !data_) return false;
  data_->send(args, std::move(on_reply));
  return true;
}

bool RedisConnection::subscription_command(const std::vector<std::string>& args) {
  if (!ready() || !data_) return false;
  data_->send_subscription(args);
  return true;
}

}  // namespace sluice::broker
