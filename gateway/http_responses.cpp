#include "gateway/http_responses.hpp"

#include <algorithm>
#include <boost/beast/http/status.hpp>
#include <ctime>
#include <random>
#include <unordered_set>

#include "common/js_json.hpp"

namespace sluice::gateway {

namespace http = boost::beast::http;

namespace {

std::string http_date() {
  std::time_t now = std::time(nullptr);
  std::tm tm{};
  ::gmtime_r(&now, &tm);
  char buf[64];
  std::strftime(buf, sizeof buf, "%a, %d %b %Y %H:%M:%S GMT", &tm);
  return buf;
}

std::string status_line(int status) {
  return "HTTP/1.1 " + std::to_string(status) + " " + status_reason(status) + "\r\n";
}

// `name: value` and its line end.
void append_header(std::string& out, std::string_view name, std::string_view value) {
  out.append(name).append(": ").append(value).append("\r\n");
}

std::string common_headers(std::string_view request_id) {
  std::string out;
  append_header(out, "X-Request-Id", request_id);
  out += "Access-Control-Allow-Origin: *\r\n";
  append_header(out, "Date", http_date());
  return out;
}

std::string connection_header(bool keep_alive) {
  return keep_alive ? "Connection: keep-alive\r\nKeep-Alive: timeout=5\r\n" : "Connection: close\r\n";
}

bool is_token_char(char c) {
  // RFC 7230 tchar.
  static constexpr std::string_view kExtra = "!#$%&'*+-.^_`|~";
  return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
         kExtra.find(c) != std::string_view::npos;
}

}  // namespace

std::string make_request_id() {
  thread_local std::mt19937_64 rng{std::random_device{}()};
  uint64_t a = rng(), b = rng();
  a = (a & 0xFFFFFFFFFFFF0FFFULL) | 0x0000000000004000ULL;  // version 4
  b = (b & 0x3FFFFFFFFFFFFFFFULL) | 0x8000000000000000ULL;  // variant 10
  char buf[37];
  std::snprintf(buf, sizeof buf, "%08x-%04x-%04x-%04x-%012llx", static_cast<unsigned>(a >> 32),
                static_cast<unsigned>((a >> 16) & 0xFFFF), static_cast<unsigned>(a & 0xFFFF),
                static_cast<unsigned>(b >> 48), static_cast<unsigned long long>(b & 0xFFFFFFFFFFFFULL));
  return buf;
}

std::string status_reason(int status) {
  auto reason = http::obsolete_reason(http::int_to_status(static_cast<unsigned>(status)));
  return std::string(reason.data(), reason.size());
}

std::string json_error_response(int status, std::string_view message, std::string_view request_id,
                                bool keep_alive) {
  std::string body = "{\"error\":";
  append_js_string_literal(body, message);
  body += '}';
  return plain_response(status, "application/json", body, request_id, keep_alive);
}

std::string cors_preflight_response(std::string_view request_id, std::string_view request_headers, bool keep_alive) {
  std::string out = status_line(204);
  out += common_headers(request_id);
  out += "Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n";
  // The answer reflects the request's headers, so a cache must key on them always.
  append_header(out, "Vary", "Access-Control-Request-Headers");
  if (!request_headers.empty()) append_header(out, "Access-Control-Allow-Headers", request_headers);
  out += "Content-Length: 0\r\n";
  out += connection_header(keep_alive);
  out += "\r\n";
  return out;
}

std::string plain_response(int status, std::string_view content_type, std::string_view body,
                           std::string_view request_id, bool keep_alive, bool no_store) {
  std::string out = status_line(status);
  out += common_headers(request_id);
  if (!content_type.empty()) append_header(out, "Content-Type", content_type);
  if (no_store) out += "Cache-Control: private, no-store\r\n";
  append_header(out, "Content-Length", std::to_string(body.size()));
  out += connection_header(keep_alive);
  out += "\r\n";
  out += body;
  return out;
}

std::string with_retry_after(std::string response, int seconds) {
  size_t line_end = response.find("\r\n");
  if (line_end == std::string::npos) return response;
  response.insert(line_end + 2, "Retry-After: " + std::to_string(seconds) + "\r\n");
  return response;
}

std::string websocket_rejection(int status, std::string_view message, std::string_view request_id) {
  std::string out = status_line(status);
  out += "Connection: close\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n";
  append_header(out, "X-Request-Id", request_id);
  append_header(out, "X-Error-Message", message);
  out += "\r\n";
  return out;
}

std::string websocket_accept_response(std::string_view accept_key, std::optional<std::string_view> protocol,
                                      std::string_view request_id) {
  std::string out = status_line(101);
  out += "Upgrade: websocket\r\nConnection: Upgrade\r\n";
  append_header(out, "Sec-WebSocket-Accept", accept_key);
  if (protocol) append_header(out, "Sec-WebSocket-Protocol", *protocol);
  append_header(out, "X-Request-Id", request_id);
  out += "\r\n";
  return out;
}

std::string missing_host_response(bool head) {
  // Node answers HEAD without a body, and so without the chunked encoding that frames one.
  if (head) return status_line(400) + "Connection: close\r\nDate: " + http_date() + "\r\n\r\n";
  return status_line(400) + "Connection: close\r\nDate: " + http_date() +
         "\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n";
}

bool has_obsolete_line_folding(std::string_view bytes) {
  size_t head_end = bytes.find("\r\n\r\n");
  std::string_view head = head_end == std::string_view::npos ? bytes : bytes.substr(0, head_end + 2);
  for (size_t eol = head.find('\n'); eol != std::string_view::npos; eol = head.find('\n', eol + 1)) {
    if (eol + 1 < head.size() && (head[eol + 1] == ' ' || head[eol + 1] == '\t')) return true;
  }
  return false;
}

std::string sse_response_head(std::string_view request_id, bool keep_alive) {
  std::string out = status_line(200);
  out += common_headers(request_id);
  out += "Content-Type: text/event-stream\r\nCache-Control: private, no-store\r\nTransfer-Encoding: chunked\r\n";
  out += connection_header(keep_alive);
  out += "\r\n";
  out += chunk(":)\n");
  return out;
}

std::string chunk(std::string_view data) {
  char size[20];
  int n = std::snprintf(size, sizeof size, "%zx\r\n", data.size());
  std::string out;
  out.reserve(static_cast<size_t>(n) + data.size() + 2);
  out.append(size, static_cast<size_t>(n));
  out.append(data);
  out += "\r\n";
  return out;
}

std::string sse_event_chunk(std::string_view event, std::string_view payload) {
  std::string body;
  body.reserve(event.size() + payload.size() + 16);
  body += "event: ";
  body += event;
  body += "\ndata: ";
  body += payload;
  body += "\n\n";
  return chunk(body);
}

std::optional<std::string> first_subprotocol(std::string_view header) {
  // Like node ws: comma-separated tokens, optional whitespace around commas; one empty,
  // non-token or repeated item makes the whole header malformed.
  std::optional<std::string> first;
  std::unordered_set<std::string_view> seen;
  bool malformed = false;
  for_each_list_item(header, [&](std::string_view item) {
    malformed = item.empty() || !std::all_of(item.begin(), item.end(), is_token_char) || !seen.insert(item).second;
    if (!malformed && !first) first = std::string(item);
    return !malformed;
  });
  if (malformed) return std::nullopt;
  return first;
}

}  // namespace sluice::gateway
