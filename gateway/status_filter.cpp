#include "gateway/status_filter.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <pcre2.h>
#include <unicode/ustring.h>
#include <unicode/utypes.h>

#include <boost/container/small_vector.hpp>

#include <algorithm>
#include <array>
#include <cstdio>
#include <functional>

#include "common/js_json.hpp"

namespace sluice::gateway {

// ---------------------------------------------------------------- relations

namespace {

template <typename Repeated, typename T>
void fill_sorted(const Repeated& from, std::vector<T>& to) {
  to.assign(from.begin(), from.end());
  std::sort(to.begin(), to.end());
  to.erase(std::unique(to.begin(), to.end()), to.end());
}

template <typename T, typename Key>
bool contains(const std::vector<T>& sorted, const Key& key) {
  return !sorted.empty() && std::binary_search(sorted.begin(), sorted.end(), key);
}

// The author's domain as relations_drop compares it: the acct's text after the first
// '@'; nothing when there is no '@' or nothing after it.
std::optional<std::string_view> author_domain(std::string_view acct) {
  auto at = acct.find('@');
  if (at == std::string_view::npos || at + 1 >= acct.size()) return std::nullopt;
  return acct.substr(at + 1);
}

}  // namespace

std::shared_ptr<const Relations> Relations::from_reply(const sluice::v1::RelationsReply& reply) {
  auto relations = std::make_shared<Relations>();
  fill_sorted(reply.blocking(), relations->blocking);
  fill_sorted(reply.blocked_by(), relations->blocked_by);
  fill_sorted(reply.muting(), relations->muting);
  fill_sorted(reply.blocked_domains(), relations->blocked_domains);
  return relations;
}

bool relations_drop(const Relations& relations, const sluice::v1::StatusFacts& status) {
  // The relations are the viewer's own (the query's $1), so the viewer id itself
  // plays no further part: the reference has no special case for own statuses.
  const int64_t author = status.account_id_num();
  if (author == 0) return true;  // `IN ('abc', …)` fails in PostgreSQL → dropped
  for (int64_t mention : status.mention_ids_num()) {
    if (mention == 0) return true;
  }
  auto viewer_excludes = [&](int64_t id) { return contains(relations.blocking, id) || contains(relations.muting, id); };
  if (viewer_excludes(author) || contains(relations.blocked_by, author)) return true;
  for (int64_t mention : status.mention_ids_num()) {
    if (viewer_excludes(mention)) return true;
  }
  if (!relations.blocked_domains.empty()) {
    auto domain = author_domain(status.account_acct());
    if (domain && contains(relations.blocked_domains, *domain)) return true;
  }
  return false;
}

void RelationsDigest::set(uint64_t hash) {
  // Fibonacci hashing: the product's top 8 bits pick one of 256, spreading ids that
  // differ only in their low bits (consecutive accounts) over the whole digest.
  const uint64_t bit = (hash * 0x9E3779B97F4A7C15ULL) >> 56;
  bits_[bit / 64] |= uint64_t{1} << (bit % 64);
}

void RelationsDigest::add(int64_t account_id) { set(static_cast<uint64_t>(account_id)); }

void RelationsDigest::add(std::string_view domain) { set(std::hash<std::string_view>()(domain)); }

RelationsDigest RelationsDigest::of(const Relations& relations) {
  RelationsDigest digest;
  for (const auto* ids : {&relations.blocking, &relations.blocked_by, &relations.muting}) {
    for (int64_t id : *ids) digest.add(id);
  }
  for (const std::string& domain : relations.blocked_domains) digest.add(std::string_view(domain));
  return digest;
}

RelationsDigest RelationsDigest::of(const sluice::v1::StatusFacts& status) {
  RelationsDigest digest;
  digest.overlaps_all_ = status.account_id_num() == 0;
  digest.add(status.account_id_num());
  for (int64_t mention : status.mention_ids_num()) {
    digest.overlaps_all_ = digest.overlaps_all_ || mention == 0;
    digest.add(mention);
  }
  if (auto domain = author_domain(status.account_acct())) digest.add(*domain);
  return digest;
}

bool RelationsDigest::overlaps(const RelationsDigest& other) const {
  if (overlaps_all_ || other.overlaps_all_) return true;
  uint64_t shared = 0;
  for (size_t i = 0; i < bits_.size(); ++i) shared |= bits_[i] & other.bits_[i];
  return shared != 0;
}

// ---------------------------------------------------------------- JS helpers

namespace detail {
namespace {

// Canonicalize for every UTF-16 code unit, computed once with ICU's full
// uppercasing (root locale = Unicode Default Case Conversion).
const std::array<char16_t, 0x10000>& canonical_table() {
  static const auto table = [] {
    auto t = std::make_unique<std::array<char16_t, 0x10000>>();
    for (uint32_t c = 0; c < 0x10000; ++c) {
      char16_t unit = static_cast<char16_t>(c);
      (*t)[c] = unit;
      if (c >= 0xD800 && c <= 0xDFFF) continue;  // lone surrogates uppercase to themselves
      if (c < 0x80) {
        if (c >= 'a' && c <= 'z') (*t)[c] = static_cast<char16_t>(c - 'a' + 'A');
        continue;
      }
      UChar dest[8];
      UErrorCode status = U_ZERO_ERROR;
      int32_t length = u_strToUpper(dest, 8, reinterpret_cast<const UChar*>(&unit), 1, "", &status);
      if (U_FAILURE(status) || length != 1) continue;  // several code units: unchanged
      if (dest[0] < 0x80) continue;                    // non-ASCII never becomes ASCII
      (*t)[c] = static_cast<char16_t>(dest[0]);
    }
    return t;
  }();
  return *table;
}

// Decodes the well-formed UTF-8 character at `pos`; returns its length.
inline size_t decode(std::string_view s, size_t pos, uint32_t& cp) {
  auto b = static_cast<unsigned char>(s[pos]);
  if (b < 0x80) {
    cp = b;
    return 1;
  }
  if (b < 0xE0) {
    cp = ((b & 0x1Fu) << 6) | (static_cast<unsigned char>(s[pos + 1]) & 0x3Fu);
    return 2;
  }
  if (b < 0xF0) {
    cp = ((b & 0x0Fu) << 12) | ((static_cast<unsigned char>(s[pos + 1]) & 0x3Fu) << 6) |
         (static_cast<unsigned char>(s[pos + 2]) & 0x3Fu);
    return 3;
  }
  cp = ((b & 0x07u) << 18) | ((static_cast<unsigned char>(s[pos + 1]) & 0x3Fu) << 12) |
       ((static_cast<unsigned char>(s[pos + 2]) & 0x3Fu) << 6) | (static_cast<unsigned char>(s[pos + 3]) & 0x3Fu);
  return 4;
}

inline size_t encoded_length(uint32_t cp) { return cp < 0x80 ? 1 : cp < 0x800 ? 2 : cp < 0x10000 ? 3 : 4; }

inline bool is_word_byte(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '_';
}

bool is_regex_special(char c) {
  switch (c) {
    case '.': case '*': case '+': case '?': case '^': case '$': case '{': case '}':
    case '(': case ')': case '|': case '[': case ']': case '\\':
      return true;
    default:
      return false;
  }
}

std::string well_formed(std::string_view text) {
  return is_valid_utf8(text) ? std::string(text) : to_well_formed_utf8(text);
}

// The reference's source for one filter over the given keyword spellings.
template <typename KeywordAt>
std::string build_source(const sluice::v1::CustomFilter& filter, KeywordAt keyword_at) {
  std::string source;
  for (int i = 0; i < filter.keywords_size(); ++i) {
    if (i) source.push_back('|');
    std::string escaped;
    for (char c : keyword_at(i)) {
      if (is_regex_special(c)) escaped.push_back('\\');
      escaped.push_back(c);
    }
    bool whole = filter.keywords(i).whole_word();
    bool before = whole && !escaped.empty() && is_word_byte(escaped.front());
    bool after = whole && !escaped.empty() && is_word_byte(escaped.back());
    if (before) source += "\\b";
    source += escaped;
    if (after) source += "\\b";
  }
  return source;
}

struct CodeDeleter {
  void operator()(pcre2_code* code) const { pcre2_code_free(code); }
};
using CodePtr = std::unique_ptr<pcre2_code, CodeDeleter>;

// Compiles the filter over canonicalized keywords; nullptr when PCRE2 refuses it.
CodePtr compile_canonical(const sluice::v1::CustomFilter& filter, const std::vector<std::string>& canonical_keywords) {
  std::string source = build_source(filter, [&](int i) -> const std::string& { return canonical_keywords[i]; });
  int error = 0;
  PCRE2_SIZE offset = 0;
  // UTF without UCP: `\b` and `\w` stay ASCII. No CASELESS: both sides are
  // canonicalized, so a case-sensitive match is JavaScript's case-insensitive one.
  CodePtr code(pcre2_compile(reinterpret_cast<PCRE2_SPTR>(source.data()), source.size(),
                             PCRE2_UTF | PCRE2_NO_UTF_CHECK, &error, &offset, nullptr));
  if (code) pcre2_jit_compile(code.get(), PCRE2_JIT_COMPLETE);  // falls back to the interpreter
  return code;
}

struct MatchDataDeleter {
  void operator()(pcre2_match_data* data) const { pcre2_match_data_free(data); }
};

pcre2_match_data* thread_match_data() {
  thread_local std::unique_ptr<pcre2_match_data, MatchDataDeleter> data(pcre2_match_data_create(1, nullptr));
  return data.get();
}

std::optional<std::pair<size_t, size_t>> run_pcre2(const pcre2_code* code, std::string_view canonical_text) {
  pcre2_match_data* data = thread_match_data();
  if (!data) return std::nullopt;
  // The subject is well-formed by construction, so skipping the UTF check is safe.
  int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(canonical_text.data()), canonical_text.size(), 0,
                       PCRE2_NO_UTF_CHECK, data, nullptr);
  if (rc < 0) return std::nullopt;  // no match, or a resource limit: nothing reported
  const PCRE2_SIZE* ovector = pcre2_get_ovector_pointer(data);
  if (ovector[0] > ovector[1] || ovector[1] > canonical_text.size()) return std::nullopt;
  return std::make_pair(static_cast<size_t>(ovector[0]), static_cast<size_t>(ovector[1]));
}

std::optional<std::pair<size_t, size_t>> run_literal(const sluice::v1::CustomFilter& filter,
                                                     const std::vector<std::string>& canonical_keywords,
                                                     std::string_view text) {
  std::optional<std::pair<size_t, size_t>> best;
  for (int i = 0; i < filter.keywords_size(); ++i) {
    const std::string& keyword = canonical_keywords[i];
    bool whole = filter.keywords(i).whole_word();
    bool before = whole && !keyword.empty() && is_word_byte(keyword.front());
    bool after = whole && !keyword.empty() && is_word_byte(keyword.back());
    size_t limit = best ? best->first : text.size();  // an earlier keyword wins ties
    for (size_t pos = text.find(keyword); pos != std::string_view::npos && pos <= limit;
         pos = text.find(keyword, pos + 1)) {
      if (best && pos >= best->first) break;
      size_t end = pos + keyword.size();
      if (before && pos > 0 && is_word_byte(text[pos - 1])) continue;
      if (after && end < text.size() && is_word_byte(text[end])) continue;
      best = std::make_pair(pos, end);
      break;
    }
  }
  return best;
}

std::vector<std::string> canonical_keywords(const sluice::v1::CustomFilter& filter) {
  std::vector<std::string> keywords;
  keywords.reserve(filter.keywords_size());
  for (const auto& keyword : filter.keywords()) {
    keywords.push_back(js_canonical_text(well_formed(keyword.keyword()), nullptr));
  }
  return keywords;
}

}  // namespace

namespace {
// 2^15 bits (4 KiB), indexed by a multiplicative hash of three bytes.
constexpr int kTrigramIndexBits = 15;
// Past this many bytes the index would be mostly ones: the text is not indexed.
constexpr size_t kMaxIndexedBytes = 16 * 1024;

uint16_t trigram_bit(const char* at) {
  const uint32_t bytes = static_cast<uint32_t>(static_cast<unsigned char>(at[0])) |
                         static_cast<uint32_t>(static_cast<unsigned char>(at[1])) << 8 |
                         static_cast<uint32_t>(static_cast<unsigned char>(at[2])) << 16;
  return static_cast<uint16_t>((bytes * 0x9E3779B1u) >> (32 - kTrigramIndexBits));
}
}  // namespace

std::vector<uint16_t> keyword_trigrams(std::string_view canonical_keyword) {
  std::vector<uint16_t> bits;
  for (size_t i = 0; i + 3 <= canonical_keyword.size(); ++i) bits.push_back(trigram_bit(canonical_keyword.data() + i));
  std::sort(bits.begin(), bits.end());
  bits.erase(std::unique(bits.begin(), bits.end()), bits.end());
  return bits;
}

std::vector<uint16_t> keyword_probes(std::string_view canonical_keyword) {
  std::vector<uint16_t> trigrams = keyword_trigrams(canonical_keyword);
  if (trigrams.size() <= kProbesPerKeyword) return trigrams;
  // Spread over the keyword's bits rather than the first few.
  std::vector<uint16_t> spread;
  for (size_t i = 0; i < kProbesPerKeyword; ++i) {
    spread.push_back(trigrams[i * (trigrams.size() - 1) / (kProbesPerKeyword - 1)]);
  }
  return spread;
}

char16_t js_canonicalize(char16_t unit) { return canonical_table()[unit]; }

std::string js_canonical_text(std::string_view text, std::vector<uint32_t>* offsets) {
  const auto& table = canonical_table();
  std::string out;
  out.reserve(text.size());
  bool layout_changed = false;
  for (size_t pos = 0; pos < text.size();) {
    auto byte = static_cast<unsigned char>(text[pos]);
    if (byte < 0x80) {
      out.push_back(static_cast<char>(table[byte]));
      ++pos;
      continue;
    }
    uint32_t cp = 0;
    size_t length = decode(text, pos, cp);
    uint32_t mapped = cp < 0x10000 ? table[cp] : cp;
    if (encoded_length(mapped) != length) layout_changed = true;
    append_utf8(out, mapped);
    pos += length;
  }
  if (offsets) {
    offsets->clear();
    if (layout_changed) {
      offsets->reserve(out.size() + 1);
      for (size_t pos = 0; pos < text.size();) {
        uint32_t cp = 0;
        size_t length = decode(text, pos, cp);
        uint32_t mapped = cp < 0x10000 ? table[cp] : cp;
        for (size_t i = 0; i < encoded_length(mapped); ++i) offsets->push_back(static_cast<uint32_t>(pos));
        pos += length;
      }
      offsets->push_back(static_cast<uint32_t>(text.size()));
    }
  }
  return out;
}

std::string filter_regex_source(const sluice::v1::CustomFilter& filter) {
  return build_source(filter, [&](int i) -> const std::string& { return filter.keywords(i).keyword(); });
}

std::optional<std::pair<size_t, size_t>> literal_first_match(const sluice::v1::CustomFilter& filter,
                                                             std::string_view text) {
  if (text.empty() || filter.keywords_size() == 0) return std::nullopt;
  FilterSubject prepared(text);
  auto match = run_literal(filter, canonical_keywords(filter), prepared.canonical());
  if (!match) return std::nullopt;
  return prepared.to_original(*match);
}

std::optional<std::pair<size_t, size_t>> pcre2_first_match(const sluice::v1::CustomFilter& filter,
                                                           std::string_view text) {
  if (text.empty() || filter.keywords_size() == 0) return std::nullopt;
  CodePtr code = compile_canonical(filter, canonical_keywords(filter));
  if (!code) return std::nullopt;
  FilterSubject prepared(text);
  auto match = run_pcre2(code.get(), prepared.canonical());
  if (!match) return std::nullopt;
  return prepared.to_original(*match);
}

std::string js_iso_string(int64_t ms) {
  // Floor division so times before 1970 land on the right day.
  int64_t days = ms / 86400000;
  int64_t rem = ms % 86400000;
  if (rem < 0) {
    rem += 86400000;
    --days;
  }
  // civil_from_days (Howard Hinnant).
  int64_t z = days + 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t year = yoe + era * 400;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  int64_t day = doy - (153 * mp + 2) / 5 + 1;
  int64_t month = mp < 10 ? mp + 3 : mp - 9;
  if (month <= 2) ++year;
  char buffer[64];
  int hours = static_cast<int>(rem / 3600000), minutes = static_cast<int>(rem / 60000 % 60),
      seconds = static_cast<int>(rem / 1000 % 60), millis = static_cast<int>(rem % 1000);
  if (year >= 0 && year <= 9999) {
    std::snprintf(buffer, sizeof buffer, "%04lld-%02lld-%02lldT%02d:%02d:%02d.%03dZ", static_cast<long long>(year),
                  static_cast<long long>(month), static_cast<long long>(day), hours, minutes, seconds, millis);
  } else {
    std::snprintf(buffer, sizeof buffer, "%c%06lld-%02lld-%02lldT%02d:%02d:%02d.%03dZ", year < 0 ? '-' : '+',
                  static_cast<long long>(year < 0 ? -year : year), static_cast<long long>(month),
                  static_cast<long long>(day), hours, minutes, seconds, millis);
  }
  return buffer;
}

}  // namespace detail

