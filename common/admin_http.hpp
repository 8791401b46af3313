#pragma once
// A small HTTP listener for the split broker and auth tiers: GET /metrics
// (Prometheus text of the global registry), GET /healthz (alive) and GET /readyz
// (200 only while the tier can really serve). Runs on its own thread.
#include <functional>
#include <memory>
#include <string>

namespace sluice {

class AdminHttpServer {
 public:
  // `listen` is "host:port"; an empty string means the server is disabled.
  AdminHttpServer(std::string listen, std::function<bool()> ready);
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
