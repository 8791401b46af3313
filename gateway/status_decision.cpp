#include "gateway/status_decision.hpp"

#include <algorithm>
#include <cstring>

namespace sluice::gateway {

std::optional<uint64_t> ChosenLanguages::pack(std::string_view code) {
  if (code.size() > sizeof(uint64_t) || code.find('\0') != std::string_view::npos) return std::nullopt;
  uint64_t packed = 0;
  std::memcpy(&packed, code.data(), code.size());
  return packed;
}

ChosenLanguages::ChosenLanguages(const std::optional<std::vector<std::string>>& chosen) {
  if (!chosen) return;
  restricted_ = true;
  packed_ = chosen->size() <= kInline;
  for (size_t i = 0; packed_ && i < chosen->size(); ++i) {
    auto packed = pack((*chosen)[i]);
    if (packed) inline_[count_++] = *packed;
    packed_ = packed.has_value();
  }
  if (!packed_) {
    count_ = 0;
    codes_ = *chosen;
  }
}

bool ChosenLanguages::admits(const std::optional<std::string_view>& language,
                             const std::optional<uint64_t>& packed) const {
  if (!restricted_) return true;
  if (!language) return false;  // strict equality: null is in no list of codes
  if (!packed_) return std::find(codes_.begin(), codes_.end(), *language) != codes_.end();
  // Every chosen code packs, so one that does not cannot equal any of them.
  if (!packed) return false;
  return std::find(inline_.begin(), inline_.begin() + count_, *packed) != inline_.begin() + count_;
}

FeedFacts FeedFacts::of(const sluice::v1::StatusFacts& status) {
  FeedFacts facts;
  facts.well_formed = status.well_formed();
  facts.local = status.account_username() == status.account_acct();
  if (status.has_language()) {
    facts.language = status.language();
    facts.packed_language = ChosenLanguages::pack(status.language());
  }
  return facts;
}

FeedCheck check_feed_and_language(const FeedFacts& status, const SubscriptionRules& rules) {
  if (!status.well_formed) return FeedCheck::malformed;
  if ((status.local && rules.filter_local) || (!status.local && rules.filter_remote)) return FeedCheck::drop;
  if (!rules.languages.admits(status.language, status.packed_language)) return FeedCheck::drop;
  return FeedCheck::pass;
}

std::string evaluate_filters(const StatusViewer& viewer, const FilterSubject& subject, int64_t now_ms) {
  if (!viewer.filter_keys.may_match(subject)) return "[]";
  return viewer.filters.evaluate(subject, now_ms);
}

StatusDecision decide_status(const sluice::v1::StatusFacts& status, const RelationsDigest& status_keys,
                             const StatusViewer& viewer, const EvaluateFilters& evaluate) {
  StatusDecision decision;
  if (status_keys.overlaps(viewer.relations_keys) && relations_drop(viewer.relations, status)) return decision;
  if (status.has_filtered()) {
    decision.verdict = StatusVerdict::unchanged;
    return decision;
  }
  if (viewer.filter_keys.none()) {
    decision.verdict = StatusVerdict::no_filter_match;
    return decision;
  }
  const std::string& filtered = evaluate(viewer);
  if (filtered == "[]") {
    decision.verdict = StatusVerdict::no_filter_match;
    return decision;
  }
  decision.verdict = StatusVerdict::filter_matches;
  decision.filtered_json = filtered;
  return decision;
}

}  // namespace sluice::gateway
