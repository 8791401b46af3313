#pragma once
// Per-viewer rules for update/status.update on public and hashtag streams
// (docs/protocol.md#relations and docs/protocol.md#keyword-filters): blocks, mutes, domain blocks, and the
// viewer's keyword filters. Pure code, no I/O: the worker fetches the inputs
// from the auth service and calls these per event.
#include <array>
#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sluice/v1/auth.pb.h"
#include "sluice/v1/broker.pb.h"

namespace sluice::gateway {

// One viewer's relations (docs/protocol.md#relations), built from the auth service's reply.
// Each set is a sorted vector without duplicates: every status asks each viewer's sets,
// and a binary search over contiguous ids touches a cache line or two where a hash set
// touches its buckets and nodes, and an empty set touches nothing.
struct Relations {
  std::vector<int64_t> blocking;             // accounts the viewer blocks
  std::vector<int64_t> blocked_by;           // accounts that block the viewer
  std::vector<int64_t> muting;               // accounts the viewer mutes
  std::vector<std::string> blocked_domains;  // exact, case-sensitive
  static std::shared_ptr<const Relations> from_reply(const sluice::v1::RelationsReply& reply);
};

// docs/protocol.md#relations: true when the status must be dropped for this viewer: the viewer
// blocks or mutes the author or any mentioned account, or the author blocks the
// viewer, or the viewer blocks the domain of the author's acct (text after the first
// '@', exact; an empty domain, like no '@', checks nothing, as the reference's
// falsy test does). A non-numeric author or mention id (account_id_num /
// mention_ids_num 0) also drops, as PostgreSQL would fail the reference's query and
// it drops the message.
bool relations_drop(const Relations& relations, const sluice::v1::StatusFacts& status);

// The keys a relations check compares, account ids and domains, summed up in 256 bits,
// one bit per key (a Bloom filter with one hash). A viewer's digest sits in its cache
// entry, which the fan-out reads for every listener anyway; a status's is taken once
// per event. Where the two share no bit, no key of the status is among the viewer's
// sets, so relations_drop is false without reading them: for a thousand viewers those
// reads were a cache miss or two each, for most statuses and most viewers to find
// nothing (docs/benchmarks.md#relations-and-keywords-ruled-out-from-the-viewers-entry-2026-12-05).
class RelationsDigest {
 public:
  RelationsDigest() = default;  // no keys: overlaps only a digest that overlaps all
  // Every id and domain of the viewer's sets.
  static RelationsDigest of(const Relations& relations);
  // The status's author, mentioned accounts and the author's domain (as relations_drop
  // reads it). A non-numeric id makes it overlap every digest, even an empty one: such
  // a status is dropped whatever the sets hold.
  static RelationsDigest of(const sluice::v1::StatusFacts& status);
  // False only if relations_drop is false for every pair of sets and status with
  // these digests.
  bool overlaps(const RelationsDigest& other) const;

 private:
  void add(int64_t account_id);
  void add(std::string_view domain);
  void set(uint64_t hash);
  std::array<uint64_t, 4> bits_{};
  bool overlaps_all_ = false;
};

// A status's searched text (docs/protocol.md#filter-evaluation) prepared for matching:
// made well-formed, canonicalized as CompiledFilters describes, with the map back to
// the original bytes. Built once per event and shared by every viewer's filters, so
// a thousand viewers with their own filters do not each prepare the same text.
//
// It also records which three-byte sequences the canonical text contains, in a Bloom
// filter: a keyword with a sequence the text lacks cannot occur in it, so the filter
// cannot match and its regex is not run. That is most statuses for most viewers, and
// it spares touching the regex's compiled code, each viewer's own memory
// (docs/benchmarks.md#keyword-filters-ruled-out-before-the-regex-2026-12-05).
class FilterSubject {
 public:
  explicit FilterSubject(std::string_view filter_text);
  bool empty() const { return original_.empty(); }
  const std::string& original() const { return original_; }
  const std::string& canonical() const { return canonical_; }
  // False only if the canonical text surely lacks one of `trigrams`
  // (detail::keyword_trigrams of a canonical keyword); never false for a keyword
  // that occurs.
  bool may_contain(std::span<const uint16_t> trigrams) const;
  // A [start, end) range of canonical() as the same range of original().
  std::pair<size_t, size_t> to_original(std::pair<size_t, size_t> range) const {
    if (offsets_.empty()) return range;
    return {offsets_[range.first], offsets_[range.second]};
  }

 private:
  std::string original_;
  std::string canonical_;
  std::vector<uint32_t> offsets_;  // empty when canonicalizing kept the byte layout
  std::vector<uint64_t> trigrams_;  // the Bloom filter's bits; empty: the text is too long to index
};

namespace detail {
inline constexpr size_t kProbesPerKeyword = 4;  // see keyword_probes
}  // namespace detail

// A viewer's keyword filters summed up for the fan-out: up to kKeywords keywords'
// probes (detail::keyword_probes), held inline. The usual status holds none of a
// viewer's keywords; with the digest in the viewer's cache entry, which the fan-out
// prefetches, ruling it out reads that entry and the event's FilterSubject, not the
// compiled filters behind their pointer, a cache miss per viewer
// (docs/benchmarks.md#relations-and-keywords-ruled-out-from-the-viewers-entry-2026-12-05).
// Built by CompiledFilters::compile, a keyword at a time.
class KeywordDigest {
 public:
  static constexpr size_t kKeywords = 4;
  KeywordDigest() = default;  // no keywords
  // Nothing can match, whatever the status: there is no keyword.
  bool none() const { return !every_subject_ && keywords_ == 0; }
  // False only if no keyword of the filters can occur in the subject's text, so that
  // CompiledFilters::evaluate gives "[]". With more than kKeywords keywords, always true.
  bool may_match(const FilterSubject& subject) const;
  // One more keyword, by its detail::keyword_probes.
  void add(const std::vector<uint16_t>& probes);