// ---------------------------------------------------------------- filters

namespace {

// What FilterSubject::may_contain asks of each keyword of one filter: its
// detail::keyword_probes (a subset of its trigram bits rules a text out less often,
// never wrongly), held inside the filter for the usual one or two keywords. Ruling a status out then reads the
// filter and the event's index, and nothing else of the viewer's
// (docs/benchmarks.md#keyword-filters-ruled-out-before-the-regex-2026-12-05).
class KeywordProbes {
 public:
  void add(const std::vector<uint16_t>& probes) {
    bits_.insert(bits_.end(), probes.begin(), probes.end());
    counts_.push_back(static_cast<uint8_t>(probes.size()));
  }

  bool some_keyword_may_occur(const FilterSubject& subject) const {
    size_t at = 0;
    for (uint8_t count : counts_) {
      if (subject.may_contain(std::span<const uint16_t>(bits_.data() + at, count))) return true;
      at += count;
    }
    return false;
  }

 private:
  boost::container::small_vector<uint16_t, 2 * detail::kProbesPerKeyword> bits_;
  boost::container::small_vector<uint8_t, 2> counts_;
};

}  // namespace

struct CompiledFilters::Filter {
  // First: what is read for every status.
  KeywordProbes probes;
  bool has_expires_at = false;
  int64_t expires_at_ms = 0;
  detail::CodePtr code;                 // nullptr: use the literal search
  // `{"filter":{…},"keyword_matches":[` rendered once.
  std::string json_head;
  sluice::v1::CustomFilter keywords;    // only keywords and whole_word, for the literal search
  std::vector<std::string> canonical_keywords;
};

