#pragma once
// Shared by the auth tier, which says it, and the gateways, which read it.
#include <string_view>

namespace sluice {

// The message of the UNAVAILABLE an auth replica answers once it is stopping: retried on
// another replica (auth_channel_arguments, docs/scale-out.md#auth-replicas), and when
// every attempt got it (a lone replica restarting), the gateway answers its client as
// busy (503 with Retry-After), not as a failure.
inline constexpr std::string_view kAuthStoppingMessage = "the auth service is stopping";

}  // namespace sluice
