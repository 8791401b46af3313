#pragma once
// Drives a hiredis async context from a boost::asio io_context: hiredis' event
// hooks (addRead/delRead/addWrite/delWrite/cleanup) become async_wait calls on a
// stream_descriptor wrapping hiredis' socket. Everything runs on the io_context's
// one thread.
#include <hiredis/async.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/posix/stream_descriptor.hpp>
#include <memory>

namespace sluice::broker {

class RedisAsioAdapter : public std::enable_shared_from_this<RedisAsioAdapter> {
 public:
  // Installs the hooks on `context`. The adapter keeps itself alive until hiredis
  // calls cleanup (when the context is freed). hiredis owns the socket.
  static void attach(boost::asio::io_context& io, redisAsyncContext* context);

  RedisAsioAdapter(boost::asio::io_context& io, redisAsyncContext* context);

 private:
  static void on_add_read(void* self);
  static void on_del_read(void* self);
  static void on_add_write(void* self);
  static void on_del_write(void* self);
  static void on_cleanup(void* self);

  void wait_readable();
  void wait_writable();

  boost::asio::posix::stream_descriptor socket_;
  redisAsyncContext* context_;
  bool want_read_ = false;
  bool want_write_ = false;
  bool read_waiting_ = false;
  bool write_waiting_ = false;
  std::shared_ptr<RedisAsioAdapter> keep_alive_;
};

}  // namespace sluice::broker
