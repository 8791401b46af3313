#pragma once
// A streaming WebSocket (docs/protocol.md#websocket-protocol): any number of subscriptions managed with
// subscribe/unsubscribe messages, server pings every 30 s, binary frames refused.
#include <string>
#include <vector>

#include "gateway/websocket_protocol.hpp"
#include "gateway/admission.hpp"
#include "gateway/client.hpp"
#include "gateway/client_message.hpp"
#include "gateway/token_bucket.hpp"

namespace sluice::gateway {

class WebSocketSession final : public Client {
 public:
  WebSocketSession(Worker& worker, Socket socket, ConnectionTicket ticket, std::shared_ptr<const AuthInfo> auth);

  // Writes the 101 handshake (bytes already built), registers with the worker, and
  // subscribes `?stream=` when the URL had one (docs/protocol.md#opening-a-websocket). Runs on the worker's thread.
  void start(std::string handshake, const Params& query, std::string_view early_bytes);

  void end_gracefully() override;
  void go_away() override {
    set_end_reason("draining");
    close_with(websocket_close::going_away, {});
  }

  // docs/protocol.md#client-messages: one client text message.
  void handle_message(std::string_view text);

 protected:
  void heartbeat() override;
  void on_bytes(const char* data, size_t size) override;

 private:
  // Subscribe and unsubscribe requests of one socket run one after another, in the
  // order the client sent them, even when their checks wait for the auth service:
  // a subscribe followed by an unsubscribe never leaves a subscription behind.
  void submit(ClientRequest request);
  void run(ClientRequest request);
  void request_done();
  void subscribe(const std::string& stream_name, const Params& params);
  void unsubscribe(const std::string& stream_name, const Params& params);
  // The outcome of check_stream_access (gateway/admission.hpp), on this worker's thread.
  void add_admitted(std::variant<AdmittedStream, StreamError> checked);
  void remove_admitted(const std::variant<AdmittedStream, StreamError>& checked);
  // docs/protocol.md#subscribe-errors: error frames go out only while the socket is open and not awaiting a pong.
  void send_error(std::string_view message, std::optional<int> status);
  void close_with(uint16_t code, std::string_view reason);

  WebSocketFrameParser parser_;
  TokenBucket messages_;  // SLUICE_WS_MAX_MESSAGES_PER_SECOND
  bool alive_ = true;
  bool request_running_ = false;
  std::vector<ClientRequest> waiting_requests_;
  size_t waiting_bytes_ = 0;  // their ClientRequest::bytes()
};

}  // namespace sluice::gateway
