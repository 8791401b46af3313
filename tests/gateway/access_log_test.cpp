// docs/protocol.md#access-log: what the access log may print of a request target.
#include <gtest/gtest.h>

#include "gateway/access_log.hpp"

namespace sluice::gateway {
namespace {

TEST(AccessLog, TokenBearingParametersAreRedactedHoweverEncoded) {
  EXPECT_EQ(redact_target("/api/v1/streaming/user"), "/api/v1/streaming/user");
  EXPECT_EQ(redact_target("/api/v1/streaming/user?access_token=abc"), "/api/v1/streaming/user?access_token=[Redacted]");
  EXPECT_EQ(redact_target("/s?stream=user&access_token=abc&x=1"), "/s?stream=user&access_token=[Redacted]&x=1");
  EXPECT_EQ(redact_target("/s?access%5Ftoken=abc&access_token%5B%5D=def&access%5ftoken=ghi"),
            "/s?access%5Ftoken=[Redacted]&access_token%5B%5D=[Redacted]&access%5ftoken=[Redacted]");
  EXPECT_EQ(redact_target("/s?access_token=a&access_token=b"), "/s?access_token=[Redacted]&access_token=[Redacted]");
  // Names that merely contain the word, and values that do, are left alone.
  EXPECT_EQ(redact_target("/s?my_access_token=x&tag=access_token"), "/s?my_access_token=x&tag=access_token");
  EXPECT_EQ(redact_target("/s?"), "/s?");
}

TEST(AccessLog, StreamsAreListedOnceEach) {
  RequestRecord record;
  record.add_stream("public");
  record.add_stream("user");
  record.add_stream("public");
  record.add_stream("hashtag");
  EXPECT_EQ(record.streams, "public,user,hashtag");
}

}  // namespace
}  // namespace sluice::gateway
