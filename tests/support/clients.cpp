#include "tests/support/clients.hpp"

#include <gtest/gtest.h>

#include <charconv>

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <random>
#include <stdexcept>

namespace sluice::testing {
namespace {

std::string lower(std::string s) {
  std::transform(s.begin(), s.end(), s.begin(), [](unsigned char c) { return std::tolower(c); });
  return s;
}

// Parses a response head; returns its length or 0 when incomplete.
size_t parse_head(const std::string& buffer, HttpResponse& response) {
  auto end = buffer.find("\r\n\r\n");
  if (end == std::string::npos) return 0;
  response.head = buffer.substr(0, end + 4);
  response.status = std::atoi(response.head.c_str() + 9);
  size_t pos = response.head.find("\r\n") + 2;
  while (pos < end) {
    size_t eol = response.head.find("\r\n", pos);
    std::string line = response.head.substr(pos, eol - pos);
    auto colon = line.find(':');
    if (colon != std::string::npos) {
      std::string value = line.substr(colon + 1);
      while (!value.empty() && value.front() == ' ') value.erase(0, 1);
      response.headers[lower(line.substr(0, colon))] = value;
    }
    pos = eol + 2;
  }
  return end + 4;
}

// Decodes complete chunks from `raw` into `out`; returns false once the last chunk arrived.
bool dechunk(std::string& raw, std::string& out, bool& ended) {
  for (;;) {
    auto eol = raw.find("\r\n");
    if (eol == std::string::npos) return true;
    // A size line that is not hex means the stream is corrupt (bytes lost or doubled):
    // a test failure that ends this stream, not an exception out of a reader thread.
    size_t size = 0;
    auto [end, error] = std::from_chars(raw.data(), raw.data() + eol, size, 16);
    if (error != std::errc() || end == raw.data()) {
      ADD_FAILURE() << "corrupt chunked body, size line: " << raw.substr(0, std::min<size_t>(eol, 80));
      ended = true;
      raw.clear();
      return false;
    }
    if (raw.size() < eol + 2 + size + 2) return true;
    if (size == 0) {
      ended = true;
      raw.erase(0, eol + 4);
      return false;
    }
    out.append(raw, eol + 2, size);
    raw.erase(0, eol + 2 + size + 2);
  }
}

// Reads until a whole response head arrived, parses it and removes it from the
// connection's buffer; false on EOF or after 10 s.
bool read_head(Connection& connection, HttpResponse& response) {
  auto deadline = std::chrono::steady_clock::now() + 10s;
  size_t head_size = 0;
  while (!(head_size = parse_head(connection.buffer(), response))) {
    connection.fill(100ms);
    if (connection.closed() || std::chrono::steady_clock::now() > deadline) return false;
  }
  connection.buffer().erase(0, head_size);
  return true;
}

// "Host: 127.0.0.1" unless `headers` name a Host of their own (a tenant's,
// docs/hosting.md#routing), then the other headers.
std::string request_headers(const std::map<std::string, std::string>& headers) {
  auto host = headers.find("Host");
  std::string out = "Host: " + (host == headers.end() ? std::string("127.0.0.1") : host->second) + "\r\n";
  for (const auto& [k, v] : headers) {
    if (k != "Host") out += k + ": " + v + "\r\n";
  }
  return out;
}

std::string get_request(const std::string& target, const std::string& fixed_headers,
                        const std::map<std::string, std::string>& headers) {
  return "GET " + target + " HTTP/1.1\r\n" + fixed_headers + request_headers(headers) + "\r\n";
}

}  // namespace

std::string HttpResponse::header(const std::string& name) const {
  auto it = headers.find(lower(name));
  return it == headers.end() ? std::string() : it->second;
}

Connection::Connection(const std::string& host, int port, int receive_buffer) {
  fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
  if (receive_buffer > 0) ::setsockopt(fd_, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(static_cast<uint16_t>(port));
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error("connect to " + host + ":" + std::to_string(port) + " failed");
  }
  int one = 1;
  ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
}

Connection::Connection(const std::string& unix_path) {
  fd_ = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::strncpy(addr.sun_path, unix_path.c_str(), sizeof addr.sun_path - 1);
  if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd_);
    throw std::runtime_error("connect to " + unix_path + " failed");
  }
}

Connection::~Connection() {
  if (fd_ >= 0) ::close(fd_);
}

void Connection::send(const std::string& bytes) {
  size_t sent = 0;
  while (sent < bytes.size()) {
    ssize_t n = ::send(fd_, bytes.data() + sent, bytes.size() - sent, MSG_NOSIGNAL);
    if (n <= 0) throw std::runtime_error("send failed");
    sent += static_cast<size_t>(n);
  }
}

