#pragma once
// The plain HTTP part of a connection (docs/protocol.md#http-surface): reads requests, answers the
// unauthenticated routes, authenticates, and hands the socket over to an SSE or
// WebSocket session. Its buffers die with it, so streaming connections keep none.
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <memory>
#include <optional>
#include <string>

#include "gateway/access_log.hpp"
#include "gateway/admission.hpp"
#include "gateway/auth_client.hpp"
#include "gateway/connection_limits.hpp"
#include "gateway/gateway_metrics.hpp"
#include "gateway/request_reader.hpp"
#include "gateway/socket.hpp"
#include "gateway/streams.hpp"

namespace sluice::gateway {

class Worker;

// docs/protocol.md#token-sources: Authorization header (one leading "Bearer " removed), else the first
// access_token parameter, else the raw Sec-WebSocket-Protocol header (its lines joined with
// ", ", as Node joins them). nullopt
// when there is none ("Missing access token").
std::optional<std::string> token_from_request(const Request& request, const Params& query);

// Node's HTTP parser treats a request as an upgrade when Connection lists
// "upgrade" and an Upgrade header is present (docs/protocol.md#websocket-upgrade: any path).
bool is_upgrade_request(const Request& request);

// ws's handshake checks, run after authentication (docs/protocol.md#handshake-and-subprotocol-echo). Returns the raw
// response to write when the handshake must be refused.
std::optional<std::string> websocket_handshake_error(const Request& request);

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(Worker& worker, Socket socket, ConnectionTicket ticket);
  void start();
  // A connection whose streaming response has ended: wait for its next request.
  void serve_next_request();

 private:
  void read_request(bool keep_alive_wait);
  // Closes the socket after `timeout` unless the timer is re-armed or cancelled first.
  void close_after(std::chrono::seconds timeout);
  void read_more();
  void parse_buffered();
  void on_request(const boost::system::error_code& ec);
  void begin_record(std::string_view method, std::string_view target);
  void route();
  void handle_upgrade();
  void handle_stream_request(std::string stream_name, Params query);
  void open_event_stream(std::shared_ptr<const AuthInfo> auth, AdmittedStream admitted);
  // docs/protocol.md#admission-limits: the limit a stream request on this connection
  // is past, if any; then the refusal, and the handshake deadline.
  std::optional<Refusal> limit_refusal();
  // The address the per-address limits count: empty for a trusted proxy's own
  // address or a Unix-socket peer, which are never limited.
  std::string limited_address() const;
  // The token lookup's outcome for the per-address failure budget and the metrics.
  void note_lookup(const TokenResult& result);
  void refuse(Refusal refusal, bool websocket);
  void arm_handshake_deadline(bool websocket);
  // False once the request has been answered or its stream opened: late auth
  // replies after a handshake timeout do nothing.
  bool awaiting_answer() const { return !answered_; }
  // An HTTP response to the request (a HEAD request's without its body).
  void respond(std::string bytes, bool keep_alive);
  // Writes `bytes` as they are, then serves the next request or closes.
  void write_response(std::string bytes, bool keep_alive);
  // docs/hosting.md#routing: the instance the request is for, into record_.tenant; false
  // (after a 404 to the client) when no tenant serves its Host.
  bool pick_tenant(bool websocket);
  void respond_error(int status, std::string_view message);
  void respond_error(const StreamError& error);
  // Bytes written as they are, body and all, whatever the method (refused upgrades, as
  // node ws writes them to the socket).
  void write_raw_and_close(std::string bytes);

  Worker& worker_;
  Socket socket_;
  ConnectionTicket ticket_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<RequestReader> reader_;
  Request request_;
  // What the access log says of the current request (docs/protocol.md#access-log).
  RequestRecord record_;
  bool answered_ = false;
  // Between requests on a keep-alive connection, until the next one's first byte.
  bool idle_ = false;
};

}  // namespace sluice::gateway
