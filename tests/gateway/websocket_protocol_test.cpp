// RFC 6455 server side without I/O (docs/protocol.md#websocket-upgrade,
// docs/protocol.md#websocket-protocol): handshake key,
// server frames, and the client frame parser with ws's limits and close codes.
#include "gateway/websocket_protocol.hpp"

#include <cstdint>
#include <string>
#include <vector>

#include <gtest/gtest.h>

namespace sluice {
namespace {

using Kind = WebSocketEvent::Kind;

constexpr unsigned char kMask[4] = {0x37, 0xfa, 0x21, 0x3d};

// A client frame: masked unless told otherwise.
std::string client_frame(unsigned char first_byte, std::string_view payload, bool masked = true) {
  std::string frame;
  frame.push_back(static_cast<char>(first_byte));
  const unsigned char mask_bit = masked ? 0x80 : 0x00;
  if (payload.size() < 126) {
    frame.push_back(static_cast<char>(mask_bit | payload.size()));
  } else if (payload.size() <= 0xFFFF) {
    frame.push_back(static_cast<char>(mask_bit | 126));
    frame.push_back(static_cast<char>(payload.size() >> 8));
    frame.push_back(static_cast<char>(payload.size() & 0xFF));
  } else {
    frame.push_back(static_cast<char>(mask_bit | 127));
    for (int i = 7; i >= 0; --i) frame.push_back(static_cast<char>((uint64_t{payload.size()} >> (8 * i)) & 0xFF));
  }
  if (masked) frame.append(reinterpret_cast<const char*>(kMask), 4);
  for (std::size_t i = 0; i < payload.size(); ++i) {
    frame.push_back(static_cast<char>(masked ? payload[i] ^ kMask[i % 4] : payload[i]));
  }
  return frame;
}

std::string text_frame(std::string_view payload) { return client_frame(0x81, payload); }

std::string close_payload(std::uint16_t code, std::string_view reason = {}) {
  std::string payload;
  payload.push_back(static_cast<char>(code >> 8));
  payload.push_back(static_cast<char>(code & 0xFF));
  payload.append(reason);
  return payload;
}

void expect_event(const WebSocketEvent& event, Kind kind, std::uint16_t code, std::string_view data) {
  EXPECT_EQ(event.kind, kind);
  EXPECT_EQ(event.code, code);
  EXPECT_EQ(event.data, data);
}

void expect_protocol_error(std::string_view bytes, std::uint16_t code, std::string_view why,
                           std::size_t max_message_size = WebSocketFrameParser::kDefaultMaxMessageSize) {
  WebSocketFrameParser parser(max_message_size);
  const auto events = parser.feed(bytes);
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::protocol_error, code, why);
  EXPECT_TRUE(parser.finished());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

// ---- handshake ----

TEST(WebSocketHandshake, AcceptKeyFromRfc6455) {
  EXPECT_EQ(websocket_accept_key("dGhlIHNhbXBsZSBub25jZQ=="), "s3pPLMBiTxaQ9kYGzzhZRbK+xOo=");
  EXPECT_EQ(websocket_accept_key("x3JJHMbDL1EzLkh9GBhXDw=="), "HSmrc0sMlYUkAGmm5OPpG2HaGWk=");
}

TEST(WebSocketHandshake, KeyValidation) {
  EXPECT_TRUE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=="));
  EXPECT_TRUE(is_valid_websocket_key("+/+/+/+/+/+/+/+/+/+/+w=="));
  EXPECT_FALSE(is_valid_websocket_key(""));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ="));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZQ=A"));
  EXPECT_FALSE(is_valid_websocket_key("dGhlIHNhbXBsZSBub25jZ-=="));
  EXPECT_FALSE(is_valid_websocket_key(" dGhlIHNhbXBsZSBub25jZQ=="));
}

// ---- server frames ----

TEST(WebSocketEncode, HeaderLengthForms) {
  std::string out;
  append_frame_header(out, WebSocketOpcode::text, 0);
  EXPECT_EQ(out, std::string("\x81\x00", 2));
  out.clear();
  append_frame_header(out, WebSocketOpcode::text, 125);
  EXPECT_EQ(out, std::string("\x81\x7d", 2));
  out.clear();
  append_frame_header(out, WebSocketOpcode::text, 126);
  EXPECT_EQ(out, std::string("\x81\x7e\x00\x7e", 4));
  out.clear();
  append_frame_header(out, WebSocketOpcode::binary, 65535);
  EXPECT_EQ(out, std::string("\x82\x7e\xff\xff", 4));
  out.clear();
  append_frame_header(out, WebSocketOpcode::text, 65536);
  EXPECT_EQ(out, std::string("\x81\x7f\x00\x00\x00\x00\x00\x01\x00\x00", 10));
  out.clear();
  append_frame_header(out, WebSocketOpcode::text, 0x0102030405ULL);
  EXPECT_EQ(out, std::string("\x81\x7f\x00\x00\x00\x01\x02\x03\x04\x05", 10));
}

