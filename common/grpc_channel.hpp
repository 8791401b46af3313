#pragma once
// Channels between tiers: keepalives notice a dead peer within seconds, and the
// reconnect backoff stays short so a restarted broker or auth is found quickly.
#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>

namespace sluice {

grpc::ChannelArguments internal_channel_arguments();
std::shared_ptr<grpc::Channel> internal_channel(const std::string& address);

}  // namespace sluice
