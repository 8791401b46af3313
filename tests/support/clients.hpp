#pragma once
// Blocking HTTP/SSE/WebSocket clients for end-to-end tests, speaking to the real
// server over real sockets, with timeouts on every read.
#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace sluice::testing {

using namespace std::chrono_literals;

struct HttpResponse {
  int status = 0;
  std::string head;  // status line and headers
  std::map<std::string, std::string> headers;  // lower-case names
  std::string body;
  std::string header(const std::string& name) const;
};

// A TCP connection with a receive buffer.
class Connection {
 public:
  // `receive_buffer` > 0 sets SO_RCVBUF before connecting (it must precede the
  // handshake to limit the window; loopback autotuning otherwise allows 32 MiB).
  Connection(const std::string& host, int port, int receive_buffer = 0);
  // A Unix-domain stream socket.
  explicit Connection(const std::string& unix_path);
  ~Connection();
  Connection(const Connection&) = delete;
  Connection& operator=(const Connection&) = delete;

  void send(const std::string& bytes);
  // Reads until `pred(buffer)` says how many bytes form the next item, or timeout.
  // Returns false on timeout or EOF (see `closed()`).
  bool fill(std::chrono::milliseconds timeout);
  std::string& buffer() { return buffer_; }
  bool closed() const { return closed_; }
  // True when the peer closes within `timeout` (reads and discards data).
  bool wait_closed(std::chrono::milliseconds timeout);
  void shutdown_write();
  int fd() const { return fd_; }

 private:
  int fd_ = -1;
  bool closed_ = false;
  std::string buffer_;
};

// Sends raw bytes on a fresh connection and returns everything the server sends
// back until it closes or `timeout` passes.
std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout = 5s);

// One request; reads the whole response (Content-Length or chunked or close).
HttpResponse http_request(int port, const std::string& method, const std::string& target,
                          const std::map<std::string, std::string>& headers = {},
                          std::chrono::milliseconds timeout = 10s);

struct SseEvent {
  std::string event;
  std::string data;
};

// GET an SSE stream; exposes the decoded (de-chunked) body as events and comments.
class SseClient {
 public:
  SseClient(int port, const std::string& target, const std::map<std::string, std::string>& headers = {});
  const HttpResponse& response() const { return response_; }
  // The next event block, skipping comment lines (":thump", ":)") unless asked.
  std::optional<SseEvent> next_event(std::chrono::milliseconds timeout = 5s);
  // The next raw block (text up to a blank line or a comment line), for comments.
  std::optional<std::string> next_block(std::chrono::milliseconds timeout = 5s);
  // True when the server ended the chunked body (last chunk) within `timeout`.
  bool wait_end(std::chrono::milliseconds timeout = 5s);
  bool ended() const { return ended_; }
  // After the stream ended: a GET of `target` on the same connection, as a keep-alive
  // client (Node's Agent, a browser) would send it; status 0 when the server closed,
  // -1 when it did neither within 10 s.
  HttpResponse request_again(const std::string& target, const std::map<std::string, std::string>& headers = {});
  void close() { connection_.reset(); }

 private:
  bool read_more(std::chrono::milliseconds timeout);
  std::unique_ptr<Connection> connection_;
  HttpResponse response_;
  std::string body_;  // decoded
  bool ended_ = false;
};

struct WsMessage {
  int opcode = 0;  // 1 text, 2 binary, 8 close, 9 ping, 10 pong
  std::string data;
  int close_code = 0;  // for close: 1005 when none
  std::string close_reason;
};

class WsClient {
 public:
  // Performs the handshake; `response()` holds the server's answer (101 or refusal).
  WsClient(int port, const std::string& target, const std::map<std::string, std::string>& headers = {});
  const HttpResponse& response() const { return response_; }
  bool upgraded() const { return response_.status == 101; }

  void send_text(const std::string& text);
  void send_binary(const std::string& data);
  void send_frame(int opcode, const std::string& payload, bool fin = true, bool masked = true);
  // The bytes of one client frame, for tests that need several in one TCP write.
  static std::string encode_frame(int opcode, const std::string& payload, bool fin = true, bool masked = true);
  // `reason` goes only with a code, as RFC 6455 allows.
  void send_close(std::optional<int> code = std::nullopt, const std::string& reason = "");
  // The next frame of any kind (pings included), or nullopt on timeout/EOF.
  std::optional<WsMessage> next_frame(std::chrono::milliseconds timeout = 5s);
  // The next text message, answering pings and skipping other control frames.
  std::optional<std::string> next_text(std::chrono::milliseconds timeout = 5s);
  bool wait_closed(std::chrono::milliseconds timeout) { return connection_->wait_closed(timeout); }
  Connection& connection() { return *connection_; }

 private:
  std::unique_ptr<Connection> connection_;
  HttpResponse response_;
};

}  // namespace sluice::testing
