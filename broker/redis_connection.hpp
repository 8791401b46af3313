#pragma once
// One connection to Redis (a RespConnection), driven by the broker's Redis io_context.
// It connects (TCP, TLS, unix socket, or the master named by Sentinel, asked again on
// every connect), authenticates, selects the database, and reconnects forever
// with exponential backoff and jitter (100 ms doubling to 800 ms). Redis being down
// at startup is just the first reconnect (docs/protocol.md#redis-configuration: startup does not wait for Redis).
// Every member must be used on the io_context's thread, except ready().
#include <hiredis/hiredis.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/metrics.hpp"
#include "broker/redis_config.hpp"
#include "broker/resp_connection.hpp"

namespace sluice::broker {

// The TLS settings of a rediss:// connection: peer verification against the system's
// CAs and NODE_EXTRA_CA_CERTS. Throws ConfigError when that file cannot be read.
std::shared_ptr<boost::asio::ssl::context> make_redis_tls_context(const RedisConfig& config);

class RedisConnection {
 public:
  // The reply, or nullptr when the connection went away before it came.
  using ReplyHandler = std::function<void(redisReply*)>;

  struct Callbacks {
    // Connected, authenticated and the database selected: commands may be sent.
    std::function<void()> on_ready;
    // The ready connection was lost; a reconnect is scheduled.
    std::function<void()> on_lost;
    // Replies to (P)(UN)SUBSCRIBE and every pub/sub message.
    std::function<void(redisReply*)> on_push;
  };

  // `role` names the connection in logs and metrics ("subscriber", "command").
  RedisConnection(boost::asio::io_context& io, RedisConfig config, std::string role, Callbacks callbacks);
  ~RedisConnection();
  RedisConnection(const RedisConnection&) = delete;
  RedisConnection& operator=(const RedisConnection&) = delete;

  void start();
  // Closes the connection and stops reconnecting.
  void stop();
  bool ready() const { return ready_.load(std::memory_order_acquire); }

  // Queues a command; false when the connection is not ready.
  bool command(const std::vector<std::string>& args, ReplyHandler on_reply = {});
  // (P)SUBSCRIBE / (P)UNSUBSCRIBE: their replies and the messages go to on_push.
  bool subscription_command(const std::vector<std::string>& args);

  // Backoff before reconnect attempt number `failures` (0-based), with jitter.
  static std::chrono::milliseconds backoff(int failures, std::mt19937& random);

 private:
  void connect();
  void ask_sentinel();
  void next_sentinel(const std::string& why);
  void open_data(const std::string& host, int port);
  // `is_data`: the data connection (else a sentinel's): which of the two a loss ends.
  std::shared_ptr<RespConnection> open_connection(const RespConnection::Target& target, bool is_data);
  void authenticate(RespConnection& connection, bool is_sentinel, const std::string& username,
                    const std::string& password);
  void handshake_done();
  void arm_handshake_timer();
  // Abandons the current attempt (freeing any context) and schedules the next one.
  void fail(const std::string& why);
  void close_contexts();
  std::string target() const;

  boost::asio::io_context& io_;
  RedisConfig config_;
  std::string role_;
  Callbacks callbacks_;

  std::shared_ptr<RespConnection> data_;
  std::shared_ptr<RespConnection> sentinel_;
  std::shared_ptr<boost::asio::ssl::context> tls_;  // rediss://: how the data connection's TLS is set up
  // Sentinels are asked in turn from `sentinel_first_`: the one that named the master
  // last time (as ioredis keeps it first), or the one after a Sentinel that named a
  // replica (a stale one is not asked first again).
  size_t sentinel_first_ = 0;
  size_t sentinels_asked_ = 0;  // this attempt
  size_t named_by_ = 0;         // the Sentinel that named the node this attempt reached
  size_t sentinel_index() const { return (sentinel_first_ + sentinels_asked_) % config_.sentinels.size(); }
  std::string master_;  // host:port Sentinel named, for logs
  // Replies from an abandoned attempt carry an older number and are ignored.
  uint64_t attempt_ = 0;
  int failures_ = 0;
  bool started_ = false;
  bool stopping_ = false;
  bool ever_ready_ = false;
  bool down_logged_ = false;
  std::atomic<bool> ready_{false};
  boost::asio::steady_timer retry_timer_;
  boost::asio::steady_timer handshake_timer_;
  std::mt19937 random_;

  metrics::Gauge& connected_;
  metrics::Counter& reconnects_;
};

}  // namespace sluice::broker