bool Connection::fill(std::chrono::milliseconds timeout) {
  if (closed_) return false;
  pollfd p{fd_, POLLIN, 0};
  int rc = ::poll(&p, 1, static_cast<int>(timeout.count()));
  if (rc <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
  if (n <= 0) {
    closed_ = true;
    return false;
  }
  buffer_.append(buf, static_cast<size_t>(n));
  return true;
}

bool Connection::wait_closed(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!closed_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    fill(left);
    buffer_.clear();
  }
  return true;
}

void Connection::shutdown_write() { ::shutdown(fd_, SHUT_WR); }

std::string raw_exchange(int port, const std::string& bytes, std::chrono::milliseconds timeout) {
  Connection connection("127.0.0.1", port);
  connection.send(bytes);
  auto deadline = std::chrono::steady_clock::now() + timeout;
  std::string out;
  while (!connection.closed() && std::chrono::steady_clock::now() < deadline) {
    connection.fill(50ms);
    out += connection.buffer();
    connection.buffer().clear();
  }
  return out;
}

namespace {

// Reads one response to `method` (Content-Length, chunked, or until close).
HttpResponse read_response(Connection& connection, const std::string& method, std::chrono::milliseconds timeout) {
  HttpResponse response;
  auto deadline = std::chrono::steady_clock::now() + timeout;
  size_t head_size = 0;
  while (!(head_size = parse_head(connection.buffer(), response))) {
    if (std::chrono::steady_clock::now() > deadline || !connection.fill(100ms)) {
      if (connection.closed() || std::chrono::steady_clock::now() > deadline) return response;
    }
  }
  std::string rest = connection.buffer().substr(head_size);
  connection.buffer().clear();
  bool chunked = lower(response.header("transfer-encoding")) == "chunked";
  std::string length = response.header("content-length");
  if (method == "HEAD" || response.status == 204 || response.status == 304) {
    connection.buffer() = rest;
    return response;
  }
  for (;;) {
    if (chunked) {
      bool ended = false;
      std::string raw = rest;
      std::string decoded;
      dechunk(raw, decoded, ended);
      if (ended) {
        response.body = decoded;
        connection.buffer() = raw;
        return response;
      }
    } else if (!length.empty() && rest.size() >= std::stoul(length)) {
      response.body = rest.substr(0, std::stoul(length));
      connection.buffer() = rest.substr(std::stoul(length));
      return response;
    }
    if (std::chrono::steady_clock::now() > deadline) break;
    if (!connection.fill(100ms) && connection.closed()) break;
    rest += connection.buffer();
    connection.buffer().clear();
  }
  response.body = rest;
  return response;
}

}  // namespace

HttpResponse http_request(int port, const std::string& method, const std::string& target,
                          const std::map<std::string, std::string>& headers, std::chrono::milliseconds timeout) {
  Connection connection("127.0.0.1", port);
  std::string request =
      method + " " + target + " HTTP/1.1\r\nConnection: close\r\n" + request_headers(headers) + "\r\n";
  connection.send(request);
  return read_response(connection, method, timeout);
}

SseClient::SseClient(int port, const std::string& target, const std::map<std::string, std::string>& headers)
    : connection_(std::make_unique<Connection>("127.0.0.1", port)) {
  connection_->send(get_request(target, "Accept: text/event-stream\r\n", headers));
  if (!read_head(*connection_, response_)) return;
  if (response_.status != 200) {
    // Error responses carry a Content-Length body.
    std::string length = response_.header("content-length");
    while (!length.empty() && connection_->buffer().size() < std::stoul(length) && connection_->fill(1000ms)) {
    }
    response_.body = connection_->buffer();
    return;
  }
  dechunk(connection_->buffer(), body_, ended_);
}

bool SseClient::read_more(std::chrono::milliseconds timeout) {
  if (!connection_ || ended_) return false;
  if (!connection_->fill(timeout)) return false;
  dechunk(connection_->buffer(), body_, ended_);
  return true;
}

std::optional<std::string> SseClient::next_block(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    // A comment line (":)\n", ":thump\n\n") or an event block ending in a blank line.
    if (!body_.empty() && body_[0] == ':') {
      auto eol = body_.find('\n');
      if (eol != std::string::npos) {
        std::string block = body_.substr(0, eol);
        body_.erase(0, eol + 1);
        if (!body_.empty() && body_[0] == '\n') body_.erase(0, 1);
        return block;
      }
    } else {
      auto end = body_.find("\n\n");
      if (end != std::string::npos) {
        std::string block = body_.substr(0, end);
        body_.erase(0, end + 2);
        return block;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0 || (!read_more(left) && (ended_ || !connection_ || connection_->closed()))) {
      if (std::chrono::steady_clock::now() >= deadline || ended_ || !connection_ || connection_->closed()) {
        return std::nullopt;
      }
    }
  }
}