CompiledFilters::~CompiledFilters() = default;

std::shared_ptr<const CompiledFilters> CompiledFilters::compile(const sluice::v1::FiltersReply& reply) {
  std::shared_ptr<CompiledFilters> compiled(new CompiledFilters());
  compiled->filters_.reserve(reply.filters_size());
  for (const auto& source : reply.filters()) {
    Filter filter;
    std::string& head = filter.json_head;
    head = "{\"filter\":{\"id\":";
    append_js_string_literal(head, source.id());
    head += ",\"title\":";
    append_js_string_literal(head, source.title());
    head += ",\"context\":[";
    for (int i = 0; i < source.context_size(); ++i) {
      if (i) head.push_back(',');
      append_js_string_literal(head, source.context(i));
    }
    head += "],\"expires_at\":";
    if (source.has_expires_at()) {
      head += '"' + detail::js_iso_string(source.expires_at_ms()) + '"';
    } else {
      head += "null";
    }
    if (source.action() == 0) head += ",\"filter_action\":\"warn\"";
    if (source.action() == 1) head += ",\"filter_action\":\"hide\"";
    head += "},\"keyword_matches\":[";
    filter.has_expires_at = source.has_expires_at();
    filter.expires_at_ms = source.expires_at_ms();
    // The reference's cache comes from a join on keywords: a filter always has
    // one. A keyword-less filter here can only be a bug upstream; it matches nothing.
    *filter.keywords.mutable_keywords() = source.keywords();
    filter.canonical_keywords = detail::canonical_keywords(source);
    for (const auto& keyword : filter.canonical_keywords) {
      auto probes = detail::keyword_probes(keyword);
      filter.probes.add(probes);
      compiled->digest_.add(probes);
    }
    if (source.keywords_size() > 0) filter.code = detail::compile_canonical(source, filter.canonical_keywords);
    compiled->filters_.push_back(std::move(filter));
  }
  return compiled;
}