TEST(WebSocketEncode, HeaderAppendsAfterExistingBytes) {
  std::string out = "xy";
  append_frame_header(out, WebSocketOpcode::pong, 3);
  EXPECT_EQ(out, std::string("xy\x8a\x03", 4));
}

TEST(WebSocketEncode, TextFrame) {
  EXPECT_EQ(encode_text_frame("hi"), std::string("\x81\x02hi", 4));
  const std::string payload(300, 'a');
  EXPECT_EQ(encode_text_frame(payload), std::string("\x81\x7e\x01\x2c", 4) + payload);
}

TEST(WebSocketEncode, CloseFrames) {
  EXPECT_EQ(encode_close_frame(), std::string("\x88\x00", 2));
  EXPECT_EQ(encode_close_frame(std::nullopt, "ignored"), std::string("\x88\x00", 2));
  EXPECT_EQ(encode_close_frame(1000), std::string("\x88\x02\x03\xe8", 4));
  EXPECT_EQ(encode_close_frame(1003, "The mastodon streaming server does not support binary messages"),
            std::string("\x88\x40\x03\xeb", 4) + "The mastodon streaming server does not support binary messages");
}

TEST(WebSocketEncode, CloseReasonIsCutAtUtf8Boundary) {
  // 122 ASCII bytes then a 2-byte é: 124 bytes do not fit in 123, so é goes.
  const std::string reason = std::string(122, 'r') + "\xC3\xA9";
  EXPECT_EQ(encode_close_frame(1000, reason), std::string("\x88\x7c\x03\xe8", 4) + std::string(122, 'r'));
  const std::string exact(123, 'r');
  EXPECT_EQ(encode_close_frame(1000, exact), std::string("\x88\x7d\x03\xe8", 4) + exact);
}

TEST(WebSocketEncode, PingAndPong) {
  EXPECT_EQ(encode_ping_frame(), std::string("\x89\x00", 2));
  EXPECT_EQ(encode_pong_frame("abc"), std::string("\x8a\x03" "abc", 5));
  EXPECT_EQ(encode_pong_frame(std::string(200, 'p')), std::string("\x8a\x7d", 2) + std::string(125, 'p'));
}

// ---- parser: messages ----

TEST(WebSocketParser, MaskedTextMessage) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(text_frame(R"({"type":"subscribe","stream":"public"})"));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::text, 0, R"({"type":"subscribe","stream":"public"})");
  EXPECT_FALSE(parser.finished());
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(WebSocketParser, ByteByByteFeeding) {
  WebSocketFrameParser parser;
  const std::string bytes = text_frame("hello") + client_frame(0x89, "p1") + text_frame("");
  std::vector<WebSocketEvent> events;
  for (const char byte : bytes) parser.feed(&byte, 1, events);
  ASSERT_EQ(events.size(), 3u);
  expect_event(events[0], Kind::text, 0, "hello");
  expect_event(events[1], Kind::ping, 0, "p1");
  expect_event(events[2], Kind::text, 0, "");
}

TEST(WebSocketParser, SeveralFramesInOneChunk) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(text_frame("a") + text_frame("b") + client_frame(0x8A, "") + text_frame("c"));
  ASSERT_EQ(events.size(), 4u);
  expect_event(events[0], Kind::text, 0, "a");
  expect_event(events[1], Kind::text, 0, "b");
  expect_event(events[2], Kind::pong, 0, "");
  expect_event(events[3], Kind::text, 0, "c");
}

