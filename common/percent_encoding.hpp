#pragma once
// Percent-decoding as the reference's libraries do it: node's querystring for
// request query strings, decodeURIComponent / decodeURI for connection URLs.
// Malformed escapes stay as written.
#include <string>
#include <string_view>

namespace sluice {

struct PercentDecoding {
  bool plus_is_space = false;   // application/x-www-form-urlencoded ('+' is a space)
  bool keep_reserved = false;   // decodeURI: escapes of ;/?:@&=+$,# stay escaped
  bool raw_if_not_utf8 = false;  // node's querystring: keep the raw text when the bytes are not UTF-8
};

std::string percent_decode(std::string_view text, PercentDecoding how = {});

}  // namespace sluice
