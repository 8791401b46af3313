#include "broker/resp_connection.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ssl/host_name_verification.hpp>
#include <boost/asio/write.hpp>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>

#include <cstring>

namespace sluice::broker {

namespace asio = boost::asio;

namespace {

constexpr size_t kReadSize = 64 * 1024;

// docs/protocol.md#redis-configuration: a Redis that vanished without a reset (its node
// gone, a partition) must not leave the broker subscribed to nothing while it reports
// ready. An idle connection is probed after 10 s, every 5 s, and given up after 4
// unanswered probes; data left unacknowledged for 30 s ends it too.
constexpr int kKeepAliveIdleSeconds = 10;
constexpr int kKeepAliveIntervalSeconds = 5;
constexpr int kKeepAliveProbes = 4;
constexpr unsigned kUnacknowledgedTimeoutMs = 30000;

void detect_dead_peers(asio::ip::tcp::socket& socket) {
  boost::system::error_code ignored;
  socket.set_option(asio::socket_base::keep_alive(true), ignored);
  const int fd = socket.native_handle();
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &kKeepAliveIdleSeconds, sizeof kKeepAliveIdleSeconds);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &kKeepAliveIntervalSeconds, sizeof kKeepAliveIntervalSeconds);
  ::setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &kKeepAliveProbes, sizeof kKeepAliveProbes);
  ::setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &kUnacknowledgedTimeoutMs, sizeof kUnacknowledgedTimeoutMs);
}

// A pub/sub push: an array whose first element names its kind.
bool is_push(const redisReply* reply) {
  if (reply->type != REDIS_REPLY_ARRAY || reply->elements < 1 || reply->element[0]->type != REDIS_REPLY_STRING) {
    return false;
  }
  std::string_view kind(reply->element[0]->str, reply->element[0]->len);
  return kind == "message" || kind == "pmessage" || kind == "subscribe" || kind == "psubscribe" ||
         kind == "unsubscribe" || kind == "punsubscribe";
}

}  // namespace

RespConnection::RespConnection(asio::io_context& io, Callbacks callbacks)
    : io_(io),
      callbacks_(std::move(callbacks)),
      resolver_(io),
      tcp_(io),
      unix_(io),
      read_buffer_(kReadSize),
      reader_(redisReaderCreate()) {}

RespConnection::~RespConnection() {
  close();
  redisReaderFree(reader_);
}

template <class Handler>
void RespConnection::async_read_some(asio::mutable_buffer buffer, Handler&& handler) {
  if (tls_) return tls_->async_read_some(buffer, std::forward<Handler>(handler));
  if (use_unix_) return unix_.async_read_some(buffer, std::forward<Handler>(handler));
  tcp_.async_read_some(buffer, std::forward<Handler>(handler));
}

template <class Handler>
void RespConnection::async_write(asio::const_buffer buffer, Handler&& handler) {
  if (tls_) return asio::async_write(*tls_, buffer, std::forward<Handler>(handler));
  if (use_unix_) return asio::async_write(unix_, buffer, std::forward<Handler>(handler));
  asio::async_write(tcp_, buffer, std::forward<Handler>(handler));
}

void RespConnection::connect(const Target& target) {
  auto self = shared_from_this();
  if (!target.unix_path.empty()) {
    use_unix_ = true;
    unix_.async_connect(asio::local::stream_protocol::endpoint(target.unix_path),
                        [self](const boost::system::error_code& ec) {
                          if (self->closed_) return;
                          if (ec) return self->failed(ec.message());
                          self->connected();
                        });
    return;
  }
  if (target.tls) {
    tls_ = std::make_unique<asio::ssl::stream<asio::ip::tcp::socket>>(io_, *target.tls);
    // SNI, and the certificate must name the host (as Node's TLS checks for ioredis).
    if (!SSL_set_tlsext_host_name(tls_->native_handle(), target.host.c_str())) {
      return failed("cannot set the TLS server name");
    }
    // Unless the context checks nothing (NODE_TLS_REJECT_UNAUTHORIZED=0).
    if (SSL_CTX_get_verify_mode(target.tls->native_handle()) != SSL_VERIFY_NONE) {
      tls_->set_verify_mode(asio::ssl::verify_peer);
      tls_->set_verify_callback(asio::ssl::host_name_verification(target.host));
    }
  }
  resolver_.async_resolve(
      target.host, std::to_string(target.port),
      [self](const boost::system::error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (self->closed_) return;
        if (ec) return self->failed(ec.message());
        auto& socket = self->tls_ ? self->tls_->next_layer() : self->tcp_;
        asio::async_connect(socket, results, [self](const boost::system::error_code& connect_ec, const auto&) {
          if (self->closed_) return;
          if (connect_ec) return self->failed(connect_ec.message());
          auto& connected_socket = self->tls_ ? self->tls_->next_layer() : self->tcp_;
          boost::system::error_code ignored;
          connected_socket.set_option(asio::ip::tcp::no_delay(true), ignored);
          detect_dead_peers(connected_socket);
          if (!self->tls_) return self->connected();
          self->tls_->async_handshake(asio::ssl::stream_base::client, [self](const boost::system::error_code& tls_ec) {
            if (self->closed_) return;
            if (tls_ec) return self->failed("TLS handshake: " + tls_ec.message());
            self->connected();
          });
        });
      });
}

