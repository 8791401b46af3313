// .env files read as the reference's dotenv package reads them
// (docs/protocol.md#environment-file): a value Sluice read differently from Rails and the
// reference (a password with `#` in it) would fail where they succeed.
#include <gtest/gtest.h>

#include <map>
#include <string>

#include "common/env.hpp"

namespace sluice {
namespace {

using Vars = std::map<std::string, std::string>;

TEST(Dotenv, AnUnquotedValueEndsAtTheFirstHash) {
  EXPECT_EQ(parse_dotenv("DB_PASS=secret#old\n"), (Vars{{"DB_PASS", "secret"}}));
  EXPECT_EQ(parse_dotenv("A=one # a comment\nB = two\n"), (Vars{{"A", "one"}, {"B", "two"}}));
  EXPECT_EQ(parse_dotenv("EMPTY=#nothing\n"), (Vars{{"EMPTY", ""}}));
  EXPECT_EQ(parse_dotenv("# a comment\n  # another\nexport LOG_LEVEL=warn\n"), (Vars{{"LOG_LEVEL", "warn"}}));
}

TEST(Dotenv, QuotedValuesKeepHashesAndMaySpanLines) {
  EXPECT_EQ(parse_dotenv("A=\"has # hash\" # comment\nB='it''s'\n"),
            (Vars{{"A", "has # hash"}, {"B", "it''s"}}));
  EXPECT_EQ(parse_dotenv("KEY=\"-----BEGIN-----\nline\n-----END-----\"\nNEXT=1\n"),
            (Vars{{"KEY", "-----BEGIN-----\nline\n-----END-----"}, {"NEXT", "1"}}));
  EXPECT_EQ(parse_dotenv("T=`back tick`\n"), (Vars{{"T", "back tick"}}));
}

TEST(Dotenv, OnlyDoubleQuotesExpandNewlineEscapes) {
  EXPECT_EQ(parse_dotenv("D=\"a\\nb\\rc\"\nS='a\\nb'\nU=a\\nb\n"),
            (Vars{{"D", "a\nb\rc"}, {"S", "a\\nb"}, {"U", "a\\nb"}}));
}

TEST(Dotenv, AnEscapedQuoteDoesNotEndADoubleQuotedValueAndStaysAsWritten) {
  EXPECT_EQ(parse_dotenv("Q=\"say \\\"hi\\\"\"\nN=1\n"), (Vars{{"Q", "say \\\"hi\\\""}, {"N", "1"}}));
}

TEST(Dotenv, TextAfterAClosingQuoteMakesTheLineUnquoted) {
  // dotenv's quoted form must be followed by nothing but a comment; otherwise it reads
  // the line's rest up to a `#`.
  EXPECT_EQ(parse_dotenv("A=\"x\" y\n"), (Vars{{"A", "\"x\" y"}}));
  EXPECT_EQ(parse_dotenv("A=\"x\" \"y\" #c\n"), (Vars{{"A", "x\" \"y"}}));
}

TEST(Dotenv, AnUnclosedQuoteIsReadAsUnquoted) {
  EXPECT_EQ(parse_dotenv("A=\"open # rest\nB=2\n"), (Vars{{"A", "\"open"}, {"B", "2"}}));
}

TEST(Dotenv, CarriageReturnsEndLinesAsNewlinesDo) {
  EXPECT_EQ(parse_dotenv("A=1\r\nB=\"x\r\ny\"\rC=3"), (Vars{{"A", "1"}, {"B", "x\ny"}, {"C", "3"}}));
}

TEST(Dotenv, LinesWithoutAnEqualsSignOrWithABadKeyAreSkipped) {
  EXPECT_EQ(parse_dotenv("JUNK\nBAD KEY=1\nGOOD.key-1=v\n"), (Vars{{"GOOD.key-1", "v"}}));
}

}  // namespace
}  // namespace sluice
