#include "broker/redis_connection.hpp"

#include <algorithm>
#include <cstdlib>
#include <memory>
#include <utility>

#include "broker/redis_asio_adapter.hpp"
#include "common/log.hpp"

namespace sluice::broker {
namespace {

// How long one connect + AUTH + SELECT (or one sentinel question) may take before
// the attempt is abandoned: hiredis 0.14's async connect has no timeout of its own.
constexpr auto kHandshakeTimeout = std::chrono::seconds(3);
constexpr int kFirstBackoffMs = 100;
constexpr int kMaxBackoffMs = 5000;

std::string reply_error(const redisReply* reply) {
  if (!reply) return "no reply";
  if (reply->type == REDIS_REPLY_ERROR || reply->type == REDIS_REPLY_STATUS || reply->type == REDIS_REPLY_STRING) {
    return std::string(reply->str, reply->len);
  }
  return "unexpected reply type " + std::to_string(reply->type);
}

}  // namespace

struct RedisConnection::PendingReply {
  ReplyHandler handler;
};

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
          {{"connection", role_}})) {}

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
      sentinel_index_ = 0;
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
      if (auto* sentinel = std::exchange(sentinel_, nullptr)) redisAsyncFree(sentinel);
      next_sentinel("timed out");
    } else {
      fail("timed out");
    }
  });
}

redisAsyncContext* RedisConnection::open_context(const std::string& host, int port, const std::string& path,
                                                 std::string& error) {
  redisAsyncContext* context =
      path.empty() ? redisAsyncConnect(host.c_str(), port) : redisAsyncConnectUnix(path.c_str());
  if (!context) {
    error = "out of memory";
    return nullptr;
  }
  if (context->err) {
    error = context->errstr;
    redisAsyncFree(context);
    return nullptr;
  }
  context->data = this;
  RedisAsioAdapter::attach(io_, context);
  redisAsyncSetConnectCallback(context, &RedisConnection::on_connect);
  redisAsyncSetDisconnectCallback(context, &RedisConnection::on_disconnect);
  return context;
}

bool RedisConnection::send(redisAsyncContext* context, const std::vector<std::string>& args,
                           ReplyHandler on_reply) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  auto* pending = new PendingReply{std::move(on_reply)};
  if (redisAsyncCommandArgv(context, &RedisConnection::on_reply, pending, static_cast<int>(argv.size()),
                            argv.data(), lengths.data()) != REDIS_OK) {
    delete pending;
    return false;
  }
  return true;
}

// AUTH with username and password when both are set, else with the password alone.
void RedisConnection::authenticate(redisAsyncContext* context, const std::string& username,
                                   const std::string& password) {
  if (password.empty()) return;
  std::vector<std::string> args = {"AUTH"};
  if (!username.empty()) args.push_back(username);
  args.push_back(password);
  if (context == sentinel_) {
    // A refused AUTH shows up as the error of the SENTINEL question that follows.
    send(context, args, {});
    return;
  }
  send(context, args, [this, attempt = attempt_](redisReply* reply) {
    if (attempt != attempt_ || !reply) return;
    if (reply->type == REDIS_REPLY_ERROR) fail("AUTH failed: " + reply_error(reply));
  });
}

