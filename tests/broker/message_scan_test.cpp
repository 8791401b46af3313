// The quick pass over ordinary Redis messages (broker/message_scan.hpp): what it writes
// is JSON.stringify's form (docs/protocol.md#payload-serialisation), and everything
// unusual is left to the full parse. Each message here is also parsed both ways through
// parse_redis_message (a home channel takes the quick pass, `timeline:public` always the
// full parse), and the two must agree.
#include "broker/message_scan.hpp"

#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <vector>

#include "broker/redis_message.hpp"

namespace sluice {
namespace {

struct Ordinary {
  std::string message;
  std::string event;
  std::string payload;
};

const std::vector<Ordinary>& ordinary_messages() {
  static const std::vector<Ordinary> cases = {
      {R"({"event":"update","payload":{"a":1}})", "update", R"({"a":1})"},
      {"{ \"event\" : \"update\" ,\n \"payload\" :\t{ \"a\" : [ 1 , 2 ] , \"b\" : { } , \"c\" : [ ] } \r\n}", "update",
       R"({"a":[1,2],"b":{},"c":[]})"},
      {R"({"event":"delete","payload":"113999000000000001"})", "delete", "113999000000000001"},
      {R"({"event":"delete","payload":"a\"b\\c\/d\u00e9\ud83d\ude00"})", "delete", "a\"b\\c/d\xC3\xA9\xF0\x9F\x98\x80"},
      // Rails' HTML escapes come out raw; control characters as JSON.stringify writes them.
      {R"({"event":"update","payload":{"content":"\u003cp\u003eA \u0026amp; B\u003c/p\u003e\n\t\u0001\u001F\u2028"}})",
       "update", "{\"content\":\"<p>A &amp; B</p>\\n\\t\\u0001\\u001f\xE2\x80\xA8\"}"},
      {R"({"event":"update","payload":{"s":"\b\f\r\u0000\u007f"}})", "update", "{\"s\":\"\\b\\f\\r\\u0000\x7f\"}"},
      {"{\"event\":\"update\",\"payload\":{\"s\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}}", "update",
       "{\"s\":\"caf\xC3\xA9 \xF0\x9F\x98\x80\"}"},
      // Numbers as JavaScript prints the double each denotes.
      {R"({"event":"e","payload":[0,-5,1.0,1.50,1e2,1E21,-0,-0.0,0.000001,1e-7,123456789012345,12345678901234567890,1.7777777777777777,2.5e-3]})",
       "e", "[0,-5,1,1.5,100,1e+21,0,0,0.000001,1e-7,123456789012345,12345678901234567000,1.7777777777777777,0.0025]"},
      {R"({"event":"e","payload":[true,false,null,"",{"k":null}]})", "e", R"([true,false,null,"",{"k":null}])"},
      // The envelope's other members are read past, whatever they hold.
      {R"({"queued_at":1768474800000,"x":{"y":[{"a":"\u00e9"}],"z":1.5},"event":"notification","payload":{"id":"5"}})",
       "notification", R"({"id":"5"})"},
      {R"({"event":"\u0075pdate","payload":{"k":"v"}})", "update", R"({"k":"v"})"},
  };
  return cases;
}

TEST(MessageScan, OrdinaryMessagesComeOutInJsonStringifyForm) {
  for (const auto& ordinary : ordinary_messages()) {
    const auto scanned = scan_plain_message(ordinary.message);
    ASSERT_TRUE(scanned.has_value()) << ordinary.message;
    EXPECT_EQ(scanned->event, ordinary.event) << ordinary.message;
    EXPECT_EQ(scanned->payload, ordinary.payload) << ordinary.message;
  }
}

std::string nested(int depth) {
  return R"({"event":"e","payload":)" + std::string(depth, '[') + std::string(depth, ']') + "}";
}

const std::vector<std::string>& unusual_messages() {
  static const std::vector<std::string> cases = {
      "{\"event\":\"e\",\"payload\":\"a\xFF\"}",                  // invalid UTF-8: Node's decoding
      R"({"event":"e","payload":{"\u0061":1}})",                  // a key with an escape
      R"({"event":"e","payload":{"b":1,"2":2}})",                 // an array-index key: JS lists it first
      R"({"event":"e","payload":{"a":1,"b":2,"a":3}})",           // a repeated key
      R"({"event":"a","payload":"x","event":"b"})",               // a repeated envelope key
      R"({"event":"e","payload":{"s":"\ud800"}})",                // a lone high surrogate
      R"({"event":"e","payload":{"s":"\udc00x"}})",               // a lone low surrogate
      R"({"event":"e","payload":{"s":"\ud800\u0041"}})",          // a high surrogate before a non-surrogate
      R"({"event":"e","payload":[1e400]})",                       // beyond a double
      R"({"event":"e","payload":[1e-400]})",                      // below a double's smallest
      nested(65),                                                 // deeper than Rails nests
      R"({"event":1,"payload":"x"})",                             // a non-string event
      R"({"event":"","payload":"x"})",                            // a falsy event
      R"({"event":"e","payload":""})",                            // a falsy payload
      R"({"event":"e","payload":null})",
      R"({"event":"e","payload":0})",
      R"({"event":"e","payload":7})",                             // truthy scalars: rare, full parse
      R"({"event":"e","payload":true})",
      R"({"event":"filters_changed"})",                           // no payload
      R"({"payload":"x"})",                                       // no event
      R"({"event":"e","payload":"x"} x)",                         // trailing bytes
      R"({"event":"e","payload":[1,]})",                          // invalid JSON
      R"({"event":"e","payload":[01]})",
      R"({"event":"e","payload":[1.]})",
      R"({"event":"e","payload":[tru]})",
      "{\"event\":\"e\",\"payload\":\"a\tb\"}",                   // a raw control character
      R"({"event":"e","payload":"\x"})",                          // an unknown escape
      R"({"event":"e","payload":"\u12"})",
      R"(["event","payload"])",
      "\xEF\xBB\xBF{\"event\":\"e\",\"payload\":\"x\"}",         // a byte order mark
      std::string("{\"event\":\"e\",\"payload\":\"x\"}") + '\0',  // a NUL after the message
      "",
  };
  return cases;
}

TEST(MessageScan, UnusualMessagesAreLeftToTheFullParse) {
  for (const auto& message : unusual_messages()) {
    EXPECT_FALSE(scan_plain_message(message).has_value()) << message;
  }
  EXPECT_TRUE(scan_plain_message(nested(64)).has_value()) << "64 levels are Rails' side of the line";
}

// Whichever way a message goes, a client receives the same event and payload.
TEST(MessageScan, TheQuickPassAndTheFullParseAgree) {
  std::vector<std::string> messages = unusual_messages();
  for (const auto& ordinary : ordinary_messages()) messages.push_back(ordinary.message);
  for (const auto& message : messages) {
    v1::ChannelEvent quick, full;
    const auto quick_verdict = parse_redis_message("timeline:1", message, quick);
    const auto full_verdict = parse_redis_message("timeline:public", message, full);
    EXPECT_EQ(quick_verdict, full_verdict) << message;
    EXPECT_EQ(quick.event(), full.event()) << message;
    EXPECT_EQ(quick.payload(), full.payload()) << message;
  }
}

}  // namespace
}  // namespace sluice
