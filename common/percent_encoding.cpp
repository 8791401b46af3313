#include "common/percent_encoding.hpp"

#include "common/js_json.hpp"

namespace sluice {
namespace {

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

}  // namespace

std::string percent_decode(std::string_view text, PercentDecoding how) {
  static constexpr std::string_view kReserved = ";/?:@&=+$,#";
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '+' && how.plus_is_space) {
      out += ' ';
    } else if (c == '%' && i + 2 < text.size() && hex_value(text[i + 1]) >= 0 && hex_value(text[i + 2]) >= 0) {
      char decoded = static_cast<char>(hex_value(text[i + 1]) * 16 + hex_value(text[i + 2]));
      if (how.keep_reserved && kReserved.find(decoded) != std::string_view::npos) {
        out.append(text.substr(i, 3));
      } else {
        out += decoded;
      }
      i += 2;
    } else {
      out += c;
    }
  }
  if (how.replace_ill_formed_utf8 && !is_valid_utf8(out)) return to_well_formed_utf8(out);
  return out;
}

}  // namespace sluice
