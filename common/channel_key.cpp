#include "common/channel_key.hpp"

namespace sluice {

std::string channel_key(std::string_view tenant, std::string_view channel) {
  if (tenant.empty()) return std::string(channel);
  std::string key;
  key.reserve(tenant.size() + 1 + channel.size());
  key += tenant;
  key += '\n';
  key += channel;
  return key;
}

ChannelKeyParts split_channel_key(std::string_view key) {
  size_t newline = key.find('\n');
  if (newline == std::string_view::npos) return {{}, key};
  return {key.substr(0, newline), key.substr(newline + 1)};
}

}  // namespace sluice
