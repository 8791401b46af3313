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

#include "gateway/admission.hpp"
#include "gateway/auth_client.hpp"
#include "gateway/socket.hpp"
#include "gateway/streams.hpp"

namespace sluice::gateway {

class Worker;

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;

// docs/protocol.md#token-sources: Authorization header (one leading "Bearer " removed), else the first
// access_token parameter, else the raw Sec-WebSocket-Protocol header. nullopt
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
  HttpSession(Worker& worker, Socket socket);
  void start();
  // A connection whose streaming response has ended: wait for its next request.
  void serve_next_request();

 private:
  void read_request(bool keep_alive_wait);
  void read_more();
  void parse_buffered();
  void on_request(const boost::system::error_code& ec);
  void route();
  void handle_upgrade();
  void handle_stream_request(std::string stream_name, Params query);
  void open_event_stream(std::shared_ptr<const AuthInfo> auth, AdmittedStream admitted);
  void respond(std::string bytes, bool keep_alive);
  void respond_error(int status, std::string_view message);
  void write_raw_and_close(std::string bytes);

  Worker& worker_;
  Socket socket_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Request request_;
  std::string request_id_;
};

}  // namespace sluice::gateway
