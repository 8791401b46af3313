#pragma once
// Exact bytes of every response the gateway writes itself (docs/protocol.md#http-surface,
// docs/protocol.md#server-sent-events),
// built as strings so they are testable without sockets.
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway {

// A random UUID v4, as the reference's X-Request-Id.
std::string make_request_id();
std::string status_reason(int status);

// docs/protocol.md#error-responses: `{"error":"<message>"}` with Content-Type application/json.
std::string json_error_response(int status, std::string_view message, std::string_view request_id,
                                bool keep_alive);
// docs/protocol.md#cors-and-options: the answer to any OPTIONS request.
// `request_headers`: Access-Control-Request-Headers as Node joins its lines (empty
// when absent or empty).
std::string cors_preflight_response(std::string_view request_id, std::string_view request_headers, bool keep_alive);
// A plain response with the CORS header (health, metrics, favicon, 404s).
std::string plain_response(int status, std::string_view content_type, std::string_view body,
                           std::string_view request_id, bool keep_alive, bool no_store = false);
// docs/protocol.md#upgrade-refusal: the raw refusal of a WebSocket upgrade.
std::string websocket_rejection(int status, std::string_view message, std::string_view request_id);
// docs/protocol.md#handshake-and-subprotocol-echo: the 101 handshake, with the
// subprotocol echoed when one was offered.
std::string websocket_accept_response(std::string_view accept_key, std::optional<std::string_view> protocol,
                                      std::string_view request_id);
// docs/protocol.md#sse-response-head: SSE response head followed by the first chunk ":)\n".
// `response` with a Retry-After header after its status line (docs/protocol.md#admission-limits).
std::string with_retry_after(std::string response, int seconds);
// Node's answer to an HTTP/1.1 request without a Host header (to HEAD: without a body).
std::string missing_host_response(bool head);

// True when the request head in `bytes` (up to its blank line, or all of it while
// incomplete) continues a header on the next line (obs-fold).
bool has_obsolete_line_folding(std::string_view bytes);

std::string sse_response_head(std::string_view request_id, bool keep_alive = true);
// One chunk of a chunked body.
std::string chunk(std::string_view data);
// docs/protocol.md#sse-events: `event: <name>\ndata: <payload>\n\n` as one chunk.
std::string sse_event_chunk(std::string_view event, std::string_view payload);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// Calls `item` with each item of a comma-separated header value, without the spaces and
// tabs around it, empty items included (callers differ on those), until it returns
// false. The one reading of a list header both Node's HTTP parser (Connection) and its
// `ws` (Sec-WebSocket-Protocol) share.
template <class Item>
void for_each_list_item(std::string_view value, Item&& item) {
  size_t pos = 0;
  for (;;) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view one = value.substr(pos, comma - pos);
    while (!one.empty() && (one.front() == ' ' || one.front() == '\t')) one.remove_prefix(1);
    while (!one.empty() && (one.back() == ' ' || one.back() == '\t')) one.remove_suffix(1);
    if (!item(one) || comma == value.size()) return;
    pos = comma + 1;
  }
}

// The first protocol of a Sec-WebSocket-Protocol header (comma separated), or
// nullopt when the header is malformed per RFC 6455 token rules.
std::optional<std::string> first_subprotocol(std::string_view header);

}  // namespace sluice::gateway