std::optional<SseEvent> SseClient::next_event(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto block = next_block(left);
    if (!block) return std::nullopt;
    if (block->empty() || (*block)[0] == ':') continue;
    SseEvent event;
    size_t pos = 0;
    while (pos < block->size()) {
      size_t eol = block->find('\n', pos);
      if (eol == std::string::npos) eol = block->size();
      std::string line = block->substr(pos, eol - pos);
      if (line.rfind("event: ", 0) == 0) event.event = line.substr(7);
      else if (line.rfind("data: ", 0) == 0) event.data = line.substr(6);
      pos = eol + 1;
    }
    return event;
  }
}

HttpResponse SseClient::request_again(const std::string& target, const std::map<std::string, std::string>& headers) {
  if (!connection_ || connection_->closed()) return {};
  connection_->send(get_request(target, "", headers));
  HttpResponse response = read_response(*connection_, "GET", 10s);
  // Neither an answer nor the end of the connection: not the same as a close.
  if (response.status == 0 && !connection_->closed()) response.status = -1;
  return response;
}

bool SseClient::wait_end(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!ended_) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return false;
    if (!read_more(left) && connection_ && connection_->closed()) return ended_;
  }
  return true;
}

WsClient::WsClient(int port, const std::string& target, const std::map<std::string, std::string>& headers)
    : connection_(std::make_unique<Connection>("127.0.0.1", port)) {
  connection_->send(get_request(target,
                                "Upgrade: websocket\r\nConnection: Upgrade\r\n"
                                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n",
                                headers));
  if (!read_head(*connection_, response_)) return;
}

void WsClient::send_frame(int opcode, const std::string& payload, bool fin, bool masked) {
  connection_->send(encode_frame(opcode, payload, fin, masked));
}

std::string WsClient::encode_frame(int opcode, const std::string& payload, bool fin, bool masked) {
  std::string frame;
  frame += static_cast<char>((fin ? 0x80 : 0) | opcode);
  unsigned char mask_bit = masked ? 0x80 : 0;
  if (payload.size() < 126) {
    frame += static_cast<char>(mask_bit | payload.size());
  } else if (payload.size() < 65536) {
    frame += static_cast<char>(mask_bit | 126);
    frame += static_cast<char>(payload.size() >> 8);
    frame += static_cast<char>(payload.size() & 0xFF);
  } else {
    frame += static_cast<char>(mask_bit | 127);
    for (int i = 7; i >= 0; --i) frame += static_cast<char>((static_cast<uint64_t>(payload.size()) >> (8 * i)) & 0xFF);
  }
  static std::mt19937 rng{12345};
  unsigned char key[4];
  for (auto& k : key) k = static_cast<unsigned char>(rng());
  if (masked) frame.append(reinterpret_cast<char*>(key), 4);
  for (size_t i = 0; i < payload.size(); ++i) {
    frame += masked ? static_cast<char>(payload[i] ^ key[i % 4]) : payload[i];
  }
  return frame;
}

void WsClient::send_text(const std::string& text) { send_frame(1, text); }
void WsClient::send_binary(const std::string& data) { send_frame(2, data); }

void WsClient::send_close(std::optional<int> code, const std::string& reason) {
  std::string payload;
  if (code) {
    payload += static_cast<char>(*code >> 8);
    payload += static_cast<char>(*code & 0xFF);
    payload += reason;
  }
  send_frame(8, payload);
}

std::optional<WsMessage> WsClient::next_frame(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto& buf = connection_->buffer();
    if (buf.size() >= 2) {
      auto b0 = static_cast<unsigned char>(buf[0]), b1 = static_cast<unsigned char>(buf[1]);
      uint64_t len = b1 & 0x7F;
      size_t header = 2;
      if (len == 126 && buf.size() >= 4) {
        len = (static_cast<unsigned char>(buf[2]) << 8) | static_cast<unsigned char>(buf[3]);
        header = 4;
      } else if (len == 127 && buf.size() >= 10) {
        len = 0;
        for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(buf[2 + i]);
        header = 10;
      } else if (len >= 126) {
        header = 0;
      }
      if (header && buf.size() >= header + len) {
        WsMessage message;
        message.opcode = b0 & 0x0F;
        message.data = buf.substr(header, len);
        buf.erase(0, header + len);
        if (message.opcode == 8) {
          if (message.data.size() >= 2) {
            message.close_code =
                (static_cast<unsigned char>(message.data[0]) << 8) | static_cast<unsigned char>(message.data[1]);
            message.close_reason = message.data.substr(2);
          } else {
            message.close_code = 1005;
          }
        }
        return message;
      }
    }
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    if (!connection_->fill(left) && connection_->closed()) return std::nullopt;
  }
}

std::optional<std::string> WsClient::next_text(std::chrono::milliseconds timeout) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  for (;;) {
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
    if (left.count() <= 0) return std::nullopt;
    auto frame = next_frame(left);
    if (!frame) return std::nullopt;
    if (frame->opcode == 9) {
      send_frame(10, frame->data);
      continue;
    }
    if (frame->opcode == 1) return frame->data;
    if (frame->opcode == 8) return std::nullopt;
  }
}

}  // namespace sluice::testing
