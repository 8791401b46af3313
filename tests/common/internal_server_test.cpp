// The tiers' gRPC server (common/internal_server.hpp): health per service following
// readiness, the overall status of a one-service server, and a clear error for an
// address it cannot listen on.
#include "common/internal_server.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "common/config_error.hpp"
#include "sluice/v1/auth.grpc.pb.h"
#include "sluice/v1/broker.grpc.pb.h"
#include "tests/support/grpc_health.hpp"

namespace sluice {
namespace {

constexpr int kServing = 1;
constexpr int kNotServing = 2;

// What ReportReadiness needs of a tier: the callback it installs, called by hand here.
struct TierWithReadiness {
  std::function<void(bool)> callback;
  void set_readiness_callback(std::function<void(bool)> c) { callback = std::move(c); }
};

TEST(InternalServerTest, OneServiceStartsNotServingAndFollowsItsTierWithTheOverallStatus) {
  v1::Broker::CallbackService broker;
  InternalServer server({}, {{"sluice.v1.Broker", &broker}});
  auto channel = server.in_process_channel(grpc::ChannelArguments());
  EXPECT_EQ(testing::health_status(channel, "sluice.v1.Broker"), kNotServing);
  EXPECT_EQ(testing::health_status(channel, ""), kNotServing);

  TierWithReadiness tier;
  {
    ReportReadiness report{tier, server, "sluice.v1.Broker"};
    ASSERT_TRUE(tier.callback);
    tier.callback(true);
    EXPECT_EQ(testing::health_status(channel, "sluice.v1.Broker"), kServing);
    EXPECT_EQ(testing::health_status(channel, ""), kServing);
    tier.callback(false);
    EXPECT_EQ(testing::health_status(channel, "sluice.v1.Broker"), kNotServing);
    tier.callback(true);
  }
  // Out of scope: the tier no longer reaches the server, and the service is reported
  // NOT_SERVING though the tier last said ready (a shutdown starts so).
  EXPECT_FALSE(tier.callback);
  EXPECT_EQ(testing::health_status(channel, "sluice.v1.Broker"), kNotServing);
  EXPECT_EQ(testing::health_status(channel, ""), kNotServing);
  server.shutdown(std::chrono::milliseconds(100));
}

// A gateway's opening Subscribe names every channel it listens to; the tiers' clients
// take 64 MiB (common/grpc_channel.cpp), and the servers take as much. Before, a broker
// refused past gRPC's default 4 MiB and the gateway sent the same Subscribe forever.
TEST(InternalServerTest, TakesMessagesAsLargeAsTheTiersSend) {
  v1::Broker::CallbackService broker;
  InternalServer server({}, {{"sluice.v1.Broker", &broker}});
  auto channel = server.in_process_channel(grpc::ChannelArguments());
  // A health check naming a 5 MiB service: read, and refused by the health service
  // itself (INVALID_ARGUMENT: it takes names up to 200 bytes), not RESOURCE_EXHAUSTED
  // by the transport before anyone read it.
  grpc::Status status = testing::health_check(channel, std::string(5 << 20, 'x'));
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT) << status.error_message();
  server.shutdown(std::chrono::milliseconds(100));
}

TEST(InternalServerTest, TwoServicesReportApartAndLeaveTheOverallStatusAlone) {
  v1::Broker::CallbackService broker;
  v1::Auth::CallbackService auth;
  InternalServer server({}, {{"sluice.v1.Auth", &auth}, {"sluice.v1.Broker", &broker}});
  auto channel = server.in_process_channel(grpc::ChannelArguments());
  server.set_serving("sluice.v1.Auth", true);
  EXPECT_EQ(testing::health_status(channel, "sluice.v1.Auth"), kServing);
  EXPECT_EQ(testing::health_status(channel, "sluice.v1.Broker"), kNotServing);
  // One tier's readiness says nothing of the process: "" keeps gRPC's default.
  EXPECT_EQ(testing::health_status(channel, ""), kServing);
  server.set_serving("sluice.v1.Auth", false);
  EXPECT_EQ(testing::health_status(channel, "sluice.v1.Auth"), kNotServing);
  server.shutdown(std::chrono::milliseconds(100));
}

TEST(InternalServerTest, AnAddressInUseIsAConfigErrorNamingTheVariable) {
  // A plain listening socket (no SO_REUSEPORT, which gRPC would share the port with).
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  ASSERT_GE(fd, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  ASSERT_EQ(::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
  ASSERT_EQ(::listen(fd, 1), 0);
  socklen_t len = sizeof addr;
  ASSERT_EQ(::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len), 0);
  const std::string taken = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));

  v1::Broker::CallbackService broker;
  try {
    InternalServer server({taken, "SLUICE_BROKER_LISTEN"}, {{"sluice.v1.Broker", &broker}});
    ADD_FAILURE() << "listened on a taken port";
  } catch (const ConfigError& e) {
    EXPECT_EQ(std::string(e.what()), "cannot listen on " + taken + " (SLUICE_BROKER_LISTEN)");
  }
  ::close(fd);
}

}  // namespace
}  // namespace sluice
