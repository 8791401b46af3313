// docs/protocol.md#admission-limits: the counting behind each limit, with the time
// moved by hand.
#include <gtest/gtest.h>

#include "gateway/auth_failure_limiter.hpp"
#include "gateway/connection_limits.hpp"
#include "gateway/http_responses.hpp"
#include "gateway/token_bucket.hpp"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

TEST(TokenBucket, AllowsABurstOfRateThenRefillsWithTime) {
  TokenBucket bucket(3);
  SteadyClock::time_point t{1000s};
  EXPECT_TRUE(bucket.take(t));
  EXPECT_TRUE(bucket.take(t));
  EXPECT_TRUE(bucket.take(t));
  EXPECT_FALSE(bucket.take(t));
  EXPECT_FALSE(bucket.take(t + 300ms));  // 0.9 of a token
  EXPECT_TRUE(bucket.take(t + 340ms));
  EXPECT_FALSE(bucket.take(t + 340ms));
  // Refills to the burst size, not beyond.
  t += 1h;
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(bucket.take(t));
  EXPECT_FALSE(bucket.take(t));
}

TEST(TokenBucket, RateZeroIsNoLimit) {
  TokenBucket bucket(0);
  for (int i = 0; i < 10000; ++i) ASSERT_TRUE(bucket.take(SteadyClock::time_point{}));
}

TEST(ConnectionLimits, CountsEveryTicketUntilItDies) {
  ConnectionLimits limits(2, 0);
  auto a = limits.admit();
  auto b = limits.admit();
  EXPECT_TRUE(b->within_connection_limit());
  {
    auto c = limits.admit();
    EXPECT_FALSE(c->within_connection_limit());
    EXPECT_FALSE(a->within_connection_limit());  // the gateway is past its limit for everyone
    EXPECT_EQ(limits.open_connections(), 3u);
  }
  EXPECT_EQ(limits.open_connections(), 2u);
  EXPECT_TRUE(a->within_connection_limit());
}

TEST(ConnectionLimits, AddressCapHoldsPerAddressAndFreesOnClose) {
  ConnectionLimits limits(100, 2);
  auto a1 = limits.admit();
  auto a2 = limits.admit();
  auto a3 = limits.admit();
  auto b1 = limits.admit();
  EXPECT_TRUE(a1->claim_address("203.0.113.1"));
  EXPECT_TRUE(a1->claim_address("203.0.113.1"));  // claimed once per connection
  EXPECT_TRUE(a2->claim_address("203.0.113.1"));
  EXPECT_FALSE(a3->claim_address("203.0.113.1"));
  EXPECT_FALSE(a3->claim_address("203.0.113.1"));
  EXPECT_TRUE(b1->claim_address("203.0.113.2"));
  a1.reset();
  auto a4 = limits.admit();
  EXPECT_TRUE(a4->claim_address("203.0.113.1"));
  // An unknown address (a Unix socket peer) is never capped.
  auto u1 = limits.admit();
  auto u2 = limits.admit();
  auto u3 = limits.admit();
  EXPECT_TRUE(u1->claim_address("") && u2->claim_address("") && u3->claim_address(""));
}

// Behind a trusted proxy that keeps its upstream connections, one connection serves
// one client's stream and then another's: the count follows the client.
TEST(ConnectionLimits, AConnectionServingAnotherClientCountsAgainstThatOne) {
  ConnectionLimits limits(100, 1);
  auto kept = limits.admit();
  EXPECT_TRUE(kept->claim_address("203.0.113.1"));
  EXPECT_TRUE(kept->claim_address("203.0.113.2"));  // the next request, another client
  auto first_again = limits.admit();
  EXPECT_TRUE(first_again->claim_address("203.0.113.1")) << "the first client was still counted";
  auto second_again = limits.admit();
  EXPECT_FALSE(second_again->claim_address("203.0.113.2"));
  EXPECT_FALSE(kept->claim_address("203.0.113.1"));  // now at its cap: refused, nothing held
  EXPECT_TRUE(second_again->claim_address("203.0.113.2"));
}

TEST(ConnectionLimits, DefaultLeavesHeadroomBelowTheOpenFileLimit) {
  EXPECT_EQ(default_max_connections(20000), 19000u);
  EXPECT_EQ(default_max_connections(1024), 960u);
  EXPECT_EQ(default_max_connections(10), 1u);
}

TEST(Responses, RetryAfterFollowsTheStatusLine) {
  auto response = with_retry_after(json_error_response(503, "Too many connections", "rid", false), 5);
  EXPECT_EQ(response.rfind("HTTP/1.1 503 Service Unavailable\r\nRetry-After: 5\r\n", 0), 0u) << response;
  EXPECT_NE(response.find("\r\n\r\n{\"error\":\"Too many connections\"}"), std::string::npos);
}

}  // namespace
}  // namespace sluice::gateway

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;

TEST(AuthFailureLimiter, RefusesAnAddressOnceItsFailuresAreSpentAndForgivesWithTime) {
  AuthFailureLimiter limiter(2);
  SteadyClock::time_point t{50s};
  // Two lookups in flight at once reserve the whole budget: a third is refused
  // before any has failed.
  EXPECT_TRUE(limiter.reserve("198.51.100.1", t));
  EXPECT_TRUE(limiter.reserve("198.51.100.1", t));
  EXPECT_FALSE(limiter.reserve("198.51.100.1", t));
  EXPECT_TRUE(limiter.reserve("198.51.100.2", t));  // other addresses are not affected
  EXPECT_TRUE(limiter.reserve("", t));               // nor unlimited ones
  EXPECT_TRUE(limiter.reserve("198.51.100.1", t + 500ms));
}

TEST(AuthFailureLimiter, ValidTokensGiveTheirReservationBack) {
  AuthFailureLimiter limiter(2);
  SteadyClock::time_point t{50s};
  for (int i = 0; i < 100; ++i) {
    ASSERT_TRUE(limiter.reserve("198.51.100.1", t)) << i;
    limiter.refund("198.51.100.1");
  }
}

TEST(AuthFailureLimiter, RemembersABoundedNumberOfAddresses) {
  AuthFailureLimiter limiter(1, 100);
  SteadyClock::time_point t{50s};
  for (int i = 0; i < 1000; ++i) limiter.reserve("203.0.113." + std::to_string(i), t);
  EXPECT_LE(limiter.remembered(), 100u);
}

// Full, the limiter forgets addresses whose budget has refilled, and only those: a flood
// of new addresses does not give a spent one its budget back.
TEST(AuthFailureLimiter, WhenFullItForgetsRefilledAddressesFirst) {
  AuthFailureLimiter limiter(1, 100);
  SteadyClock::time_point t{50s};
  for (int i = 0; i < 50; ++i) limiter.reserve("203.0.113." + std::to_string(i), t);  // refilled by t + 10s
  for (int i = 0; i < 50; ++i) EXPECT_TRUE(limiter.reserve("198.51.100." + std::to_string(i), t + 10s));
  ASSERT_EQ(limiter.remembered(), 100u);
  EXPECT_TRUE(limiter.reserve("192.0.2.1", t + 10s));
  EXPECT_EQ(limiter.remembered(), 51u) << "the 50 refilled addresses forgotten, the spent ones kept";
  EXPECT_FALSE(limiter.reserve("198.51.100.7", t + 10s)) << "a spent address got its budget back";
}

}  // namespace
}  // namespace sluice::gateway
