#include "gateway/websocket_protocol.hpp"

#include <algorithm>
#include <cstdlib>
#include <limits>
#include <optional>
#include <string>

#include <openssl/evp.h>

#include "common/js_json.hpp"

namespace sluice {
namespace {

constexpr std::string_view kWebSocketGuid = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11";  // RFC 6455 §1.3
constexpr std::size_t kMaxControlPayload = 125;                                      // RFC 6455 §5.5
constexpr std::uint64_t kMaxFrameLength = (std::uint64_t{1} << 53) - 1;               // ws: JS safe integers

bool is_base64_character(char c) {
  return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '+' || c == '/';
}

bool is_control(WebSocketOpcode opcode) { return static_cast<std::uint8_t>(opcode) >= 0x8; }

// Status codes a peer may put in a close frame (RFC 6455 §7.4, as ws checks them).
bool is_valid_close_code(std::uint16_t code) {
  return (code >= 1000 && code <= 1014 && code != 1004 && code != 1005 && code != 1006) ||
         (code >= 3000 && code <= 4999);
}

std::uint64_t read_big_endian(const unsigned char* bytes, std::size_t count) {
  std::uint64_t value = 0;
  for (std::size_t i = 0; i < count; ++i) value = (value << 8) | bytes[i];
  return value;
}

// Longest prefix of `text` of at most `limit` bytes that does not split a
// UTF-8 sequence.
std::string_view utf8_prefix(std::string_view text, std::size_t limit) {
  if (text.size() <= limit) return text;
  std::size_t cut = limit;
  while (cut > 0 && (static_cast<unsigned char>(text[cut]) & 0xC0) == 0x80) --cut;
  return text.substr(0, cut);
}

std::string encode_frame(WebSocketOpcode opcode, std::string_view payload) {
  std::string frame;
  frame.reserve(payload.size() + 10);
  append_frame_header(frame, opcode, payload.size());
  frame.append(payload);
  return frame;
}

}  // namespace

namespace {

// JavaScript's Number(string) (ECMAScript's StringToNumber): white space around it
// dropped (of the bytes a header can hold: the ASCII ones, and 0xA0, which Node reads as
// U+00A0), empty is 0, 0x/0o/0b integers, or a decimal with an optional sign, fraction
// and exponent, or Infinity. nullopt where JavaScript has NaN.
std::optional<double> js_string_to_number(std::string_view text) {
  auto is_space = [](char c) {
    return c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r' || c == '\xA0';
  };
  while (!text.empty() && is_space(text.front())) text.remove_prefix(1);
  while (!text.empty() && is_space(text.back())) text.remove_suffix(1);
  if (text.empty()) return 0.0;
  auto is_digit = [](char c) { return c >= '0' && c <= '9'; };
  if (text.size() > 2 && text[0] == '0' && std::string_view("xXoObB").find(text[1]) != std::string_view::npos) {
    const int base = (text[1] | 0x20) == 'x' ? 16 : (text[1] | 0x20) == 'o' ? 8 : 2;
    double value = 0;
    for (char c : text.substr(2)) {
      int digit = is_digit(c) ? c - '0' : (c | 0x20) >= 'a' && (c | 0x20) <= 'f' ? (c | 0x20) - 'a' + 10 : base;
      if (digit >= base) return std::nullopt;
      value = value * base + digit;
    }
    return value;
  }
  size_t at = 0;
  const bool negative = text[0] == '-';
  if (text[0] == '+' || text[0] == '-') ++at;
  if (text.substr(at) == "Infinity") {
    return negative ? -std::numeric_limits<double>::infinity() : std::numeric_limits<double>::infinity();
  }
  size_t digits = 0;
  for (; at < text.size() && is_digit(text[at]); ++at) ++digits;
  if (at < text.size() && text[at] == '.') {
    for (++at; at < text.size() && is_digit(text[at]); ++at) ++digits;
  }
  if (digits == 0) return std::nullopt;
  if (at < text.size() && (text[at] == 'e' || text[at] == 'E')) {
    ++at;
    if (at < text.size() && (text[at] == '+' || text[at] == '-')) ++at;
    size_t exponent_digits = 0;
    for (; at < text.size() && is_digit(text[at]); ++at) ++exponent_digits;
    if (exponent_digits == 0) return std::nullopt;
  }
  if (at != text.size()) return std::nullopt;
  return std::strtod(std::string(text).c_str(), nullptr);
}

}  // namespace

bool is_supported_websocket_version(std::string_view version) {
  auto number = js_string_to_number(version);
  return number && (*number == 13 || *number == 8);
}

bool is_valid_websocket_key(std::string_view key) {
  if (key.size() != 24 || key.substr(22) != "==") return false;
  return std::all_of(key.begin(), key.begin() + 22, is_base64_character);
}

std::string websocket_accept_key(std::string_view sec_websocket_key) {
  std::string input;
  input.reserve(sec_websocket_key.size() + kWebSocketGuid.size());
  input.append(sec_websocket_key).append(kWebSocketGuid);
  unsigned char digest[EVP_MAX_MD_SIZE];
  unsigned int digest_size = 0;
  EVP_Digest(input.data(), input.size(), digest, &digest_size, EVP_sha1(), nullptr);
  unsigned char encoded[4 * ((EVP_MAX_MD_SIZE + 2) / 3) + 1];
  const int encoded_size = EVP_EncodeBlock(encoded, digest, static_cast<int>(digest_size));
  return std::string(reinterpret_cast<const char*>(encoded), static_cast<std::size_t>(encoded_size));
}

void append_frame_header(std::string& out, WebSocketOpcode opcode, std::size_t payload_size) {
  out.push_back(static_cast<char>(0x80 | static_cast<std::uint8_t>(opcode)));  // FIN, no RSV bits
  if (payload_size < 126) {
    out.push_back(static_cast<char>(payload_size));
    return;
  }
  const std::size_t length_bytes = payload_size <= 0xFFFF ? 2 : 8;
  out.push_back(static_cast<char>(length_bytes == 2 ? 126 : 127));
  for (std::size_t i = length_bytes; i-- > 0;) {
    out.push_back(static_cast<char>((static_cast<std::uint64_t>(payload_size) >> (8 * i)) & 0xFF));
  }
}

std::string encode_text_frame(std::string_view payload) { return encode_frame(WebSocketOpcode::text, payload); }

std::string encode_close_frame(std::optional<std::uint16_t> code, std::string_view reason) {
  if (!code) return encode_frame(WebSocketOpcode::close, {});
  std::string payload;
  payload.push_back(static_cast<char>(*code >> 8));
  payload.push_back(static_cast<char>(*code & 0xFF));
  payload.append(utf8_prefix(reason, kMaxControlPayload - 2));
  return encode_frame(WebSocketOpcode::close, payload);
}

std::string encode_ping_frame() { return encode_frame(WebSocketOpcode::ping, {}); }

std::string encode_pong_frame(std::string_view payload) {
  return encode_frame(WebSocketOpcode::pong, payload.substr(0, kMaxControlPayload));
}

// ---- WebSocketFrameParser ----

WebSocketFrameParser::WebSocketFrameParser(std::size_t max_message_size) : max_message_size_(max_message_size) {}

std::vector<WebSocketEvent> WebSocketFrameParser::feed(const char* data, std::size_t size) {
  std::vector<WebSocketEvent> events;
  feed(data, size, events);
  return events;
}

void WebSocketFrameParser::feed(const char* data, std::size_t size, std::vector<WebSocketEvent>& events) {
  const auto* bytes = reinterpret_cast<const unsigned char*>(data);
  std::size_t pos = 0;
  while (pos < size && state_ != State::finished) {
    if (state_ == State::header) {
      pos += consume_header(bytes + pos, size - pos, events);
    } else {
      pos += consume_payload(bytes + pos, size - pos, events);
    }
  }
}

std::size_t WebSocketFrameParser::consume_header(const unsigned char* data, std::size_t size,
                                                 std::vector<WebSocketEvent>& events) {
  std::size_t used = 0;
  while (used < size) {
    header_[header_size_++] = data[used++];
    if (header_size_ < 2) continue;
    if (header_size_ == 2) {
      if (std::string error = first_bytes_error(); !error.empty()) {
        fail(websocket_close::protocol_error, std::move(error), events);
        return used;
      }
    }
    const unsigned char length7 = header_[1] & 0x7F;
    const std::size_t needed = 2 + (length7 == 126 ? 2 : length7 == 127 ? 8 : 0) + 4;
    if (header_size_ == needed) {
      start_payload(events);
      return used;
    }
  }
  return used;
}

// The checks that need only the first two bytes, so a bad frame fails before
// its length and mask arrive (the order ws uses). Empty when the frame is fine.
std::string WebSocketFrameParser::first_bytes_error() {
  const unsigned char first = header_[0];
  const unsigned char second = header_[1];
  if (first & 0x40) return "RSV1 must be clear";
  if (first & 0x30) return "RSV2 and RSV3 must be clear";
  frame_fin_ = (first & 0x80) != 0;
  const unsigned char opcode = first & 0x0F;
  frame_opcode_ = static_cast<WebSocketOpcode>(opcode);
  const bool message_open = message_opcode_ != WebSocketOpcode::continuation;
  switch (frame_opcode_) {
    case WebSocketOpcode::continuation:
      if (!message_open) return "invalid opcode 0";
      break;
    case WebSocketOpcode::text:
    case WebSocketOpcode::binary:
      if (message_open) return "invalid opcode " + std::to_string(opcode);
      break;
    case WebSocketOpcode::close:
    case WebSocketOpcode::ping:
    case WebSocketOpcode::pong:
      if (!frame_fin_) return "FIN must be set";
      if ((second & 0x7F) > kMaxControlPayload) return "invalid payload length " + std::to_string(second & 0x7F);
      break;
    default: return "invalid opcode " + std::to_string(opcode);
  }
  if (!(second & 0x80)) return "MASK must be set";
  return {};
}

void WebSocketFrameParser::start_payload(std::vector<WebSocketEvent>& events) {
  const unsigned char length7 = header_[1] & 0x7F;
  std::size_t mask_at = 2;
  std::uint64_t length = length7;
  if (length7 == 126) {
    length = read_big_endian(&header_[2], 2);
    mask_at = 4;
  } else if (length7 == 127) {
    length = read_big_endian(&header_[2], 8);
    mask_at = 10;
  }
  std::copy_n(&header_[mask_at], 4, mask_.begin());
  header_size_ = 0;
  if (length > kMaxFrameLength) {
    return fail(websocket_close::message_too_big, "Unsupported WebSocket frame: payload length > 2^53 - 1", events);
  }
  if (!is_control(frame_opcode_)) {
    // Zero means no limit, as ws's maxPayload.
    if (max_message_size_ != 0 && message_size_ + length > max_message_size_) {
      return fail(websocket_close::message_too_big, "Max payload size exceeded", events);
    }
    if (frame_opcode_ != WebSocketOpcode::continuation) message_opcode_ = frame_opcode_;
  }
  payload_left_ = length;
  mask_offset_ = 0;
  state_ = State::payload;
  if (length == 0) finish_frame(events);
}

std::size_t WebSocketFrameParser::consume_payload(const unsigned char* data, std::size_t size,
                                                  std::vector<WebSocketEvent>& events) {
  const std::size_t count = static_cast<std::size_t>(std::min<std::uint64_t>(payload_left_, size));
  const std::size_t start = buffer_.size();
  buffer_.append(reinterpret_cast<const char*>(data), count);
  char* out = buffer_.data() + start;
  for (std::size_t i = 0; i < count; ++i) out[i] = static_cast<char>(out[i] ^ mask_[(mask_offset_ + i) & 3]);
  mask_offset_ = static_cast<std::uint8_t>((mask_offset_ + count) & 3);
  payload_left_ -= count;
  if (payload_left_ == 0) finish_frame(events);
  return count;
}

void WebSocketFrameParser::finish_frame(std::vector<WebSocketEvent>& events) {
  state_ = State::header;
  if (is_control(frame_opcode_)) {
    finish_control_frame(events);
  } else {
    finish_data_frame(events);
  }
}

void WebSocketFrameParser::finish_data_frame(std::vector<WebSocketEvent>& events) {
  message_size_ = buffer_.size();
  if (!frame_fin_) return;
  const WebSocketOpcode opcode = message_opcode_;
  std::string message = std::move(buffer_);
  buffer_ = std::string();  // idle again: no heap buffer kept
  message_size_ = 0;
  message_opcode_ = WebSocketOpcode::continuation;
  if (opcode == WebSocketOpcode::text) {
    if (!is_valid_utf8(message)) return fail(websocket_close::invalid_payload, "invalid UTF-8 sequence", events);
    events.push_back({WebSocketEvent::Kind::text, 0, std::move(message)});
  } else {
    events.push_back({WebSocketEvent::Kind::binary, 0, std::move(message)});
  }
}

std::string WebSocketFrameParser::take_control_payload() {
  if (message_size_ == 0) {
    std::string payload = std::move(buffer_);
    buffer_ = std::string();
    return payload;
  }
  // A control frame between fragments: its bytes follow the message's.
  std::string payload = buffer_.substr(static_cast<std::size_t>(message_size_));
  buffer_.resize(static_cast<std::size_t>(message_size_));
  return payload;
}

void WebSocketFrameParser::finish_control_frame(std::vector<WebSocketEvent>& events) {
  std::string payload = take_control_payload();
  switch (frame_opcode_) {
    case WebSocketOpcode::ping: events.push_back({WebSocketEvent::Kind::ping, 0, std::move(payload)}); return;
    case WebSocketOpcode::pong: events.push_back({WebSocketEvent::Kind::pong, 0, std::move(payload)}); return;
    default: finish_close_frame(std::move(payload), events); return;
  }
}

void WebSocketFrameParser::finish_close_frame(std::string payload, std::vector<WebSocketEvent>& events) {
  if (payload.empty()) {
    events.push_back({WebSocketEvent::Kind::close, websocket_close::no_status, {}});
  } else if (payload.size() == 1) {
    return fail(websocket_close::protocol_error, "invalid payload length 1", events);
  } else {
    const auto code = static_cast<std::uint16_t>(read_big_endian(reinterpret_cast<const unsigned char*>(payload.data()), 2));
    if (!is_valid_close_code(code)) {
      return fail(websocket_close::protocol_error, "invalid status code " + std::to_string(code), events);
    }
    std::string reason = payload.substr(2);
    if (!is_valid_utf8(reason)) return fail(websocket_close::invalid_payload, "invalid UTF-8 sequence", events);
    events.push_back({WebSocketEvent::Kind::close, code, std::move(reason)});
  }
  state_ = State::finished;
  buffer_ = std::string();
}

void WebSocketFrameParser::fail(std::uint16_t code, std::string why, std::vector<WebSocketEvent>& events) {
  events.push_back({WebSocketEvent::Kind::protocol_error, code, std::move(why)});
  state_ = State::finished;
  buffer_ = std::string();
  message_size_ = 0;
}

}  // namespace sluice