 private:
  bool every_subject_ = false;  // more keywords than fit
  uint8_t keywords_ = 0;
  std::array<uint8_t, kKeywords> counts_{};
  std::array<uint16_t, kKeywords * detail::kProbesPerKeyword> bits_{};
};

// One connection's keyword filters (docs/protocol.md#keyword-filters), compiled once.
//
// Matching follows JavaScript's non-unicode `new RegExp(source, 'i')` exactly:
// both the keywords and the searched text are mapped through ECMAScript's
// Canonicalize (a UTF-16 code unit becomes its full Unicode uppercase when that is
// one code unit, and a non-ASCII unit never becomes ASCII), then matched case-
// sensitively by PCRE2 in UTF mode without UCP, so `\b` stays ASCII. The matched
// substring is then cut from the original text. PCRE2_CASELESS alone would be
// close but wrong for some letters (it equates `ſ` with `s`, `K` (Kelvin) with `k`,
// `ẞ` with `ß`, and folds astral letters, none of which JavaScript does).
class CompiledFilters {
 public:
  static std::shared_ptr<const CompiledFilters> compile(const sluice::v1::FiltersReply& reply);
  ~CompiledFilters();
  CompiledFilters(const CompiledFilters&) = delete;
  CompiledFilters& operator=(const CompiledFilters&) = delete;

  // The keywords of every filter, expired or not (past KeywordDigest::kKeywords, a mark
  // that any text may match); none() when no filter has a keyword.
  const KeywordDigest& digest() const { return digest_; }
  // The JSON array to put under "filtered" for a status whose searched text is
  // `filter_text`, at time `now_ms` (unix ms): "[]" when nothing matches, else
  // [{"filter":{"id":…,"title":…,"context":[…],"expires_at":…,"filter_action":…},"keyword_matches":["…"],"status_matches":null},…]
  std::string evaluate(const FilterSubject& subject, int64_t now_ms) const;
  std::string evaluate(std::string_view filter_text, int64_t now_ms) const {
    return evaluate(FilterSubject(filter_text), now_ms);
  }

  struct Filter;

 private:
  CompiledFilters() = default;
  std::vector<Filter> filters_;
  KeywordDigest digest_;
};

namespace detail {

// ECMAScript Canonicalize(ch) for a non-unicode, ignoreCase RegExp (ECMA-262
// §22.2.2.7.3) of one UTF-16 code unit.
char16_t js_canonicalize(char16_t unit);

// `well_formed` (valid UTF-8; callers replace ill-formed bytes with U+FFFD first,
// as Node decodes them) with every BMP character replaced by its canonical form;
// an astral character is two code units for JavaScript, each its own canonical
// form, so it stays as is. When the byte layout changed, `offsets` receives, for
// every byte index of the result plus one past its end, the byte index in
// `well_formed` of the character it belongs to; otherwise it is left empty.
std::string js_canonical_text(std::string_view well_formed, std::vector<uint32_t>* offsets);

// The pattern source the reference builds for one filter (docs/protocol.md#keyword-patterns): escaped keywords,
// `\b` on word-character ends of whole-word keywords, joined with `|`.
std::string filter_regex_source(const sluice::v1::CustomFilter& filter);

// A straightforward leftmost-first literal search over the same canonicalized
// strings, used when PCRE2 cannot compile a filter (e.g. a pattern too large for
// its link size) and by tests as an independent cross-check of the PCRE2 path.
// Returns [start, end) byte offsets in the well-formed text, or nullopt.
std::optional<std::pair<size_t, size_t>> literal_first_match(const sluice::v1::CustomFilter& filter,
                                                             std::string_view text);

// The Bloom filter bits of every three-byte sequence of a canonical keyword, for
// FilterSubject::may_contain. Every alternative of a filter's pattern is one keyword,
// escaped, with at most `\b` on either side, so a text lacking every keyword cannot
// match. Empty for a keyword shorter than three bytes: it is never ruled out.
std::vector<uint16_t> keyword_trigrams(std::string_view canonical_keyword);

// What a keyword is probed by: at most kProbesPerKeyword of its trigram bits, spread
// over the keyword. Empty, like keyword_trigrams, for a keyword shorter than three bytes.
std::vector<uint16_t> keyword_probes(std::string_view canonical_keyword);

// The first match as PCRE2 finds it, for the same cross-check.
std::optional<std::pair<size_t, size_t>> pcre2_first_match(const sluice::v1::CustomFilter& filter,
                                                           std::string_view text);

// Date.prototype.toISOString of unix milliseconds.
std::string js_iso_string(int64_t ms);

}  // namespace detail

}  // namespace sluice::gateway
