#include "gateway/listener.hpp"

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/local/stream_protocol.hpp>

#include "common/config_error.hpp"
#include "common/log.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/http_session.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {

using tcp = asio::ip::tcp;

Listener::Listener(asio::io_context& io, std::vector<Worker*> workers)
    : io_(io), workers_(std::move(workers)), acceptor_(io), retry_timer_(io) {}

void Listener::open(const GatewayConfig& config) {
  boost::system::error_code ec;
  asio::generic::stream_protocol::endpoint endpoint;
  std::string where;
  if (!config.socket_path.empty()) {
    tcp_ = false;
    where = config.socket_path;
    ::unlink(config.socket_path.c_str());  // a stale socket file from a previous run
    endpoint = asio::local::stream_protocol::endpoint(config.socket_path);
  } else {
    std::string host = config.bind.empty() ? "::" : config.bind;
    tcp::resolver resolver(io_);
    auto results = resolver.resolve(host, std::to_string(config.port), tcp::resolver::passive, ec);
    if (ec && config.bind.empty()) results = resolver.resolve("0.0.0.0", std::to_string(config.port), ec);
    if (ec || results.empty()) throw ConfigError("Cannot resolve BIND address '" + config.bind + "': " + ec.message());
    endpoint = asio::generic::stream_protocol::endpoint(results.begin()->endpoint());
    where = host + ":" + std::to_string(config.port);
  }
  acceptor_.open(endpoint.protocol(), ec);
  if (!ec && tcp_) {
    acceptor_.set_option(asio::socket_base::reuse_address(true), ec);
    if (config.reuse_port) {
      int one = 1;
      ::setsockopt(acceptor_.native_handle(), SOL_SOCKET, SO_REUSEPORT, &one, sizeof one);
    }
    if (endpoint.protocol().family() == AF_INET6) {
      int zero = 0;  // dual-stack, like Node on "::"
      ::setsockopt(acceptor_.native_handle(), IPPROTO_IPV6, IPV6_V6ONLY, &zero, sizeof zero);
    }
  }
  if (!ec) acceptor_.bind(endpoint, ec);
  if (!ec) acceptor_.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw ConfigError("Cannot listen on " + where + ": " + ec.message());
  if (!tcp_) ::chmod(config.socket_path.c_str(), 0666);  // docs/protocol.md#listening
  if (tcp_) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    ::getsockname(acceptor_.native_handle(), reinterpret_cast<sockaddr*>(&addr), &len);
    port_ = addr.ss_family == AF_INET6 ? ntohs(reinterpret_cast<sockaddr_in6*>(&addr)->sin6_port)
                                       : ntohs(reinterpret_cast<sockaddr_in*>(&addr)->sin_port);
  }
  log::info("streaming API listening", {{"address", where}});
}

void Listener::start() { accept(); }

void Listener::close() {
  asio::post(io_, [this] {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    retry_timer_.cancel();
  });
}

void Listener::accept() {
  Worker* worker = workers_[next_worker_++ % workers_.size()];
  acceptor_.async_accept(worker->io(), [this, worker](const boost::system::error_code& ec, Socket socket) {
    if (ec == asio::error::operation_aborted || !acceptor_.is_open()) return;
    if (ec) {
      // Out of file descriptors or memory: wait a moment rather than spin.
      log::warn("accept failed", {{"error", ec.message()}});
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](const boost::system::error_code& timer_ec) {
        if (!timer_ec) accept();
      });
      return;
    }
    if (tcp_) {
      int one = 1;
      ::setsockopt(socket.native_handle(), IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }
    auto ticket = worker->context().connection_limits.admit();
    asio::post(worker->io(), [worker, socket = std::move(socket), ticket = std::move(ticket)]() mutable {
      std::make_shared<HttpSession>(*worker, std::move(socket), std::move(ticket))->start();
    });
    accept();
  });
}

}  // namespace sluice::gateway
