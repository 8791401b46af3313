#pragma once
// Keeps the auth caches as fresh as the design's freshness rules ask: a `kill` on
// timeline:access_token:<id> or timeline:system:<account> makes the token (or every
// token of the account) refused from then on, and `filters_changed` drops the
// account's cached filters (docs/protocol.md#system-channels).
#include "auth/auth_tenants.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice {

// Applies the event to its tenant's caches. Returns true when it changed something.
bool apply_system_event(AuthTenants& tenants, const sluice::v1::ChannelEvent& event);
// The stream of system events was (re)opened: anything may have been missed while it
// was down, so no tenant keeps what those events invalidate.
void system_events_missed(AuthTenants& tenants);

}  // namespace sluice
