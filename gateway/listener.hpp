#pragma once
// Accepts client connections on PORT/BIND or on the SOCKET path (docs/protocol.md#listening)
// and deals them out to the workers round-robin.
#include <boost/asio/steady_timer.hpp>
#include <memory>
#include <vector>

#include "gateway/gateway_config.hpp"
#include "gateway/socket.hpp"

namespace sluice::gateway {

class Worker;

class Listener {
 public:
  Listener(asio::io_context& io, std::vector<Worker*> workers);
  // Binds and listens; throws ConfigError with a clear message when it cannot.
  void open(const GatewayConfig& config);
  void start();
  void close();
  // The bound TCP port (0 for a Unix socket).
  int port() const { return port_; }

 private:
  void accept();

  asio::io_context& io_;
  std::vector<Worker*> workers_;
  Acceptor acceptor_;
  asio::steady_timer retry_timer_;
  size_t next_worker_ = 0;
  int port_ = 0;
  bool tcp_ = true;
};

}  // namespace sluice::gateway
