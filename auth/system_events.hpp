#pragma once
// Keeps the auth caches as fresh as the design's freshness rules ask: a `kill` on
// timeline:access_token:<id> or timeline:system:<account> makes the token (or every
// token of the account) refused from then on, and `filters_changed` drops the
// account's cached filters (docs/protocol.md#system-channels).
#include "auth/auth_cache.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice {

// Returns true when the event changed something in the cache.
bool apply_system_event(AuthCache& cache, const sluice::v1::ChannelEvent& event);

}  // namespace sluice
