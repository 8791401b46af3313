#pragma once
// A small HTTP listener for the split broker and auth tiers: GET /metrics
// (Prometheus text of the global registry), GET /healthz (alive) and GET /readyz
// (200 only while the tier can really serve). Runs on its own thread.
#include <chrono>
#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace sluice {

class AdminHttpServer {
 public:
  // What one connection may take: a probe or a scrape is one short exchange, so a
  // connection that sends nothing, or does not read its answer, must not hold a file
  // descriptor for ever, nor may many of them exhaust the process's.
  struct Limits {
    std::chrono::milliseconds exchange_timeout{10000};  // request and response, together
    size_t max_connections = 64;  // more are closed at once, unanswered
  };

  // `listen` is "host:port"; an empty string means the server is disabled.
  AdminHttpServer(std::string listen, std::function<bool()> ready, Limits limits);
  AdminHttpServer(std::string listen, std::function<bool()> ready)
      : AdminHttpServer(std::move(listen), std::move(ready), Limits{}) {}
  ~AdminHttpServer();
  void start();  // throws ConfigError when the address is unusable
  void stop();
  int port() const;  // the bound port (useful with port 0)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

// Splits "host:port" (IPv6 hosts in brackets); throws ConfigError naming `variable`.
std::pair<std::string, int> split_host_port(const std::string& text, const std::string& variable);

}  // namespace sluice
