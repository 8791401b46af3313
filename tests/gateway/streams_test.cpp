// The stream table (docs/protocol.md#sse-paths, docs/protocol.md#stream-table,
// docs/protocol.md#websocket-stream-echo, docs/protocol.md#scopes-per-stream), without sockets.
#include "gateway/streams.hpp"

#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

Params query(std::string_view text) { return parse_query(text); }

const StreamPlan& plan_of(const std::variant<StreamPlan, StreamError>& result) {
  if (auto* error = std::get_if<StreamError>(&result)) {
    ADD_FAILURE() << "unexpected error " << error->status << " " << error->message;
    static StreamPlan empty;
    return empty;
  }
  return std::get<StreamPlan>(result);
}

StreamError error_of(const std::variant<StreamPlan, StreamError>& result) {
  if (!std::holds_alternative<StreamError>(result)) {
    ADD_FAILURE() << "expected an error";
    return {};
  }
  return std::get<StreamError>(result);
}

const StreamRequester kReader{910001, {"read"}};

TEST(StreamPaths, MapExactlyAsTheContractTable) {
  Params none = query("");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/user", none), "user");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/user/notification", none), "user:notification");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/public", none), "public");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/public/local", none), "public:local");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/public/remote", none), "public:remote");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/hashtag", none), "hashtag");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/hashtag/local", none), "hashtag:local");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/direct", none), "direct");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/list", none), "list");
}

TEST(StreamPaths, UnknownTrailingSlashAndCaseAreUnknown) {
  Params none = query("");
  EXPECT_FALSE(stream_name_for_path("/api/v1/streaming/user/", none));
  EXPECT_FALSE(stream_name_for_path("/api/v1/streaming", none));
  EXPECT_FALSE(stream_name_for_path("/API/v1/streaming/user", none));
  EXPECT_FALSE(stream_name_for_path("/foo", none));
  EXPECT_FALSE(stream_name_for_path("/api/v1/streaming/nope", none));
}

TEST(StreamPaths, OnlyMediaPicksMediaVariants) {
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/public", query("only_media=true")), "public:media");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/public/local", query("only_media=1")), "public:local:media");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/public/remote", query("only_media=yes")), "public:remote:media");
  EXPECT_EQ(stream_name_for_path("/api/v1/streaming/user", query("only_media=true")), "user");
}

TEST(OnlyMedia, TruthinessFollowsTheContract) {
  for (const char* yes : {"only_media=true", "only_media=1", "only_media=yes", "only_media=False", "only_media=no",
                          "only_media=0&only_media=0"}) {
    EXPECT_TRUE(only_media_truthy(query(yes))) << yes;
  }
  for (const char* no : {"", "only_media=", "only_media=0", "only_media=f", "only_media=F", "only_media=false",
                         "only_media=FALSE", "only_media=off", "only_media=OFF"}) {
    EXPECT_FALSE(only_media_truthy(query(no))) << no;
  }
}

TEST(Scopes, ReadCoversEverything) {
  for (const char* stream : {"user", "user:notification", "public", "hashtag", "list", "direct", "nonsense"}) {
    EXPECT_TRUE(scopes_allow_stream(stream, {"read"})) << stream;
  }
}

TEST(Scopes, NotificationStreamNeedsReadNotifications) {
  EXPECT_TRUE(scopes_allow_stream("user:notification", {"read:notifications"}));
  EXPECT_FALSE(scopes_allow_stream("user:notification", {"read:statuses"}));
  EXPECT_FALSE(scopes_allow_stream("user", {"read:notifications"}));
}

TEST(Scopes, EveryOtherNameNeedsReadStatuses) {
  for (const char* stream : {"user", "public", "public:local:media", "hashtag", "list", "direct", "unknown", ""}) {
    EXPECT_TRUE(scopes_allow_stream(stream, {"read:statuses"})) << stream;
    EXPECT_FALSE(scopes_allow_stream(stream, {"write", "follow", "profile", "admin:read", "read:accounts"}))
        << stream;
  }
  EXPECT_FALSE(scopes_allow_stream("public", {"", "read:statuses "}));
}

TEST(PlanStream, UserIncludesNotificationsOnlyWithTheScope) {
  auto with = plan_of(plan_stream("user", query(""), StreamRequester{42, {"read"}}));
  EXPECT_EQ(with.channels, (std::vector<std::string>{"timeline:42", "timeline:42:notifications"}));
  auto notif = plan_of(plan_stream("user", query(""), StreamRequester{42, {"read:statuses", "read:notifications"}}));
  EXPECT_EQ(notif.channels.size(), 2u);
  auto without = plan_of(plan_stream("user", query(""), StreamRequester{42, {"read:statuses"}}));
  EXPECT_EQ(without.channels, (std::vector<std::string>{"timeline:42"}));
  EXPECT_EQ(without.echo_json, R"(["user"])");
  EXPECT_FALSE(without.filtered);
}

