#include "broker/redis_asio_adapter.hpp"

namespace sluice::broker {

RedisAsioAdapter::RedisAsioAdapter(boost::asio::io_context& io, redisAsyncContext* context)
    : socket_(io), context_(context) {
  boost::system::error_code ec;
  // assign() fails only when the reactor cannot take the descriptor; then no wait
  // is ever started and the connection's handshake timeout frees the context.
  socket_.assign(context->c.fd, ec);
}

void RedisAsioAdapter::attach(boost::asio::io_context& io, redisAsyncContext* context) {
  auto adapter = std::make_shared<RedisAsioAdapter>(io, context);
  adapter->keep_alive_ = adapter;
  context->ev.data = adapter.get();
  context->ev.addRead = &RedisAsioAdapter::on_add_read;
  context->ev.delRead = &RedisAsioAdapter::on_del_read;
  context->ev.addWrite = &RedisAsioAdapter::on_add_write;
  context->ev.delWrite = &RedisAsioAdapter::on_del_write;
  context->ev.cleanup = &RedisAsioAdapter::on_cleanup;
}

void RedisAsioAdapter::on_add_read(void* self) {
  auto* adapter = static_cast<RedisAsioAdapter*>(self);
  adapter->want_read_ = true;
  adapter->wait_readable();
}

void RedisAsioAdapter::on_del_read(void* self) { static_cast<RedisAsioAdapter*>(self)->want_read_ = false; }

void RedisAsioAdapter::on_add_write(void* self) {
  auto* adapter = static_cast<RedisAsioAdapter*>(self);
  adapter->want_write_ = true;
  adapter->wait_writable();
}

void RedisAsioAdapter::on_del_write(void* self) { static_cast<RedisAsioAdapter*>(self)->want_write_ = false; }

// hiredis is freeing the context and will close the socket itself: stop waiting
// and hand the descriptor back without closing it.
void RedisAsioAdapter::on_cleanup(void* self) {
  auto* adapter = static_cast<RedisAsioAdapter*>(self);
  adapter->context_ = nullptr;
  adapter->want_read_ = adapter->want_write_ = false;
  boost::system::error_code ec;
  adapter->socket_.cancel(ec);
  if (adapter->socket_.is_open()) adapter->socket_.release();
  // Pending waits hold their own reference; this may be the last one otherwise.
  auto keep = std::move(adapter->keep_alive_);
}

void RedisAsioAdapter::wait_readable() {
  if (read_waiting_ || !context_ || !socket_.is_open()) return;
  read_waiting_ = true;
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_read,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->read_waiting_ = false;
                       if (ec == boost::asio::error::operation_aborted || !self->context_) return;
                       // On other errors hiredis' own read reports the broken socket.
                       redisAsyncHandleRead(self->context_);
                       if (self->context_ && self->want_read_) self->wait_readable();
                     });
}

void RedisAsioAdapter::wait_writable() {
  if (write_waiting_ || !context_ || !socket_.is_open()) return;
  write_waiting_ = true;
  socket_.async_wait(boost::asio::posix::stream_descriptor::wait_write,
                     [self = shared_from_this()](const boost::system::error_code& ec) {
                       self->write_waiting_ = false;
                       if (ec == boost::asio::error::operation_aborted || !self->context_) return;
                       redisAsyncHandleWrite(self->context_);
                       if (self->context_ && self->want_write_) self->wait_writable();
                     });
}

}  // namespace sluice::broker
