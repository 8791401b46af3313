#pragma once
// Hashtag names as the streaming server turns the `tag` parameter into a Redis
// channel (docs/protocol.md#hashtag-normalisation), matching Rails' HashtagNormalizer so both sides meet.
#include <string>
#include <string_view>

namespace sluice {

// NFKC, full lowercasing (JS toLowerCase, root locale), the ASCII-folding table of
// docs/protocol.md#hashtag-normalisation, then only \p{L}, \p{N}, '_', U+00B7 and U+200C are kept. Never fails:
// the result may be empty (a legal, silent channel). Ill-formed UTF-8 is decoded
// the way Node decodes a query string's bytes, each ill-formed sequence becoming
// U+FFFD, which step 4 then removes (so "caf\xFF" → "caf").
std::string normalize_hashtag(std::string_view utf8);

}  // namespace sluice
