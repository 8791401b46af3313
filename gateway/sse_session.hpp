#pragma once
// A Server-Sent Events stream (contract §5): one subscription for the life of the
// response, `:thump` heartbeats, ended normally on `kill`.
#include "gateway/client.hpp"

namespace sluice::gateway {

class SseSession final : public Client {
 public:
  SseSession(Worker& worker, Socket socket, std::shared_ptr<const AuthInfo> auth);

  // Writes the response head and `:)`, registers with the worker and subscribes.
  // Runs on the worker's thread.
  void start(std::string request_id, std::unique_ptr<Subscription> subscription);

  void end_gracefully() override;
  void heartbeat() override;

 protected:
  // Anything the client sends after its request is ignored; EOF ends the stream.
  void on_bytes(const char*, size_t) override {}
};

}  // namespace sluice::gateway
