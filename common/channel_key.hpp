#pragma once
// A channel as gateways and their broker links keep it (docs/hosting.md#tenants): for
// the one instance of a deployment without a tenants file, the channel name itself;
// for an instance of a tenants file, "<tenant>\n<channel>". A tenant name never holds a
// newline, so the first one splits a key back into the two, and the same channel of
// two instances is two keys everywhere a key is compared: placement over brokers, the
// de-duplication of replicated copies, the gateway's channel tables.
#include <string>
#include <string_view>

namespace sluice {

std::string channel_key(std::string_view tenant, std::string_view channel);

struct ChannelKeyParts {
  std::string_view tenant;
  std::string_view channel;
};
ChannelKeyParts split_channel_key(std::string_view key);

}  // namespace sluice