TEST(WebSocketParser, SixteenAndSixtyFourBitLengths) {
  WebSocketFrameParser parser;
  const std::string medium(300, 'm');
  std::string large(70'000, 'l');
  large[69'999] = 'z';
  const auto events = parser.feed(text_frame(medium) + text_frame(large));
  ASSERT_EQ(events.size(), 2u);
  expect_event(events[0], Kind::text, 0, medium);
  expect_event(events[1], Kind::text, 0, large);
}

TEST(WebSocketParser, NonMinimalLengthEncodingIsAccepted) {
  // 126 form for a 5-byte payload: RFC says minimal, ws does not check.
  std::string frame("\x81\xfe\x00\x05", 4);
  frame.append(reinterpret_cast<const char*>(kMask), 4);
  const std::string payload = "hello";
  for (std::size_t i = 0; i < payload.size(); ++i) frame.push_back(static_cast<char>(payload[i] ^ kMask[i % 4]));
  WebSocketFrameParser parser;
  const auto events = parser.feed(frame);
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::text, 0, "hello");
}

TEST(WebSocketParser, FragmentedTextWithControlFramesBetween) {
  WebSocketFrameParser parser;
  std::vector<WebSocketEvent> events;
  const std::string first = client_frame(0x01, "Hel");
  parser.feed(first.data(), first.size(), events);
  EXPECT_TRUE(events.empty());
  EXPECT_EQ(parser.buffered_bytes(), 3u);
  const std::string rest = client_frame(0x89, "ping!") + client_frame(0x00, "lo, ") + client_frame(0x8A, "pong") +
                           client_frame(0x80, "world");
  parser.feed(rest.data(), rest.size(), events);
  ASSERT_EQ(events.size(), 3u);
  expect_event(events[0], Kind::ping, 0, "ping!");
  expect_event(events[1], Kind::pong, 0, "pong");
  expect_event(events[2], Kind::text, 0, "Hello, world");
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

TEST(WebSocketParser, Utf8SplitAcrossFragmentsIsValid) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x01, "caf\xC3") + client_frame(0x80, "\xA9"));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::text, 0, "caf\xC3\xA9");
}

TEST(WebSocketParser, FragmentedBinaryMessage) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x02, std::string("\x00\xff", 2)) + client_frame(0x80, "b"));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::binary, 0, std::string("\x00\xff" "b", 3));
}

TEST(WebSocketParser, PingPayloadIsUnmasked) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x89, std::string(125, 'x')));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::ping, 0, std::string(125, 'x'));
}

// ---- parser: close ----

TEST(WebSocketParser, CloseWithoutCodeReports1005) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x88, ""));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::close, 1005, "");
  EXPECT_TRUE(parser.finished());
}

TEST(WebSocketParser, CloseWithCodeAndReason) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x88, close_payload(1000, "bye \xC3\xA9")));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::close, 1000, "bye \xC3\xA9");
}

TEST(WebSocketParser, ApplicationCloseCodesAreAccepted) {
  for (const std::uint16_t code : {1001, 1003, 1007, 1011, 1014, 3000, 4999}) {
    WebSocketFrameParser parser;
    const auto events = parser.feed(client_frame(0x88, close_payload(code)));
    ASSERT_EQ(events.size(), 1u) << code;
    expect_event(events[0], Kind::close, code, "");
  }
}

TEST(WebSocketParser, InputAfterCloseIsIgnored) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x88, close_payload(1000)) + text_frame("late"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::close);
  EXPECT_TRUE(parser.feed(text_frame("later")).empty());
}

TEST(WebSocketParser, CloseFrameBetweenFragments) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x01, "part") + client_frame(0x88, close_payload(1001)));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::close, 1001, "");
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}

// ---- parser: protocol errors ----

TEST(WebSocketParser, UnmaskedFrameIs1002) {
  expect_protocol_error(client_frame(0x81, "hi", /*masked=*/false), 1002, "MASK must be set");
}

TEST(WebSocketParser, ReservedBitsAre1002) {
  expect_protocol_error(client_frame(0xC1, "hi"), 1002, "RSV1 must be clear");
  expect_protocol_error(client_frame(0xA1, "hi"), 1002, "RSV2 and RSV3 must be clear");
  expect_protocol_error(client_frame(0x91, "hi"), 1002, "RSV2 and RSV3 must be clear");
}

TEST(WebSocketParser, UnknownOpcodesAre1002) {
  expect_protocol_error(client_frame(0x83, "x"), 1002, "invalid opcode 3");
  expect_protocol_error(client_frame(0x87, "x"), 1002, "invalid opcode 7");
  expect_protocol_error(client_frame(0x8B, "x"), 1002, "invalid opcode 11");
  expect_protocol_error(client_frame(0x8F, "x"), 1002, "invalid opcode 15");
}

TEST(WebSocketParser, ContinuationRules) {
  expect_protocol_error(client_frame(0x80, "x"), 1002, "invalid opcode 0");
  expect_protocol_error(client_frame(0x01, "a") + client_frame(0x81, "b"), 1002, "invalid opcode 1");
  expect_protocol_error(client_frame(0x01, "a") + client_frame(0x82, "b"), 1002, "invalid opcode 2");
}

TEST(WebSocketParser, ControlFrameRules) {
  expect_protocol_error(client_frame(0x09, "x"), 1002, "FIN must be set");
  expect_protocol_error(client_frame(0x89, std::string(126, 'x')), 1002, "invalid payload length 126");
  expect_protocol_error(client_frame(0x88, "x"), 1002, "invalid payload length 1");
}