void KeywordDigest::add(const std::vector<uint16_t>& probes) {
  if (every_subject_) return;
  if (keywords_ == kKeywords) {
    every_subject_ = true;
    return;
  }
  std::copy(probes.begin(), probes.end(), bits_.begin() + keywords_ * detail::kProbesPerKeyword);
  counts_[keywords_++] = static_cast<uint8_t>(probes.size());
}

bool KeywordDigest::may_match(const FilterSubject& subject) const {
  if (every_subject_) return true;
  for (size_t k = 0; k < keywords_; ++k) {
    if (subject.may_contain(std::span<const uint16_t>(bits_.data() + k * detail::kProbesPerKeyword, counts_[k]))) {
      return true;
    }
  }
  return false;
}

FilterSubject::FilterSubject(std::string_view filter_text) : original_(detail::well_formed(filter_text)) {
  canonical_ = detail::js_canonical_text(original_, &offsets_);
  // An empty text matches nothing (evaluate), so it needs no index either.
  if (canonical_.empty() || canonical_.size() > detail::kMaxIndexedBytes) return;
  trigrams_.assign((size_t{1} << detail::kTrigramIndexBits) / 64, 0);
  for (size_t i = 0; i + 3 <= canonical_.size(); ++i) {
    const uint16_t bit = detail::trigram_bit(canonical_.data() + i);
    trigrams_[bit >> 6] |= uint64_t{1} << (bit & 63);
  }
}

bool FilterSubject::may_contain(std::span<const uint16_t> trigrams) const {
  if (trigrams_.empty()) return true;
  for (uint16_t bit : trigrams) {
    if (!(trigrams_[bit >> 6] >> (bit & 63) & 1)) return false;
  }
  return true;
}

std::string CompiledFilters::evaluate(const FilterSubject& subject, int64_t now_ms) const {
  if (subject.empty()) return "[]";
  std::string out = "[";
  for (const Filter& filter : filters_) {
    if (filter.has_expires_at && filter.expires_at_ms < now_ms) continue;
    // A filter without keywords has no probe, so it is never tried.
    if (!filter.probes.some_keyword_may_occur(subject)) continue;
    auto match = filter.code ? detail::run_pcre2(filter.code.get(), subject.canonical())
                             : detail::run_literal(filter.keywords, filter.canonical_keywords, subject.canonical());
    if (!match) continue;
    auto [start, end] = subject.to_original(*match);
    if (out.size() > 1) out.push_back(',');
    out += filter.json_head;
    append_js_string_literal(out, std::string_view(subject.original()).substr(start, end - start));
    out += "],\"status_matches\":null}";
  }
  out.push_back(']');
  return out;
}

}  // namespace sluice::gateway