TEST(PlanStream, EveryRowOfTheTable) {
  struct Row {
    const char* stream;
    const char* params;
    const char* channel;
    const char* echo;
    bool filtered;
    FeedKind feed;
  };
  const Row rows[] = {
      {"user:notification", "", "timeline:910001:notifications", R"(["user:notification"])", false, FeedKind::none},
      {"public", "", "timeline:public", R"(["public"])", true, FeedKind::live},
      {"public:media", "", "timeline:public:media", R"(["public:media"])", true, FeedKind::live},
      {"public:local", "", "timeline:public:local", R"(["public:local"])", true, FeedKind::live},
      {"public:local:media", "", "timeline:public:local:media", R"(["public:local:media"])", true, FeedKind::live},
      {"public:remote", "", "timeline:public:remote", R"(["public:remote"])", true, FeedKind::live},
      {"public:remote:media", "", "timeline:public:remote:media", R"(["public:remote:media"])", true,
       FeedKind::live},
      {"hashtag", "tag=Caf%C3%A9", "timeline:hashtag:cafe", R"(["hashtag","Café"])", true, FeedKind::topic},
      {"hashtag:local", "tag=%23foo", "timeline:hashtag:foo:local", R"(["hashtag:local","#foo"])", true, FeedKind::topic},
      {"list", "list=12", "timeline:list:12", R"(["list","12"])", false, FeedKind::none},
      {"direct", "", "timeline:direct:910001", R"(["direct"])", false, FeedKind::none},
  };
  for (const auto& row : rows) {
    auto plan = plan_of(plan_stream(row.stream, query(row.params), kReader));
    ASSERT_EQ(plan.channels.size(), 1u) << row.stream;
    EXPECT_EQ(plan.channels[0], row.channel) << row.stream;
    EXPECT_EQ(plan.echo_json, row.echo) << row.stream;
    EXPECT_EQ(plan.filtered, row.filtered) << row.stream;
    EXPECT_EQ(plan.feed_kind, row.feed) << row.stream;
    EXPECT_EQ(plan.name, row.stream);
  }
}

TEST(PlanStream, ListNeedsOwnershipCheck) {
  auto plan = plan_of(plan_stream("list", query("list=abc"), kReader));
  ASSERT_TRUE(plan.list_id);
  EXPECT_EQ(*plan.list_id, "abc");
  EXPECT_EQ(plan.channels[0], "timeline:list:abc");
}

TEST(PlanStream, ErrorsUseTheContractMessages) {
  auto missing_tag = error_of(plan_stream("hashtag", query(""), kReader));
  EXPECT_EQ(missing_tag.status, 400);
  EXPECT_EQ(missing_tag.message, "Missing tag name parameter");
  EXPECT_EQ(error_of(plan_stream("hashtag:local", query("tag="), kReader)).message, "Missing tag name parameter");
  auto missing_list = error_of(plan_stream("list", query(""), kReader));
  EXPECT_EQ(missing_list.status, 400);
  EXPECT_EQ(missing_list.message, "Missing list name parameter");
  auto unknown = error_of(plan_stream("foo", query(""), kReader));
  EXPECT_EQ(unknown.status, 400);
  EXPECT_EQ(unknown.message, "Unknown stream type");
  EXPECT_EQ(error_of(plan_stream("", query(""), kReader)).message, "Unknown stream type");
  // docs/protocol.md#edge-cases: a repeated tag parameter makes the reference throw.
  auto repeated = error_of(plan_stream("hashtag", query("tag=a&tag=b"), kReader));
  EXPECT_EQ(repeated.status, 500);
  EXPECT_EQ(repeated.message, "An unexpected error occurred");
}

TEST(PlanStream, SameHashtagSpelledTwiceHasOneKey) {
  auto a = plan_of(plan_stream("hashtag", query("tag=Caf%C3%A9"), kReader));
  auto b = plan_of(plan_stream("hashtag", query("tag=cafe"), kReader));
  EXPECT_EQ(a.key(), b.key());
  EXPECT_NE(a.echo_json, b.echo_json);
}

TEST(PlanStream, UserKeyJoinsChannelsWithSemicolons) {
  auto plan = plan_of(plan_stream("user", query(""), StreamRequester{7, {"read"}}));
  EXPECT_EQ(plan.key(), "timeline:7;timeline:7:notifications");
}

TEST(PlanStream, WebSocketParamsMayBeNonStrings) {
  nlohmann::ordered_json message = {{"type", "subscribe"}, {"stream", "list"}, {"list", 12}};
  auto plan = plan_of(plan_stream("list", message, kReader));
  EXPECT_EQ(plan.channels[0], "timeline:list:12");
  EXPECT_EQ(plan.echo_json, R"(["list",12])");
  nlohmann::ordered_json numeric_tag = {{"tag", 5}};
  EXPECT_EQ(error_of(plan_stream("hashtag", numeric_tag, kReader)).status, 500);
  nlohmann::ordered_json falsy_tag = {{"tag", 0}};
  EXPECT_EQ(error_of(plan_stream("hashtag", falsy_tag, kReader)).message, "Missing tag name parameter");
}

TEST(MetricNames, PrimedInTheReferenceOrder) {
  const auto& names = metric_stream_names();
  ASSERT_EQ(names.size(), 13u);
  EXPECT_EQ(names.front(), "system");
  EXPECT_EQ(names.back(), "hashtag:local");
}

}  // namespace
}  // namespace sluice::gateway
