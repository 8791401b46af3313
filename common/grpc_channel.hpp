#pragma once
// Channels between tiers: keepalives notice a dead peer within seconds, and the
// reconnect backoff stays short so a restarted broker or auth is found quickly.
#include <grpcpp/grpcpp.h>

#include <chrono>
#include <memory>
#include <string>
#include <string_view>

#include "common/auth_stopping.hpp"
#include "common/broker_set.hpp"
#include "common/internal_tls.hpp"

namespace sluice {

grpc::ChannelArguments internal_channel_arguments();
// The same for the auth service (docs/scale-out.md#auth-replicas): idempotent lookups that
// fail UNAVAILABLE are retried, and round_robin takes the next replica.
grpc::ChannelArguments auth_channel_arguments();
// The servers' side of the same keepalive: the clients ping every 10 s even on an idle
// stream, and gRPC's default server answers pings that often without data with GOAWAY
// "too_many_pings" (a broker stream that carried no event for a while was cut that
// way: docs/drain.md).
void configure_internal_server(grpc::ServerBuilder& builder);
// A channel to another tier: plaintext, or mutual TLS when `tls` is configured
// (docs/internal-tls.md).
std::shared_ptr<grpc::Channel> internal_channel(const std::string& address, const InternalTls& tls);
// The longest wait between two attempts to reach a broker that is away, by its link
// (common/broker_link.cpp) and by the gRPC channel under it alike: while a broker is
// away, the channels it held have one holder left (docs/scale-out.md#brokers), so it is
// taken back as soon as it answers. A channel backing off longer would fail the link's
// attempts at once, without trying.
inline constexpr std::chrono::milliseconds kBrokerRetryMax{1000};

// One broker of a BrokerSet: an address resolved from a DNS name is checked against
// that name's certificate (unless SLUICE_TLS_SERVER_NAME says otherwise); reconnects at
// most kBrokerRetryMax apart.
std::shared_ptr<grpc::Channel> broker_channel(const BrokerTarget& target, const InternalTls& tls);
std::shared_ptr<grpc::Channel> auth_channel(const std::string& address, const InternalTls& tls);
// Listens for other tiers with the same choice.
void add_internal_listening_port(grpc::ServerBuilder& builder, const std::string& address, const InternalTls& tls,
                                 int* bound_port = nullptr);

}  // namespace sluice