void RespConnection::connected() {
  is_connected_ = true;
  read_more();
  write_pending();
}

void RespConnection::append(const std::vector<std::string>& args) {
  std::vector<const char*> argv;
  std::vector<size_t> lengths;
  argv.reserve(args.size());
  lengths.reserve(args.size());
  for (const auto& arg : args) {
    argv.push_back(arg.data());
    lengths.push_back(arg.size());
  }
  char* command = nullptr;
  int length = redisFormatCommandArgv(&command, static_cast<int>(argv.size()), argv.data(), lengths.data());
  if (length < 0 || !command) throw std::bad_alloc();
  outgoing_.append(command, static_cast<size_t>(length));
  redisFreeCommand(command);
}

void RespConnection::send(const std::vector<std::string>& args, ReplyHandler on_reply) {
  if (closed_) {
    if (on_reply) on_reply(nullptr);
    return;
  }
  append(args);
  pending_.push_back(std::move(on_reply));
  write_pending();
}

void RespConnection::send_subscription(const std::vector<std::string>& args) {
  if (closed_) return;
  subscribed_ = true;
  append(args);
  write_pending();
}

void RespConnection::write_pending() {
  if (!is_connected_ || writing_ || closed_ || outgoing_.empty()) return;
  writing_ = true;
  in_flight_.swap(outgoing_);
  outgoing_.clear();
  async_write(asio::buffer(in_flight_), [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
    self->writing_ = false;
    if (self->closed_) return;
    if (ec) return self->failed(ec.message());
    self->in_flight_.clear();
    self->write_pending();
  });
}

void RespConnection::read_more() {
  async_read_some(asio::buffer(read_buffer_), [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
    if (self->closed_) return;
    if (ec) return self->failed(ec == asio::error::eof ? "connection closed" : ec.message());
    if (redisReaderFeed(self->reader_, self->read_buffer_.data(), n) != REDIS_OK) {
      return self->failed("protocol error");
    }
    for (;;) {
      void* reply = nullptr;
      if (redisReaderGetReply(self->reader_, &reply) != REDIS_OK) {
        return self->failed(std::string("protocol error: ") + self->reader_->errstr);
      }
      if (!reply) break;
      self->dispatch(static_cast<redisReply*>(reply));
      freeReplyObject(reply);
      if (self->closed_) return;
    }
    self->read_more();
  });
}

void RespConnection::dispatch(redisReply* reply) {
  // Once subscribing, only subscription commands go out, and those with no handler: an
  // error with none waiting is Redis refusing one of them (an ACL without its channels).
  if (subscribed_ && (is_push(reply) || (reply->type == REDIS_REPLY_ERROR && pending_.empty()))) {
    if (callbacks_.on_push) callbacks_.on_push(reply);
    return;
  }
  if (pending_.empty()) return;  // an answer to nothing we asked: ignored
  ReplyHandler handler = std::move(pending_.front());
  pending_.pop_front();
  if (handler) handler(reply);
}

void RespConnection::failed(const std::string& why) {
  if (closed_) return;
  auto on_closed = callbacks_.on_closed;
  close();
  if (on_closed) on_closed(why);
}

void RespConnection::drop_pending() {
  auto pending = std::move(pending_);
  pending_.clear();
  for (auto& handler : pending) {
    if (handler) handler(nullptr);
  }
}

void RespConnection::close() {
  if (closed_) return;
  closed_ = true;
  boost::system::error_code ignored;
  resolver_.cancel();
  tcp_.close(ignored);
  unix_.close(ignored);
  if (tls_) tls_->next_layer().close(ignored);
  drop_pending();
}

}  // namespace sluice::broker
