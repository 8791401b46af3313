// docs/internal-tls.md: with SLUICE_TLS_* set, the tiers talk mutual TLS, brokers
// and auth refuse any peer without a certificate from the configured CA, and
// certificates replaced on disk take effect without a restart.
#include <gtest/gtest.h>
#include <grpcpp/grpcpp.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>

#include "tests/e2e/cluster.hpp"
#include "tests/support/pki.hpp"

namespace sluice::testing {
namespace {

// How a TLS channel (or a plaintext one, with no certificate paths) to `address` fares:
// through the handshake, refused (the connection failed before it was ever ready), or
// neither within the deadline, which is no answer and fails whichever check asked.
enum class Handshake { accepted, refused, undecided };

std::ostream& operator<<(std::ostream& out, Handshake h) {
  return out << (h == Handshake::accepted ? "accepted" : h == Handshake::refused ? "refused" : "undecided");
}

Handshake handshake(const std::string& address, const std::string& ca, const std::string& cert, const std::string& key) {
  std::shared_ptr<grpc::ChannelCredentials> credentials;
  if (ca.empty()) {
    credentials = grpc::InsecureChannelCredentials();
  } else {
    grpc::SslCredentialsOptions options;
    options.pem_root_certs = read_file(ca);
    if (!cert.empty()) {
      options.pem_cert_chain = read_file(cert);
      options.pem_private_key = read_file(key);
    }
    credentials = grpc::SslCredentials(options);
  }
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride("localhost");
  args.SetInt(GRPC_ARG_INITIAL_RECONNECT_BACKOFF_MS, 100);
  auto channel = grpc::CreateCustomChannel(address, credentials, args);
  const auto deadline = std::chrono::system_clock::now() + std::chrono::seconds(20);
  for (grpc_connectivity_state state = channel->GetState(/*try_to_connect=*/true);;) {
    if (state == GRPC_CHANNEL_READY) return Handshake::accepted;
    if (state == GRPC_CHANNEL_TRANSIENT_FAILURE || state == GRPC_CHANNEL_SHUTDOWN) return Handshake::refused;
    if (!channel->WaitForStateChange(state, deadline)) return Handshake::undecided;
    state = channel->GetState(/*try_to_connect=*/true);
  }
}

bool connects(const std::string& address, const std::string& ca, const std::string& cert, const std::string& key) {
  return handshake(address, ca, cert, key) == Handshake::accepted;
}

TEST(InternalTls, TiersTalkMutualTlsAndRefuseAnyPeerWithoutAValidCertificate) {
  TestPki pki;
  pki.make_ca("ca");
  pki.make_cert("tier", "ca");
  pki.make_ca("rogue-ca");
  pki.make_cert("rogue", "rogue-ca");
  pki.make_ca("next-ca");
  pki.make_cert("next", "next-ca");
  // The CA file the tiers watch; rotated below.
  std::string ca_file = pki.path("trusted.pem");
  std::ofstream(ca_file) << read_file(pki.path("ca.pem"));

  Cluster cluster(Deployment::split, {{"SLUICE_TLS_CERT", pki.path("tier.pem")},
                                      {"SLUICE_TLS_KEY", pki.path("tier.key")},
                                      {"SLUICE_TLS_CA", ca_file},
                                      {"SLUICE_TLS_SERVER_NAME", "localhost"},
                                      {"SLUICE_TLS_REFRESH_SECONDS", "1"}});
  // The cluster is ready: gateway and auth opened their broker streams over mutual TLS.
  auto viewer = create_account(suite_postgres(), "mtls");
  SseClient sse(cluster.port(), "/api/v1/streaming/user", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(wait_numsub("timeline:" + std::to_string(viewer.account_id), 1));
  suite_redis().publish("timeline:" + std::to_string(viewer.account_id), R"({"event":"delete","payload":"over-tls"})");
  auto event = sse.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "over-tls");

  for (const char* tier : {"SLUICE_BROKER_ADDR", "SLUICE_AUTH_LISTEN"}) {
    std::string address = cluster.env().at(tier);
    SCOPED_TRACE(tier);
    EXPECT_TRUE(connects(address, pki.path("ca.pem"), pki.path("tier.pem"), pki.path("tier.key")));
    EXPECT_EQ(handshake(address, "", "", ""), Handshake::refused);                       // plaintext
    EXPECT_EQ(handshake(address, pki.path("ca.pem"), "", ""), Handshake::refused);       // TLS, no client certificate
    EXPECT_EQ(handshake(address, pki.path("ca.pem"), pki.path("rogue.pem"), pki.path("rogue.key")), Handshake::refused);
    EXPECT_EQ(handshake(address, pki.path("ca.pem"), pki.path("next.pem"), pki.path("next.key")), Handshake::refused);
  }

  // Rotation, first step: the watched CA file now trusts the next CA as well. Without
  // a restart, a peer with a certificate from the next CA gets in.
  std::ofstream(ca_file) << read_file(pki.path("ca.pem")) << read_file(pki.path("next-ca.pem"));
  for (const char* tier : {"SLUICE_BROKER_ADDR", "SLUICE_AUTH_LISTEN"}) {
    std::string address = cluster.env().at(tier);
    SCOPED_TRACE(tier);
    EXPECT_TRUE(eventually([&] { return connects(address, pki.path("ca.pem"), pki.path("next.pem"), pki.path("next.key")); },
                           20s));
    EXPECT_EQ(handshake(address, pki.path("ca.pem"), pki.path("rogue.pem"), pki.path("rogue.key")), Handshake::refused);
  }
  // The running streams were never disturbed.
  suite_redis().publish("timeline:" + std::to_string(viewer.account_id), R"({"event":"delete","payload":"after"})");
  event = sse.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->data, "after");
}

}  // namespace
}  // namespace sluice::testing
