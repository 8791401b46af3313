#include "gateway/query_string.hpp"

#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

TEST(QueryString, DecodesLikeNodeQuerystring) {
  auto q = parse_query("stream=hashtag&tag=caf%C3%A9+bar&x=%zz&empty=&flag");
  EXPECT_EQ(q["stream"], "hashtag");
  EXPECT_EQ(q["tag"], "café bar");
  EXPECT_EQ(q["x"], "%zz");
  EXPECT_EQ(q["empty"], "");
  EXPECT_EQ(q["flag"], "");
}

TEST(QueryString, RepeatedKeysBecomeArraysAndFirstStringPicksTheFirst) {
  auto q = parse_query("access_token=a&access_token=b&access_token=c");
  ASSERT_TRUE(q["access_token"].is_array());
  EXPECT_EQ(q["access_token"].size(), 3u);
  EXPECT_EQ(first_string(q, "access_token"), "a");
  EXPECT_EQ(first_string(q, "missing"), "");
}

// Node 20: querystring.parse("tag=%FF%FE&e=x+y%FF") is {tag: "\uFFFD\uFFFD", e: "x y\uFFFD"}.
TEST(QueryString, EscapesThatAreNotUtf8DecodeToReplacementCharacters) {
  auto q = parse_query("tag=%FF%FE&e=x+y%FF&ok=caf%C3%A9&cut=%C3");
  EXPECT_EQ(q["tag"], "\xEF\xBF\xBD\xEF\xBF\xBD");
  EXPECT_EQ(q["e"], "x y\xEF\xBF\xBD");
  EXPECT_EQ(q["ok"], "caf\xC3\xA9");
  EXPECT_EQ(q["cut"], "\xEF\xBF\xBD");
}

// Whatever the bytes, every key and value is valid UTF-8: channels and tokens travel in
// protobuf strings (a fuzzer found raw bytes reaching a list channel).
TEST(QueryString, RawBytesThatAreNotUtf8NeverSurvive) {
  auto q = parse_query(std::string("list=12\xF3&\xF3=%41\xF3"));
  EXPECT_EQ(q["list"], "12\xEF\xBF\xBD");
  EXPECT_EQ(q["\xEF\xBF\xBD"], "A\xEF\xBF\xBD");
}

// Node 20 reads the first 1000 '&'-separated pieces, empty ones included.
TEST(QueryString, OnlyTheFirstThousandPiecesCount) {
  std::string empties(1005, '&');
  EXPECT_TRUE(parse_query(empties + "a=1").empty());
  std::string repeated;
  for (int i = 0; i < 1001; ++i) repeated += "k=1&";
  auto q = parse_query(repeated + "z=1");
  EXPECT_EQ(q["k"].size(), 1000u);
  EXPECT_FALSE(q.contains("z"));
  EXPECT_EQ(parse_query(std::string(999, '&') + "a=1")["a"], "1");
}

TEST(QueryString, SplitTarget) {
  auto [path, query] = split_target("/api/v1/streaming/user?access_token=x");
  EXPECT_EQ(path, "/api/v1/streaming/user");
  EXPECT_EQ(query, "access_token=x");
  auto [bare, none] = split_target("/x");
  EXPECT_EQ(bare, "/x");
  EXPECT_EQ(none, "");
}

// As Node's url.parse and Express's parseurl: a fragment is cut off first, wherever it
// stands, so neither the path nor the query holds it.
TEST(QueryString, SplitTargetDropsTheFragment) {
  struct Case {
    const char* target;
    const char* path;
    const char* query;
  };
  for (const Case& c : {Case{"/api/v1/streaming/user#x", "/api/v1/streaming/user", ""},
                        Case{"/api/v1/streaming?stream=hashtag&tag=#cats", "/api/v1/streaming", "stream=hashtag&tag="},
                        Case{"/api/v1/streaming/hashtag?tag=foo#bar?tag=baz", "/api/v1/streaming/hashtag", "tag=foo"},
                        Case{"/api/v1/streaming/public#x?only_media=1", "/api/v1/streaming/public", ""},
                        Case{"http://h/api/v1/streaming/public?a=1#f", "/api/v1/streaming/public", "a=1"}}) {
    auto [path, query] = split_target(c.target);
    EXPECT_EQ(path, c.path) << c.target;
    EXPECT_EQ(query, c.query) << c.target;
  }
}

TEST(QueryString, SeparatorsOnly) {
  EXPECT_TRUE(parse_query("&&&").empty());
  EXPECT_TRUE(parse_query("").empty());
  EXPECT_EQ(parse_query("=v")[""], "v");
}

}  // namespace
}  // namespace sluice::gateway
