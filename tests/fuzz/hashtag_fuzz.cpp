// Any `tag` parameter: normalize_hashtag never crashes, returns valid UTF-8, and
// keeps no ASCII other than [a-z0-9_] (docs/protocol.md#hashtag-normalisation step 4 after lowercasing).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "gateway/hashtag.hpp"
#include "common/js_json.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string tag = sluice::normalize_hashtag(std::string_view(reinterpret_cast<const char*>(data), size));
  if (!sluice::is_valid_utf8(tag)) std::abort();
  for (const char c : tag) {
    const bool ascii = static_cast<unsigned char>(c) < 0x80;
    if (ascii && !((c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '_')) std::abort();
  }
  return 0;
}
