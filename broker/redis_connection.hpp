#pragma once
// One hiredis async connection to Redis, driven by the broker's Redis io_context.
// It connects (TCP, unix socket, or the master named by Sentinel, asked again on
// every connect), authenticates, selects the database, and reconnects forever
// with exponential backoff and jitter (100 ms doubling to 5 s). Redis being down
// at startup is just the first reconnect (docs/protocol.md#redis-configuration: startup does not wait for Redis).
// Every member must be used on the io_context's thread, except ready().
#include <hiredis/async.h>

#include <atomic>
#include <boost/asio/io_context.hpp>
#include <boost/asio/steady_timer.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <random>
#include <string>
#include <vector>

#include "common/metrics.hpp"
#include "broker/redis_config.hpp"

namespace sluice::broker {

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
  struct PendingReply;

  static void on_connect(const redisAsyncContext* context, int status);
  static void on_disconnect(const redisAsyncContext* context, int status);
  void lost(const redisAsyncContext* context, const std::string& error);
  static void on_reply(redisAsyncContext* context, void* reply, void* privdata);
  static void on_push_reply(redisAsyncContext* context, void* reply, void* privdata);

  void connect();
  void ask_sentinel();
  void next_sentinel(const std::string& why);
  void open_data(const std::string& host, int port);
  redisAsyncContext* open_context(const std::string& host, int port, const std::string& path, std::string& error);
  bool send(redisAsyncContext* context, const std::vector<std::string>& args, ReplyHandler on_reply);
  void authenticate(redisAsyncContext* context, const std::string& username, const std::string& password);
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

  redisAsyncContext* data_ = nullptr;
  redisAsyncContext* sentinel_ = nullptr;
  size_t sentinel_index_ = 0;
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
