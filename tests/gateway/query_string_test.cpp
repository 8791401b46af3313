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

TEST(QueryString, InvalidUtf8EscapesAreKeptRaw) {
  auto q = parse_query("tag=%FF%FE");
  EXPECT_EQ(q["tag"], "%FF%FE");
}

TEST(QueryString, SplitTarget) {
  auto [path, query] = split_target("/api/v1/streaming/user?access_token=x");
  EXPECT_EQ(path, "/api/v1/streaming/user");
  EXPECT_EQ(query, "access_token=x");
  auto [bare, none] = split_target("/x");
  EXPECT_EQ(bare, "/x");
  EXPECT_EQ(none, "");
}

TEST(QueryString, SeparatorsOnly) {
  EXPECT_TRUE(parse_query("&&&").empty());
  EXPECT_TRUE(parse_query("").empty());
  EXPECT_EQ(parse_query("=v")[""], "v");
}

}  // namespace
}  // namespace sluice::gateway
