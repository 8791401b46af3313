#pragma once
// A Server-Sent Events stream (docs/protocol.md#server-sent-events): one subscription for the life of the
// response, `:thump` heartbeats, ended normally on `kill`.
#include "gateway/client.hpp"

namespace sluice::gateway {

class SseSession final : public Client {
 public:
  SseSession(Worker& worker, Socket socket, ConnectionTicket ticket, std::shared_ptr<const AuthInfo> auth);

  // Writes the response head and `:)`, registers with the worker and subscribes.
  // Runs on the worker's thread.
  // `keep_alive`: the request allows the connection to serve another request once
  // this response has ended (docs/protocol.md#server-sent-events).
  void start(std::string request_id, std::unique_ptr<Subscription> subscription, bool keep_alive);

  void end_gracefully() override;
  void go_away() override;

 protected:
  void heartbeat() override;
  // Anything the client sends after its request is ignored; EOF ends the stream.
  void on_bytes(const char*, size_t) override {}

 private:
  void end_response(bool serve_next_request);

  bool keep_alive_ = true;
};

}  // namespace sluice::gateway