void RedisConnection::ask_sentinel() {
  if (sentinel_index_ >= config_.sentinels.size()) {
    fail("no sentinel named a master for '" + config_.sentinel_master + "'");
    return;
  }
  arm_handshake_timer();
  const RedisEndpoint& endpoint = config_.sentinels[sentinel_index_];
  std::string error;
  redisAsyncContext* context = open_context(endpoint.host, endpoint.port, {}, error);
  if (!context) {
    next_sentinel(error);
    return;
  }
  sentinel_ = context;
  authenticate(context, config_.sentinel_username, config_.sentinel_password);
  send(context, {"SENTINEL", "get-master-addr-by-name", config_.sentinel_master},
       [this, attempt = attempt_](redisReply* reply) {
         if (attempt != attempt_ || !reply) return;
         // Done with this sentinel either way; freeing is deferred by hiredis
         // until this callback returns.
         if (auto* sentinel = std::exchange(sentinel_, nullptr)) redisAsyncFree(sentinel);
         if (reply->type == REDIS_REPLY_ARRAY && reply->elements == 2 &&
             reply->element[0]->type == REDIS_REPLY_STRING && reply->element[1]->type == REDIS_REPLY_STRING) {
           std::string host(reply->element[0]->str, reply->element[0]->len);
           std::string port_text(reply->element[1]->str, reply->element[1]->len);
           int port = std::atoi(port_text.c_str());
           master_ = (host.find(':') != std::string::npos ? "[" + host + "]" : host) + ":" + port_text;
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
              {"sentinel", config_.sentinels[sentinel_index_].host + ":" +
                               std::to_string(config_.sentinels[sentinel_index_].port)},
              {"error", why}});
  ++sentinel_index_;
  ask_sentinel();
}

void RedisConnection::open_data(const std::string& host, int port) {
  std::string error;
  std::string path = config_.mode == RedisConfig::Mode::unix_socket ? config_.path : std::string();
  redisAsyncContext* context = open_context(host, port, path, error);
  if (!context) {
    fail(error);
    return;
  }
  data_ = context;
  authenticate(context, config_.username, config_.password);
  if (config_.db != 0) {
    send(context, {"SELECT", std::to_string(config_.db)}, [this, attempt = attempt_](redisReply* reply) {
      if (attempt != attempt_ || !reply) return;
      if (reply->type == REDIS_REPLY_ERROR) fail("SELECT failed: " + reply_error(reply));
    });
  }
  // Replies come in order: once PING answers, AUTH and SELECT went through.
  send(context, {"PING"}, [this, attempt = attempt_](redisReply* reply) {
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
  failures_ = 0;
  down_logged_ = false;
  ready_.store(true, std::memory_order_release);
  connected_.set(1);
  log::info("Redis connected", {{"connection", role_}, {"redis", target()}});
  if (callbacks_.on_ready) callbacks_.on_ready();
}

void RedisConnection::close_contexts() {
  if (auto* sentinel = std::exchange(sentinel_, nullptr)) redisAsyncFree(sentinel);
  if (auto* data = std::exchange(data_, nullptr)) redisAsyncFree(data);
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
  return send(data_, args, std::move(on_reply));
}

bool RedisConnection::subscription_command(const std::vector<std::string>& args) {
  if (!ready() || !data_) return false;
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  // hiredis keeps (callback, privdata) per channel and calls it for the reply and
  // for every message, so privdata is the connection itself.
  return redisAsyncCommandArgv(data_, &RedisConnection::on_push_reply, this, static_cast<int>(argv.size()),
                               argv.data(), lengths.data()) == REDIS_OK;
}

void RedisConnection::on_connect(const redisAsyncContext* context, int status) {
  if (status == REDIS_OK) return;
  static_cast<RedisConnection*>(context->data)->lost(context, context->errstr ? context->errstr : "connect failed");
}

void RedisConnection::on_disconnect(const redisAsyncContext* context, int status) {
  static_cast<RedisConnection*>(context->data)
      ->lost(context, status == REDIS_OK || !context->errstr ? "connection closed" : context->errstr);
}

// hiredis frees `context` right after the callback that calls this. Contexts we
// freed ourselves were already detached and are ignored here.
void RedisConnection::lost(const redisAsyncContext* context, const std::string& error) {
  if (context == data_) {
    data_ = nullptr;
    fail(error);
  } else if (context == sentinel_) {
    sentinel_ = nullptr;
    next_sentinel(error);
  }
}

void RedisConnection::on_reply(redisAsyncContext*, void* reply, void* privdata) {
  std::unique_ptr<PendingReply> pending(static_cast<PendingReply*>(privdata));
  if (pending->handler) pending->handler(static_cast<redisReply*>(reply));
}

void RedisConnection::on_push_reply(redisAsyncContext* context, void* reply, void* privdata) {
  auto* self = static_cast<RedisConnection*>(privdata);
  if (!reply || context != self->data_ || !self->callbacks_.on_push) return;
  self->callbacks_.on_push(static_cast<redisReply*>(reply));
}

}  // namespace sluice::broker
