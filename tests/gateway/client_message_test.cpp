// docs/protocol.md#client-messages: what a WebSocket text message asks for.
#include "gateway/client_message.hpp"

#include <gtest/gtest.h>

#include <string>

#include "common/js_json.hpp"
#include "gateway/streams.hpp"

namespace sluice::gateway {
namespace {

ClientRequest request_of(std::string_view text) {
  ClientMessage message = parse_client_message(text);
  EXPECT_TRUE(message.request.has_value()) << text;
  EXPECT_EQ(message.ignored_because, nullptr) << text;
  return message.request.value_or(ClientRequest{});
}

TEST(ClientMessage, SubscribeAndUnsubscribeCarryTheirStreamAndParameters) {
  ClientRequest subscribe = request_of(R"({"type":"subscribe","stream":"hashtag","tag":"foo","extra":{"a":1}})");
  EXPECT_TRUE(subscribe.subscribe);
  EXPECT_EQ(subscribe.stream_name, "hashtag");
  EXPECT_EQ(subscribe.params.dump(), R"({"tag":"foo"})");
  ClientRequest unsubscribe = request_of(R"({"list":"12","type":"unsubscribe","stream":"list"})");
  EXPECT_FALSE(unsubscribe.subscribe);
  EXPECT_EQ(unsubscribe.stream_name, "list");
  EXPECT_EQ(unsubscribe.params.dump(), R"({"list":"12"})");
}

TEST(ClientMessage, WhatTheReferenceIgnoresAsksForNothing) {
  for (const char* text : {"null", "false", "0", "\"\"", "5", "\"subscribe\"", "[]", R"([{"type":"subscribe"}])", "{}",
                           R"({"stream":"public"})", R"({"type":"Subscribe","stream":"public"})",
                           R"({"type":["subscribe"],"stream":"public"})", R"({"type":1,"stream":"public"})"}) {
    ClientMessage message = parse_client_message(text);
    EXPECT_FALSE(message.request.has_value()) << text;
    EXPECT_EQ(message.ignored_because, nullptr) << text << ": valid JSON is ignored without a log line";
  }
}

TEST(ClientMessage, NotJsonOrNestedTooDeeplyIsIgnoredWithAReasonToLog) {
  ClientMessage broken = parse_client_message(R"({"type":"subscribe",)");
  EXPECT_FALSE(broken.request.has_value());
  ASSERT_NE(broken.ignored_because, nullptr);
  EXPECT_NE(std::string(broken.ignored_because).find("not JSON"), std::string::npos);

  std::string deep = R"({"type":"subscribe","stream":"public","tag":)" + std::string(300, '[') + std::string(300, ']') + "}";
  ClientMessage nested = parse_client_message(deep);
  EXPECT_FALSE(nested.request.has_value());
  ASSERT_NE(nested.ignored_because, nullptr);
  EXPECT_NE(std::string(nested.ignored_because).find("nested"), std::string::npos);
}

// The reference's JSON.parse refuses a leading byte order mark (U+FEFF is no JSON
// white space), so such a message subscribes nothing; the same message without it does.
TEST(ClientMessage, AByteOrderMarkMakesAMessageNotJson) {
  const std::string message = R"({"type":"subscribe","stream":"public"})";
  ClientMessage with_mark = parse_client_message("\xEF\xBB\xBF" + message);
  EXPECT_FALSE(with_mark.request.has_value());
  ASSERT_NE(with_mark.ignored_because, nullptr);
  EXPECT_NE(std::string(with_mark.ignored_because).find("not JSON"), std::string::npos);
  EXPECT_EQ(request_of(message).stream_name, "public");
}

// The reference's firstParam, then a comparison with the names as they are.
TEST(ClientMessage, TheStreamIsAStringOrTheFirstElementOfAnArray) {
  EXPECT_EQ(request_of(R"({"type":"subscribe","stream":["user","public"]})").stream_name, "user");
  EXPECT_EQ(request_of(R"({"type":"subscribe","stream":[["user"]]})").stream_name, "") << "[\"user\"] is no stream name";
  EXPECT_EQ(request_of(R"({"type":"subscribe","stream":5})").stream_name, "");
  EXPECT_EQ(request_of(R"({"type":"subscribe","stream":[]})").stream_name, "");
  EXPECT_EQ(request_of(R"({"type":"subscribe"})").stream_name, "");
  auto unnamed = plan_stream(request_of(R"({"type":"subscribe","stream":[["user"]]})").stream_name, Params::object(),
                             StreamRequester{7, {"read"}});
  ASSERT_TRUE(std::holds_alternative<StreamError>(unnamed));
  EXPECT_EQ(std::get<StreamError>(unnamed).message, "Unknown stream type");
}

// JSON.parse keeps the last of repeated keys.
TEST(ClientMessage, ARepeatedFieldCountsItsLastValue) {
  ClientRequest request = request_of(R"({"type":"unsubscribe","stream":"public","tag":"a","stream":"hashtag","tag":"b","type":"subscribe"})");
  EXPECT_TRUE(request.subscribe);
  EXPECT_EQ(request.stream_name, "hashtag");
  EXPECT_EQ(request.params.dump(), R"({"tag":"b"})");
}

// Of an object parameter only that it is one is read; of an array, only that it is one.
// The stream plans come out as they would from the whole values.
TEST(ClientMessage, ObjectAndArrayParametersPlanAsTheWholeValuesWould) {
  const StreamRequester reader{7, {"read"}};
  ClientRequest object_list = request_of(R"({"type":"subscribe","stream":"list","list":{"id":"12","more":[1,2]}})");
  EXPECT_TRUE(object_list.params["list"].is_object());
  EXPECT_EQ(js_to_string(object_list.params["list"]), "[object Object]");
  auto planned = plan_stream("list", object_list.params, reader);
  ASSERT_TRUE(std::holds_alternative<StreamPlan>(planned));
  EXPECT_EQ(std::get<StreamPlan>(planned).list_id, "[object Object]");

  ClientRequest array_list = request_of(R"({"type":"subscribe","stream":"list","list":["12","13"]})");
  planned = plan_stream("list", array_list.params, reader);
  ASSERT_TRUE(std::holds_alternative<StreamPlan>(planned));
  EXPECT_EQ(std::get<StreamPlan>(planned).list_id, "{array}") << "refused as not authorized, as a whole array is";

  for (const char* tag : {R"(["a","b"])", "[]", R"({"a":1})"}) {
    ClientRequest request = request_of(std::string(R"({"type":"subscribe","stream":"hashtag","tag":)") + tag + "}");
    auto refused = plan_stream("hashtag", request.params, reader);
    ASSERT_TRUE(std::holds_alternative<StreamError>(refused)) << tag;
    EXPECT_EQ(std::get<StreamError>(refused).status, 500) << tag;
  }
}

// A message of 100,000 distinct keys (1 MiB, the default size limit) is read for the
// four fields that count. Each key kept would have been looked up among those before
// it: about ten seconds of a worker's time for this one message.
TEST(ClientMessage, AMessageOfManyKeysIsReadForItsFieldsOnly) {
  std::string text = "{";
  for (int i = 0; i < 100000; ++i) text += "\"k" + std::to_string(i) + "\":0,";
  text += R"("type":"subscribe","stream":"hashtag","tag":"late"})";
  ASSERT_GT(text.size(), 1000000u);
  ClientRequest request = request_of(text);
  EXPECT_EQ(request.stream_name, "hashtag");
  EXPECT_EQ(request.params.dump(), R"({"tag":"late"})");
}

// What a queued request holds counts its strings (websocket_session.cpp bounds the queue by it).
TEST(ClientMessage, ARequestCountsTheBytesOfItsStrings) {
  const std::string tag(400000, 'q');
  ClientRequest small = request_of(R"({"type":"subscribe","stream":"hashtag","tag":"q"})");
  ClientRequest large = request_of(R"({"type":"subscribe","stream":"hashtag","tag":")" + tag + "\"}");
  EXPECT_GE(large.bytes(), small.bytes() + tag.size() - 1);
  EXPECT_LT(small.bytes(), 1024u);
}

}  // namespace
}  // namespace sluice::gateway
