#pragma once
// What one viewer gets of one status on a filtered stream, decided in ONE pure
// function (docs/protocol.md#drop-pass-or-annotate) that both the immediate fan-out
// and statuses that waited for the viewer's data use. No sockets, no clocks: the
// caller passes the time and the viewer's data.
#include <array>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "gateway/status_filter.hpp"
#include "sluice/v1/broker.pb.h"

namespace sluice::gateway {

// docs/protocol.md#language-check: a viewer's chosen languages, held the way the
// fan-out compares them for every listener of a status. A code of at most 8 bytes
// without NUL is packed into one integer (zero-padded, so equal integers mean equal
// strings), and up to kInline of them sit inside the subscription: the check reads
// no memory of its own per listener, which a heap vector of strings made a cache miss
// for each (docs/benchmarks.md#many-viewers-against-one-2026-12-03-7e64ca0). Other
// lists keep their strings and are compared as strings.
class ChosenLanguages {
 public:
  static constexpr size_t kInline = 4;
  // The code packed, or nothing when it is longer than 8 bytes or holds a NUL.
  static std::optional<uint64_t> pack(std::string_view code);

  ChosenLanguages() = default;  // no restriction: every language passes
  explicit ChosenLanguages(const std::optional<std::vector<std::string>>& chosen);

  // `language`: the status's, absent for null; `packed`: pack(*language).
  bool admits(const std::optional<std::string_view>& language, const std::optional<uint64_t>& packed) const;

 private:
  bool restricted_ = false;
  bool packed_ = false;  // every code is in inline_
  uint8_t count_ = 0;
  std::array<uint64_t, kInline> inline_{};
  std::vector<std::string> codes_;  // only when not packed
};

// docs/protocol.md#feed-access-check and docs/protocol.md#language-check: the steps
// decided from the subscription and the token alone, before any viewer data.
struct SubscriptionRules {
  bool filter_local = false;   // the feed-access settings deny local statuses
  bool filter_remote = false;  // ... remote statuses
  ChosenLanguages languages;
};

// What those steps read of a status: the same for every listener, so taken once per event.
struct FeedFacts {
  bool well_formed = false;
  bool local = false;
  std::optional<std::string_view> language;  // into the status; absent for null
  std::optional<uint64_t> packed_language;
  static FeedFacts of(const sluice::v1::StatusFacts& status);
};

enum class FeedCheck { pass, drop, malformed };
FeedCheck check_feed_and_language(const FeedFacts& status, const SubscriptionRules& rules);

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

// A viewer's data as the decision reads it. The digests come from the viewer's cache
// entry, which the fan-out has prefetched; the sets and the compiled filters behind
// their pointers are read only where a digest leaves the answer open.
struct StatusViewer {
  const Relations& relations;
  const RelationsDigest& relations_keys;  // RelationsDigest::of(relations)
  const CompiledFilters& filters;
  const KeywordDigest& filter_keys;  // filters.digest()
};

// Evaluates the viewer's filters on the status's text and returns the `filtered` array,
// kept by the caller: the fan-out evaluates each viewer once per event and hands every
// client of that viewer the same string, so no client copies it unless its filters match.
using EvaluateFilters = std::function<const std::string&(const StatusViewer&)>;

// CompiledFilters::evaluate for the viewer, answered "[]" from its keyword digest
// where none of its keywords can occur in the subject.
std::string evaluate_filters(const StatusViewer& viewer, const FilterSubject& subject, int64_t now_ms);

// docs/protocol.md#relations, #filter-evaluation, #drop-pass-or-annotate.
// `status_keys` is RelationsDigest::of(status).
StatusDecision decide_status(const sluice::v1::StatusFacts& status, const RelationsDigest& status_keys,
                             const StatusViewer& viewer, const EvaluateFilters& evaluate);

}  // namespace sluice::gateway
