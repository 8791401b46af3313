#pragma once
// What one viewer gets of one status on a filtered stream, decided in ONE pure
// function (docs/protocol.md#drop-pass-or-annotate) that both the immediate fan-out
// and statuses that waited for the viewer's data use. No sockets, no clocks: the
// caller passes the time and the viewer's data.
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "gateway/status_filter.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice::gateway {

// docs/protocol.md#feed-access-check and docs/protocol.md#language-check: the steps
// decided from the subscription and the token alone, before any viewer data.
struct SubscriptionRules {
  bool filter_local = false;   // the feed-access settings deny local statuses
  bool filter_remote = false;  // ... remote statuses
  const std::optional<std::vector<std::string>>* chosen_languages = nullptr;
};

enum class FeedCheck { pass, drop, malformed };
FeedCheck check_feed_and_language(const sluice::v1::StatusFacts& status, const SubscriptionRules& rules);

enum class StatusVerdict {
  drop,              // a block, mute or domain block hides it
  unchanged,         // the payload already has `filtered`: forwarded as published
  no_filter_match,   // `"filtered":[]` appended: the frame every such client shares
  filter_matches,    // `"filtered":[…]` with this viewer's matches: a payload of its own
};

struct StatusDecision {
  StatusVerdict verdict = StatusVerdict::drop;
  std::string filtered_json;  // the array, for filter_matches
};

// Evaluates a filter set on the status's text and returns the `filtered` array, kept
// by the caller: the fan-out evaluates each distinct set once per event and hands every
// client of that set the same string, so no client copies it unless its filters match.
using EvaluateFilters = std::function<const std::string&(const CompiledFilters&)>;

// docs/protocol.md#relations, #filter-evaluation, #drop-pass-or-annotate.
StatusDecision decide_status(const sluice::v1::StatusFacts& status, int64_t viewer_account_id,
                             const Relations& relations, const CompiledFilters& filters,
                             const EvaluateFilters& evaluate);

}  // namespace sluice::gateway
