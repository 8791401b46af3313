#pragma once
// Exact bytes of every response the gateway writes itself (contract §1, §5),
// built as strings so they are testable without sockets.
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway {

// A random UUID v4, as the reference's X-Request-Id.
std::string make_request_id();
const char* status_reason(int status);

// Contract §1.1 step 5: `{"error":"<message>"}` with Content-Type application/json.
std::string json_error_response(int status, std::string_view message, std::string_view request_id,
                                bool keep_alive);
// Contract §1.1 step 2: the answer to any OPTIONS request.
std::string cors_preflight_response(std::string_view request_id, std::optional<std::string_view> request_headers,
                                    bool keep_alive);
// A plain response with the CORS header (health, metrics, favicon, 404s).
std::string plain_response(int status, std::string_view content_type, std::string_view body,
                           std::string_view request_id, bool keep_alive, bool head_only = false,
                           bool no_store = false);
// Contract §1.3: the raw refusal of a WebSocket upgrade.
std::string websocket_rejection(int status, std::string_view message, std::string_view request_id);
// Contract §1.3: the 101 handshake, with the subprotocol echoed when one was offered.
std::string websocket_accept_response(std::string_view accept_key, std::optional<std::string_view> protocol,
                                      std::string_view request_id);
// Contract §5: SSE response head followed by the first chunk ":)\n".
std::string sse_response_head(std::string_view request_id);
// One chunk of a chunked body.
std::string chunk(std::string_view data);
// Contract §5: `event: <name>\ndata: <payload>\n\n` as one chunk.
std::string sse_event_chunk(std::string_view event, std::string_view payload);
inline constexpr std::string_view kLastChunk = "0\r\n\r\n";

// The first protocol of a Sec-WebSocket-Protocol header (comma separated), or
// nullopt when the header is malformed per RFC 6455 token rules.
std::optional<std::string> first_subprotocol(std::string_view header);

}  // namespace sluice::gateway
