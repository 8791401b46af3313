#pragma once
// One RESP connection to Redis (or a Sentinel) over TCP, a Unix socket or TLS
// (rediss://, docs/protocol.md#redis-tls), read and written with Asio on the
// broker's Redis thread. hiredis formats the commands and parses the replies
// (Debian 12's hiredis 0.14 has no TLS of its own, so it does no I/O here).
//
// Replies are handed out in order to the handler of the command they answer. Once a
// (P)SUBSCRIBE has been sent, pub/sub pushes (message, pmessage, (p)(un)subscribe
// confirmations) go to the push handler instead.
#include <hiredis/hiredis.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>
#include <boost/asio/ssl.hpp>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <vector>

namespace sluice::broker {

class RespConnection : public std::enable_shared_from_this<RespConnection> {
 public:
  // The reply, or nullptr when the connection closed before it came.
  using ReplyHandler = std::function<void(redisReply*)>;

  struct Target {
    std::string host;
    int port = 0;
    std::string unix_path;                           // set: a Unix socket instead of host:port
    std::shared_ptr<boost::asio::ssl::context> tls;  // set: TLS, the certificate checked against host
  };

  struct Callbacks {
    // A pub/sub push, or an error refusing a subscription command.
    std::function<void(redisReply*)> on_push;
    // The connection failed or closed (not after close()): why.
    std::function<void(const std::string&)> on_closed;
  };

  RespConnection(boost::asio::io_context& io, Callbacks callbacks);
  ~RespConnection();
  RespConnection(const RespConnection&) = delete;
  RespConnection& operator=(const RespConnection&) = delete;

  // Starts connecting; commands sent meanwhile are written once connected.
  void connect(const Target& target);
  void send(const std::vector<std::string>& args, ReplyHandler on_reply);
  // (P)(UN)SUBSCRIBE: the confirmations and the messages go to on_push.
  void send_subscription(const std::vector<std::string>& args);
  // Closes without calling on_closed; pending handlers get nullptr.
  void close();

 private:
  void connected();
  void append(const std::vector<std::string>& args);
  void write_pending();
  void read_more();
  void dispatch(redisReply* reply);
  void failed(const std::string& why);
  void drop_pending();

  template <class Handler>
  void async_read_some(boost::asio::mutable_buffer buffer, Handler&& handler);
  template <class Handler>
  void async_write(boost::asio::const_buffer buffer, Handler&& handler);

  boost::asio::io_context& io_;
  Callbacks callbacks_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::ip::tcp::socket tcp_;
  boost::asio::local::stream_protocol::socket unix_;
  std::unique_ptr<boost::asio::ssl::stream<boost::asio::ip::tcp::socket>> tls_;  // owns the TCP socket when set
  bool use_unix_ = false;
  bool is_connected_ = false;
  bool writing_ = false;
  bool closed_ = false;
  bool subscribed_ = false;
  std::string outgoing_;  // formatted commands not yet handed to a write
  std::string in_flight_;
  std::vector<char> read_buffer_;
  std::deque<ReplyHandler> pending_;
  redisReader* reader_;
};

}  // namespace sluice::broker
