#pragma once
// RFC 6455, server side, without I/O: the handshake key, server→client frames and
// an incremental parser for client→server frames, with the limits and close codes
// of the node `ws` v8 server the reference uses (docs/protocol.md#websocket-upgrade,
// docs/protocol.md#websocket-protocol).
#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace sluice {

enum class WebSocketOpcode : std::uint8_t {
  continuation = 0x0,
  text = 0x1,
  binary = 0x2,
  close = 0x8,
  ping = 0x9,
  pong = 0xA,
};

// Close codes this server sends or reports (RFC 6455 §7.4.1).
namespace websocket_close {
inline constexpr std::uint16_t normal = 1000;
inline constexpr std::uint16_t going_away = 1001;
inline constexpr std::uint16_t protocol_error = 1002;
inline constexpr std::uint16_t unsupported_data = 1003;  // binary messages (docs/protocol.md#client-messages)
inline constexpr std::uint16_t no_status = 1005;         // close frame without a code
inline constexpr std::uint16_t invalid_payload = 1007;   // text that is not UTF-8
inline constexpr std::uint16_t message_too_big = 1009;
}  // namespace websocket_close

// True for a Sec-WebSocket-Key that `ws` accepts: base64 of 16 bytes.
bool is_valid_websocket_key(std::string_view sec_websocket_key);

// True for a Sec-WebSocket-Version that `ws` accepts: one that JavaScript's unary plus
// makes 13 or 8, so "013", "13.0", "0xd" and " 13 " too (docs/protocol.md#handshake-and-subprotocol-echo).
bool is_supported_websocket_version(std::string_view sec_websocket_version);

// Sec-WebSocket-Accept: base64(SHA-1(key + RFC 6455 GUID)).
std::string websocket_accept_key(std::string_view sec_websocket_key);

// Appends the header of an unmasked server frame with FIN set, so a caller can
// write the payload right after it without copying it twice.
void append_frame_header(std::string& out, WebSocketOpcode opcode, std::size_t payload_size);

std::string encode_text_frame(std::string_view payload);
// No code → empty close payload (the client sees 1005, as for `kill`, docs/protocol.md#system-channels).
// The reason is cut at a UTF-8 boundary to fit the 125-byte control limit, and
// dropped when there is no code (RFC 6455 §5.5.1).
std::string encode_close_frame(std::optional<std::uint16_t> code = std::nullopt, std::string_view reason = {});
// The keep-alive ping carries no payload (docs/protocol.md#keep-alive-and-close).
std::string encode_ping_frame();
// Payload cut to 125 bytes (a pong echoes a ping, which cannot be longer).
std::string encode_pong_frame(std::string_view payload);

// One complete thing a client sent.
struct WebSocketEvent {
  enum class Kind : std::uint8_t {
    text,            // data: the whole message, reassembled, valid UTF-8
    binary,          // data: the whole message; the server closes 1003 (docs/protocol.md#client-messages)
    ping,            // data: payload to echo in a pong
    pong,            // data: payload
    close,           // code: the client's code, 1005 when none; data: reason (UTF-8)
    protocol_error,  // code: the close code to send (1002, 1007, 1009); data: why, for logs
  };
  Kind kind;
  std::uint16_t code = 0;
  std::string data;
};

// Incremental parser for client→server frames. It lives in every connection, so
// it is small and holds no heap buffer unless a message is being received.
// After a close or a protocol error it ignores all further input.
class WebSocketFrameParser {
 public:
  static constexpr std::size_t kDefaultMaxMessageSize = 100 * 1024 * 1024;  // ws's maxPayload (docs/protocol.md#websocket-upgrade)

  explicit WebSocketFrameParser(std::size_t max_message_size = kDefaultMaxMessageSize);

  // Consumes `size` bytes and appends each event they complete to `events`.
  void feed(const char* data, std::size_t size, std::vector<WebSocketEvent>& events);
  std::vector<WebSocketEvent> feed(const char* data, std::size_t size);
  std::vector<WebSocketEvent> feed(std::string_view bytes) { return feed(bytes.data(), bytes.size()); }

  // A close frame or a protocol error was reported: nothing more will be.
  bool finished() const { return state_ == State::finished; }
  // Bytes held for a message or control frame still being received.
  std::size_t buffered_bytes() const { return buffer_.size(); }

 private:
  enum class State : std::uint8_t { header, payload, finished };
  static constexpr std::size_t kMaxHeaderSize = 14;  // 2 + 8-byte length + 4-byte mask

  std::size_t consume_header(const unsigned char* data, std::size_t size, std::vector<WebSocketEvent>& events);
  std::size_t consume_payload(const unsigned char* data, std::size_t size, std::vector<WebSocketEvent>& events);
  std::string first_bytes_error();
  void start_payload(std::vector<WebSocketEvent>& events);
  void finish_frame(std::vector<WebSocketEvent>& events);
  void finish_data_frame(std::vector<WebSocketEvent>& events);
  void finish_control_frame(std::vector<WebSocketEvent>& events);
  void finish_close_frame(std::string payload, std::vector<WebSocketEvent>& events);
  void fail(std::uint16_t code, std::string why, std::vector<WebSocketEvent>& events);
  std::string take_control_payload();

  std::string buffer_;                  // message so far, then the control payload being read
  std::uint64_t max_message_size_;
  std::uint64_t payload_left_ = 0;      // of the current frame
  std::uint64_t message_size_ = 0;      // bytes of buffer_ that belong to the data message
  std::array<unsigned char, kMaxHeaderSize> header_{};
  std::uint8_t header_size_ = 0;
  std::uint8_t mask_offset_ = 0;        // position in the 4-byte mask key
  WebSocketOpcode frame_opcode_ = WebSocketOpcode::continuation;
  WebSocketOpcode message_opcode_ = WebSocketOpcode::continuation;  // continuation: no message open
  bool frame_fin_ = false;
  State state_ = State::header;
  std::array<unsigned char, 4> mask_{};
};

}  // namespace sluice
