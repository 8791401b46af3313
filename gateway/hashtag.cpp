#include "gateway/hashtag.hpp"

#include <array>

#include <unicode/locid.h>
#include <unicode/normalizer2.h>
#include <unicode/uchar.h>
#include <unicode/unistr.h>
#include <unicode/utf16.h>

namespace sluice {
namespace {

// docs/protocol.md#hashtag-normalisation step 3: each character of kFoldFrom becomes the character at the same
// index of kFoldTo. The table (verbatim from docs/protocol.md) covers U+00C0–U+017F.
constexpr std::u16string_view kFoldFrom =
    u"ÀÁÂÃÄÅàáâãäåĀāĂăĄąÇçĆćĈĉĊċČčÐðĎďĐđÈÉÊËèéêëĒēĔĕĖėĘęĚěĜĝĞğĠġĢģĤĥĦħÌÍÎÏìíîïĨĩĪīĬĭĮįİıĴĵĶķĸĹĺĻļĽľĿŀŁłÑñŃńŅņŇňŉŊŋÒÓÔÕÖØòóôõöøŌōŎŏŐőŔŕŖŗŘřŚśŜŝŞşŠšſŢţŤťŦŧÙÚÛÜùúûüŨũŪūŬŭŮůŰűŲųŴŵÝýÿŶŷŸŹźŻżŽž";
constexpr std::u16string_view kFoldTo =
    u"AAAAAAaaaaaaAaAaAaCcCcCcCcCcDdDdDdEEEEeeeeEeEeEeEeEeGgGgGgGgHhHhIIIIiiiiIiIiIiIiIiJjKkkLlLlLlLlLlNnNnNnNnnNnOOOOOOooooooOoOoOoRrRrRrSsSsSsSssTtTtTtUUUUuuuuUuUuUuUuUuUuWwYyyYyYZzZzZz";
static_assert(kFoldFrom.size() == kFoldTo.size());

constexpr char16_t kFoldFirst = 0x00C0;
constexpr char16_t kFoldLast = 0x017F;

using FoldTable = std::array<char16_t, kFoldLast - kFoldFirst + 1>;

constexpr FoldTable make_fold_table() {
  FoldTable table{};
  for (std::size_t i = 0; i < kFoldFrom.size(); ++i) table[kFoldFrom[i] - kFoldFirst] = kFoldTo[i];
  return table;
}
constexpr FoldTable kFoldTable = make_fold_table();

char16_t ascii_fold(char16_t c) {
  if (c < kFoldFirst || c > kFoldLast) return c;
  const char16_t folded = kFoldTable[c - kFoldFirst];
  return folded != 0 ? folded : c;
}

// docs/protocol.md#hashtag-normalisation step 4: what a hashtag may contain.
bool is_hashtag_code_point(UChar32 c) {
  if (c == u'_' || c == 0x00B7 || c == 0x200C) return true;
  return (U_GET_GC_MASK(c) & (U_GC_L_MASK | U_GC_N_MASK)) != 0;
}

icu::UnicodeString nfkc(const icu::UnicodeString& text) {
  UErrorCode status = U_ZERO_ERROR;
  const icu::Normalizer2* normalizer = icu::Normalizer2::getNFKCInstance(status);
  if (U_FAILURE(status)) return text;  // ICU data missing: cannot happen with a linked libicudata
  icu::UnicodeString normalized = normalizer->normalize(text, status);
  return U_FAILURE(status) ? text : normalized;
}

// Steps 3 and 4 in one pass over the lowercased text.
icu::UnicodeString fold_and_filter(const icu::UnicodeString& text) {
  icu::UnicodeString kept;
  const char16_t* units = text.getBuffer();
  const int32_t length = text.length();
  int32_t i = 0;
  while (i < length) {
    UChar32 c;
    U16_NEXT(units, i, length, c);
    if (c <= 0xFFFF) c = ascii_fold(static_cast<char16_t>(c));
    if (is_hashtag_code_point(c)) kept.append(c);
  }
  return kept;
}

}  // namespace

std::string normalize_hashtag(std::string_view utf8) {
  // ICU lengths are int32_t; a tag this long cannot pass an HTTP server anyway.
  constexpr std::size_t kMaxBytes = 0x7FFFFFFF;
  if (utf8.size() > kMaxBytes) utf8 = utf8.substr(0, kMaxBytes);
  // fromUTF8 turns ill-formed sequences into U+FFFD, which step 4 drops.
  const icu::UnicodeString decoded =
      icu::UnicodeString::fromUTF8(icu::StringPiece(utf8.data(), static_cast<int32_t>(utf8.size())));
  icu::UnicodeString lowered = nfkc(decoded);
  lowered.toLower(icu::Locale::getRoot());  // full mapping: İ → i + U+0307, final sigma
  std::string out;
  fold_and_filter(lowered).toUTF8String(out);
  return out;
}

}  // namespace sluice
