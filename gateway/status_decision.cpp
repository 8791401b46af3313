#include "gateway/status_decision.hpp"

#include <algorithm>

namespace sluice::gateway {

FeedCheck check_feed_and_language(const sluice::v1::StatusFacts& status, const SubscriptionRules& rules) {
  if (!status.well_formed()) return FeedCheck::malformed;
  bool local = status.account_username() == status.account_acct();
  if ((local && rules.filter_local) || (!local && rules.filter_remote)) return FeedCheck::drop;
  if (rules.chosen_languages && *rules.chosen_languages) {
    const auto& languages = **rules.chosen_languages;
    if (!status.has_language()) return FeedCheck::drop;
    if (std::find(languages.begin(), languages.end(), status.language()) == languages.end()) return FeedCheck::drop;
  }
  return FeedCheck::pass;
}

StatusDecision decide_status(const sluice::v1::StatusFacts& status, int64_t viewer_account_id,
                             const Relations& relations, const CompiledFilters& filters,
                             const EvaluateFilters& evaluate) {
  StatusDecision decision;
  if (relations_drop(relations, viewer_account_id, status)) return decision;
  if (status.has_filtered()) {
    decision.verdict = StatusVerdict::unchanged;
    return decision;
  }
  if (filters.empty()) {
    decision.verdict = StatusVerdict::no_filter_match;
    return decision;
  }
  const std::string& filtered = evaluate(filters);
  if (filtered == "[]") {
    decision.verdict = StatusVerdict::no_filter_match;
    return decision;
  }
  decision.verdict = StatusVerdict::filter_matches;
  decision.filtered_json = filtered;
  return decision;
}

}  // namespace sluice::gateway
