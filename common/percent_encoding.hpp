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
  // node's querystring: when the decoded bytes are not UTF-8, decodeURIComponent throws and
  // querystring falls back to Buffer#toString, which turns each ill-formed part into U+FFFD.
  bool replace_ill_formed_utf8 = false;
};

std::string percent_decode(std::string_view text, PercentDecoding how = {});

}  // namespace sluice
