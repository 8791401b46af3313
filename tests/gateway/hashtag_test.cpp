// Hashtag normalisation (docs/protocol.md#hashtag-normalisation): NFKC, full lowercasing, ASCII folding,
// then only letters, numbers, '_', U+00B7 and U+200C.
#include "gateway/hashtag.hpp"

#include <string>

#include <gtest/gtest.h>

namespace sluice {
namespace {

TEST(NormalizeHashtag, ContractExamples) {
  EXPECT_EQ(normalize_hashtag("#Café"), "cafe");
  EXPECT_EQ(normalize_hashtag("\xEF\xBC\xB4\xEF\xBC\xA5\xEF\xBC\xB3\xEF\xBC\xB4"), "test");  // ＴＥＳＴ
  EXPECT_EQ(normalize_hashtag("Straße"), "straße");
  EXPECT_EQ(normalize_hashtag("İstanbul"), "istanbul");  // i + U+0307, the mark is dropped
  EXPECT_EQ(normalize_hashtag("foo-bar"), "foobar");
  EXPECT_EQ(normalize_hashtag("#foo"), "foo");
}

TEST(NormalizeHashtag, OtherScriptsAreKept) {
  EXPECT_EQ(normalize_hashtag("日本語"), "日本語");
  EXPECT_EQ(normalize_hashtag("#한국어"), "한국어");
  EXPECT_EQ(normalize_hashtag("Москва"), "москва");
  EXPECT_EQ(normalize_hashtag("عربي٣"), "عربي٣");  // Arabic-Indic digit is \p{N}
  EXPECT_EQ(normalize_hashtag("\xF0\xA0\x80\x80"), "\xF0\xA0\x80\x80");  // U+20000, outside the BMP
}

TEST(NormalizeHashtag, EmptyResultIsAllowed) {
  EXPECT_EQ(normalize_hashtag(""), "");
  EXPECT_EQ(normalize_hashtag("###"), "");
  EXPECT_EQ(normalize_hashtag("-- !? \xF0\x9F\x98\x80"), "");  // punctuation, space, emoji
}

TEST(NormalizeHashtag, KeepsUnderscoreMiddleDotAndZwnj) {
  EXPECT_EQ(normalize_hashtag("Snake_Case"), "snake_case");
  EXPECT_EQ(normalize_hashtag("l\xC2\xB7l"), "l\xC2\xB7l");                     // U+00B7
  EXPECT_EQ(normalize_hashtag("a\xE2\x80\x8C" "b"), "a\xE2\x80\x8C" "b");        // ZWNJ kept
  EXPECT_EQ(normalize_hashtag("a\xE2\x80\x8D" "b"), "ab");                       // ZWJ dropped
}

TEST(NormalizeHashtag, NfkcComesFirst) {
  EXPECT_EQ(normalize_hashtag("\xEF\xAC\x81" "sh"), "fish");                    // ﬁ ligature
  EXPECT_EQ(normalize_hashtag("\xE2\x91\xA0"), "1");                            // ①
  EXPECT_EQ(normalize_hashtag("\xE2\x85\xAB"), "xii");                          // Ⅻ
  EXPECT_EQ(normalize_hashtag("\xC2\xBD"), "12");                               // ½ → 1⁄2, slash dropped
  EXPECT_EQ(normalize_hashtag("\xF0\x9D\x90\x80"), "a");                        // 𝐀 (U+1D400)
  EXPECT_EQ(normalize_hashtag("\xEF\xBC\x83\xEF\xBD\x86\xEF\xBD\x8F\xEF\xBD\x8F"), "foo");  // ＃ｆｏｏ
  EXPECT_EQ(normalize_hashtag("cafe\xCC\x81"), "cafe");                         // e + U+0301 composes, then folds
}

TEST(NormalizeHashtag, FoldingAppliesAfterCompatibilityDecomposition) {
  EXPECT_EQ(normalize_hashtag("\xC7\x85"), "dz");      // ǅ → Dž → dž → dz
  EXPECT_EQ(normalize_hashtag("\xC5\xBF"), "s");       // ſ: NFKC already gives s
  // ŉ decomposes to U+02BC (a modifier letter, kept) + n before the table is
  // consulted, so its table entry never applies.
  EXPECT_EQ(normalize_hashtag("\xC5\x89"), "\xCA\xBCn");
}

TEST(NormalizeHashtag, FoldingTable) {
  EXPECT_EQ(normalize_hashtag("ÀÁÂÃÄÅàáâãäå"), "aaaaaaaaaaaa");
  EXPECT_EQ(normalize_hashtag("ÇçĆćĈĉĊċČč"), "cccccccccc");
  EXPECT_EQ(normalize_hashtag("ÐðĎďĐđ"), "dddddd");
  EXPECT_EQ(normalize_hashtag("ĸ"), "k");
  EXPECT_EQ(normalize_hashtag("ı"), "i");
  EXPECT_EQ(normalize_hashtag("Łł"), "ll");
  EXPECT_EQ(normalize_hashtag("ŀ"), "l\xC2\xB7");  // NFKC: l + U+00B7, and the middle dot is kept
  EXPECT_EQ(normalize_hashtag("ØøŒ"), "ooœ");  // Œ/œ are not in the table
  EXPECT_EQ(normalize_hashtag("ÆÞŊ"), "æþn");  // Ŋ/ŋ fold to n; Æ, Þ stay letters
  EXPECT_EQ(normalize_hashtag("ŸÿŶŷÝý"), "yyyyyy");
  EXPECT_EQ(normalize_hashtag("ŹźŻżŽž"), "zzzzzz");
  EXPECT_EQ(normalize_hashtag("ŦŧŢţŤť"), "tttttt");
}

TEST(NormalizeHashtag, FullLowercasing) {
  EXPECT_EQ(normalize_hashtag("ΟΔΟΣ"), "οδος");  // final sigma, as JS toLowerCase
  EXPECT_EQ(normalize_hashtag("ΣΑΣ"), "σας");
  EXPECT_EQ(normalize_hashtag("ẞ"), "ß");
  EXPECT_EQ(normalize_hashtag("I"), "i");  // root locale, not Turkish
  EXPECT_EQ(normalize_hashtag("\xF0\x90\x90\x80"), "\xF0\x90\x90\xA8");  // Deseret 𐐀 → 𐐨
}

TEST(NormalizeHashtag, CombiningMarksAreDropped) {
  EXPECT_EQ(normalize_hashtag("q\xCC\x83"), "q");  // q + U+0303 has no precomposed form
}

TEST(NormalizeHashtag, InvalidUtf8IsDroppedWithoutCrashing) {
  EXPECT_EQ(normalize_hashtag("caf\xFF"), "caf");
  EXPECT_EQ(normalize_hashtag("\xC3"), "");
  EXPECT_EQ(normalize_hashtag("a\xED\xA0\x80" "b"), "ab");  // encoded surrogate
  EXPECT_EQ(normalize_hashtag(std::string_view("a\0b", 3)), "ab");
}

TEST(NormalizeHashtag, LongTagsHaveNoLimit) {
  const std::string tag(100'000, 'A');
  EXPECT_EQ(normalize_hashtag(tag), std::string(100'000, 'a'));
}

}  // namespace
}  // namespace sluice