TEST(WebSocketParser, ErrorIsReportedBeforeLengthAndMaskArrive) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(std::string("\x81\x7f", 2));  // unmasked 64-bit header, cut short
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::protocol_error, 1002, "MASK must be set");
}

TEST(WebSocketParser, InvalidCloseCodesAre1002) {
  for (const std::uint16_t code : {0, 999, 1004, 1005, 1006, 1015, 2000, 2999, 5000}) {
    expect_protocol_error(client_frame(0x88, close_payload(code)), 1002, "invalid status code " + std::to_string(code));
  }
}

TEST(WebSocketParser, InvalidUtf8Is1007) {
  expect_protocol_error(text_frame("caf\xC3"), 1007, "invalid UTF-8 sequence");
  expect_protocol_error(text_frame("\xED\xA0\x80"), 1007, "invalid UTF-8 sequence");
  expect_protocol_error(client_frame(0x88, close_payload(1000, "\xFF")), 1007, "invalid UTF-8 sequence");
}

TEST(WebSocketParser, BinaryMayHoldAnyBytes) {
  WebSocketFrameParser parser;
  const auto events = parser.feed(client_frame(0x82, "\xFF\xFE"));
  ASSERT_EQ(events.size(), 1u);
  expect_event(events[0], Kind::binary, 0, "\xFF\xFE");
}

TEST(WebSocketParser, MessageTooBigIs1009) {
  expect_protocol_error(text_frame(std::string(11, 'x')), 1009, "Max payload size exceeded", 10);
  // The limit counts the whole message, across fragments.
  expect_protocol_error(client_frame(0x01, std::string(6, 'x')) + client_frame(0x80, std::string(5, 'x')), 1009,
                        "Max payload size exceeded", 10);
  WebSocketFrameParser parser(10);
  const auto events = parser.feed(text_frame(std::string(10, 'x')));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::text);
}

TEST(WebSocketParser, ControlFramesDoNotCountTowardsTheLimit) {
  WebSocketFrameParser parser(4);
  const auto events = parser.feed(client_frame(0x89, "123456789"));
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].kind, Kind::ping);
}

TEST(WebSocketParser, TooBigIsReportedFromTheHeaderAlone) {
  // A 64-bit length of 200 MiB with no payload yet: fails at once, buffers nothing.
  std::string header("\x81\xff\x00\x00\x00\x00\x0c\x80\x00\x00", 10);
  header.append(reinterpret_cast<const char*>(kMask), 4);
  expect_protocol_error(header, 1009, "Max payload size exceeded");
}

TEST(WebSocketParser, HugeLengthIs1009) {
  std::string header("\x81\xff\x80\x00\x00\x00\x00\x00\x00\x00", 10);
  header.append(reinterpret_cast<const char*>(kMask), 4);
  expect_protocol_error(header, 1009, "Unsupported WebSocket frame: payload length > 2^53 - 1", 0);
}

TEST(WebSocketParser, InputAfterErrorIsIgnored) {
  WebSocketFrameParser parser;
  EXPECT_EQ(parser.feed(client_frame(0x81, "x", false)).size(), 1u);
  EXPECT_TRUE(parser.feed(text_frame("after")).empty());
}

// ---- parser: footprint ----

TEST(WebSocketParser, IdleParserIsSmallAndHoldsNoBuffer) {
  EXPECT_LE(sizeof(WebSocketFrameParser), 96u);
  WebSocketFrameParser parser;
  parser.feed(text_frame(std::string(10'000, 'x')));
  EXPECT_EQ(parser.buffered_bytes(), 0u);
  parser.feed(client_frame(0x89, "ping"));
  EXPECT_EQ(parser.buffered_bytes(), 0u);
}


// ws reads the version with JavaScript's unary plus and compares the number with 13 and
// 8: what the reference accepts, and what it refuses.
TEST(WebSocketHandshake, VersionIsReadAsJavaScriptReadsANumber) {
  for (const char* accepted : {"13", "8", "013", "13.0", "13.", "1.3e1", "130e-1", "+13", "0xd", "0XD", "0o15", "0b1101",
                               " 13 ", "\t8", "13\xA0", "8.000"}) {
    EXPECT_TRUE(is_supported_websocket_version(accepted)) << accepted;
  }
  for (const char* refused : {"", " ", "12", "7", "14", "13, 13", "13abc", "0x", "-0xd", "+0xd", "0xg", "1e", "e1", ".",
                              "Infinity", "-13", "13 13", "0b2", "0o8", "1_3"}) {
    EXPECT_FALSE(is_supported_websocket_version(refused)) << refused;
  }
}

}  // namespace
}  // namespace sluice
