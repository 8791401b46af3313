#include "common/js_json.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <optional>
#include <string_view>
#include <utility>
#include <vector>

namespace sluice {
namespace {

using json = nlohmann::ordered_json;

constexpr std::string_view kReplacementCharacter = "\xEF\xBF\xBD";  // U+FFFD

// One decoding step of the WHATWG UTF-8 decoder: either a well-formed sequence,
// or the maximal ill-formed subpart to replace with one U+FFFD.
struct Utf8Step {
  std::size_t length;
  bool valid;
};

Utf8Step utf8_step(std::string_view text, std::size_t pos) {
  const auto lead = static_cast<unsigned char>(text[pos]);
  if (lead < 0x80) return {1, true};
  std::size_t needed = 0;
  unsigned char lower = 0x80;
  unsigned char upper = 0xBF;
  if (lead >= 0xC2 && lead <= 0xDF) {
    needed = 1;
  } else if (lead >= 0xE0 && lead <= 0xEF) {
    needed = 2;
    if (lead == 0xE0) lower = 0xA0;  // no overlongs
    if (lead == 0xED) upper = 0x9F;  // no surrogates
  } else if (lead >= 0xF0 && lead <= 0xF4) {
    needed = 3;
    if (lead == 0xF0) lower = 0x90;  // no overlongs
    if (lead == 0xF4) upper = 0x8F;  // nothing above U+10FFFF
  } else {
    return {1, false};
  }
  std::size_t length = 1;
  for (std::size_t i = 0; i < needed; ++i) {
    if (pos + length >= text.size()) return {length, false};
    const auto byte = static_cast<unsigned char>(text[pos + length]);
    if (byte < lower || byte > upper) return {length, false};
    lower = 0x80;
    upper = 0xBF;
    ++length;
  }
  return {length, true};
}

// ---- eight bytes at a time (statuses are mostly ASCII that needs no escape) ----

constexpr std::uint64_t kEveryByte = 0x0101010101010101ULL;
constexpr std::uint64_t kHighBits = 0x8080808080808080ULL;

std::uint64_t load_word(const char* bytes) {
  std::uint64_t word;
  std::memcpy(&word, bytes, sizeof word);
  return word;
}

// Non-zero if some byte of `word` is below `limit` (limit <= 128).
constexpr std::uint64_t has_byte_below(std::uint64_t word, unsigned limit) {
  return (word - kEveryByte * limit) & ~word & kHighBits;
}

constexpr std::uint64_t has_byte(std::uint64_t word, unsigned char byte) {
  return has_byte_below(word ^ (kEveryByte * byte), 1);
}

// True when all eight bytes are ASCII that a JSON string literal keeps as is.
bool is_plain_word(std::uint64_t word) {
  return ((word & kHighBits) | has_byte_below(word, 0x20) | has_byte(word, '"') | has_byte(word, '\\')) == 0;
}

// What each byte needs inside a JSON string literal (docs/protocol.md#payload-serialisation).
enum ByteClass : unsigned char { kPlain = 0, kEscape = 1, kNonAscii = 2 };

constexpr std::array<unsigned char, 256> make_byte_classes() {
  std::array<unsigned char, 256> classes{};
  for (int c = 0; c < 0x20; ++c) classes[c] = kEscape;
  classes['"'] = kEscape;
  classes['\\'] = kEscape;
  for (int c = 0x80; c < 0x100; ++c) classes[c] = kNonAscii;
  return classes;
}
constexpr auto kByteClasses = make_byte_classes();

void append_escape(std::string& out, unsigned char c) {
  static constexpr char kHex[] = "0123456789abcdef";
  switch (c) {
    case '"': out.append("\\\""); return;
    case '\\': out.append("\\\\"); return;
    case '\b': out.append("\\b"); return;
    case '\f': out.append("\\f"); return;
    case '\n': out.append("\\n"); return;
    case '\r': out.append("\\r"); return;
    case '\t': out.append("\\t"); return;
    default: {
      const char escaped[6] = {'\\', 'u', '0', '0', kHex[c >> 4], kHex[c & 0xF]};
      out.append(escaped, sizeof escaped);
    }
  }
}

// Number.prototype.toString from the shortest round-trip digits (ECMA-262
// Number::toString): `digits` without a point, value = 0.digits × 10^point.
void append_digits_js_style(std::string& out, std::string_view digits, int point) {
  const int k = static_cast<int>(digits.size());
  if (k <= point && point <= 21) {
    out.append(digits);
    out.append(static_cast<std::size_t>(point - k), '0');
  } else if (0 < point && point <= 21) {
    out.append(digits.substr(0, static_cast<std::size_t>(point)));
    out.push_back('.');
    out.append(digits.substr(static_cast<std::size_t>(point)));
  } else if (-6 < point && point <= 0) {
    out.append("0.");
    out.append(static_cast<std::size_t>(-point), '0');
    out.append(digits);
  } else {
    out.push_back(digits[0]);
    if (k > 1) {
      out.push_back('.');
      out.append(digits.substr(1));
    }
    const int exponent = point - 1;
    out.append(exponent < 0 ? "e-" : "e+");
    char buffer[8];
    const auto result = std::to_chars(buffer, buffer + sizeof buffer, exponent < 0 ? -exponent : exponent);
    out.append(buffer, result.ptr);
  }
}

void append_value(std::string& out, const json& value);

// The key's array index if it is one: "0" to "4294967294" written without leading zeros.
std::optional<std::uint32_t> array_index(std::string_view key) {
  if (key.empty() || key.size() > 10 || (key.size() > 1 && key[0] == '0')) return std::nullopt;
  std::uint64_t index = 0;
  for (char c : key) {
    if (c < '0' || c > '9') return std::nullopt;
    index = index * 10 + static_cast<std::uint64_t>(c - '0');
  }
  if (index > 4294967294ULL) return std::nullopt;
  return static_cast<std::uint32_t>(index);
}

void append_member(std::string& out, bool& first, const std::string& key, const json& member) {
  if (!first) out.push_back(',');
  first = false;
  append_js_string_literal(out, key);
  out.push_back(':');
  append_value(out, member);
}

// docs/protocol.md#payload-serialisation: a JavaScript object lists its array-index keys
// first, in ascending order, and then the other keys in insertion order (ECMA-262
// OrdinaryOwnPropertyKeys), so {"b":1,"2":2} comes out as {"2":2,"b":1}.
void append_object(std::string& out, const json& value) {
  const auto& members = value.get_ref<const json::object_t&>();
  std::vector<std::pair<std::uint32_t, const json::object_t::value_type*>> indexed;
  for (const auto& member : members) {
    const char lead = member.first.empty() ? '\0' : member.first[0];
    if (lead < '0' || lead > '9') continue;
    if (auto index = array_index(member.first)) indexed.emplace_back(*index, &member);
  }
  std::sort(indexed.begin(), indexed.end(), [](const auto& a, const auto& b) { return a.first < b.first; });
  out.push_back('{');
  bool first = true;
  for (const auto& [index, member] : indexed) append_member(out, first, member->first, member->second);
  for (const auto& member : members) {
    if (!indexed.empty() && array_index(member.first)) continue;
    append_member(out, first, member.first, member.second);
  }
  out.push_back('}');
}

void append_array(std::string& out, const json& value) {
  out.push_back('[');
  bool first = true;
  for (const auto& element : value.get_ref<const json::array_t&>()) {
    if (!first) out.push_back(',');
    first = false;
    append_value(out, element);
  }
  out.push_back(']');
}

void append_value(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::object: append_object(out, value); return;
    case json::value_t::array: append_array(out, value); return;
    case json::value_t::string: append_js_string_literal(out, value.get_ref<const std::string&>()); return;
    case json::value_t::boolean: out.append(value.get<bool>() ? "true" : "false"); return;
    // docs/protocol.md#payload-serialisation: every JSON number is an IEEE double in JS, so integers above 2^53
    // are rounded exactly as JSON.parse would round them.
    case json::value_t::number_integer: append_js_number(out, static_cast<double>(value.get<std::int64_t>())); return;
    case json::value_t::number_unsigned: append_js_number(out, static_cast<double>(value.get<std::uint64_t>())); return;
    case json::value_t::number_float: append_js_number(out, value.get<double>()); return;
    // null, and the C++-only discarded/binary kinds, which JSON.stringify cannot meet.
    default: out.append("null"); return;
  }
}

double number_value(const json& value) {
  switch (value.type()) {
    case json::value_t::number_integer: return static_cast<double>(value.get<std::int64_t>());
    case json::value_t::number_unsigned: return static_cast<double>(value.get<std::uint64_t>());
    default: return value.get<double>();
  }
}

void append_js_to_string(std::string& out, const json& value);

// Array.prototype.join(','): null elements become empty (String(array)).
void append_joined(std::string& out, const json& array) {
  bool first = true;
  for (const auto& element : array.get_ref<const json::array_t&>()) {
    if (!first) out.push_back(',');
    first = false;
    if (!element.is_null()) append_js_to_string(out, element);
  }
}

void append_js_to_string(std::string& out, const json& value) {
  switch (value.type()) {
    case json::value_t::string: out.append(value.get_ref<const std::string&>()); return;
    case json::value_t::boolean: out.append(value.get<bool>() ? "true" : "false"); return;
    case json::value_t::object: out.append("[object Object]"); return;
    case json::value_t::array: append_joined(out, value); return;
    case json::value_t::number_integer:
    case json::value_t::number_unsigned:
    case json::value_t::number_float: {
      const double number = number_value(value);
      if (std::isnan(number)) {
        out.append("NaN");
      } else if (std::isinf(number)) {
        out.append(number < 0 ? "-Infinity" : "Infinity");
      } else {
        append_js_number(out, number);
      }
      return;
    }
    default: out.append("null"); return;
  }
}

}  // namespace

std::size_t utf8_sequence_length(std::string_view text, std::size_t pos) {
  if (pos >= text.size()) return 0;
  const Utf8Step step = utf8_step(text, pos);
  return step.valid ? step.length : 0;
}

bool is_valid_utf8(std::string_view text) {
  std::size_t pos = 0;
  while (pos < text.size()) {
    while (pos + 8 <= text.size() && (load_word(text.data() + pos) & kHighBits) == 0) pos += 8;
    if (pos >= text.size()) break;
    if (static_cast<unsigned char>(text[pos]) < 0x80) {
      ++pos;
      continue;
    }
    const Utf8Step step = utf8_step(text, pos);
    if (!step.valid) return false;
    pos += step.length;
  }
  return true;
}

std::string to_well_formed_utf8(std::string_view text) {
  std::string out;
  out.reserve(text.size() + 16);
  std::size_t pos = 0;
  while (pos < text.size()) {
    const Utf8Step step = utf8_step(text, pos);
    if (step.valid) {
      out.append(text.substr(pos, step.length));
    } else {
      out.append(kReplacementCharacter);
    }
    pos += step.length;
  }
  return out;
}

void append_js_string_literal(std::string& out, std::string_view utf8) {
  out.reserve(out.size() + utf8.size() + 2);
  out.push_back('"');
  std::size_t run_start = 0;  // start of bytes copied verbatim in one append
  std::size_t pos = 0;
  while (pos < utf8.size()) {
    while (pos + 8 <= utf8.size() && is_plain_word(load_word(utf8.data() + pos))) pos += 8;
    if (pos >= utf8.size()) break;
    const auto c = static_cast<unsigned char>(utf8[pos]);
    const unsigned char byte_class = kByteClasses[c];
    if (byte_class == kPlain) {
      ++pos;
      continue;
    }
    if (byte_class == kNonAscii) {
      const Utf8Step step = utf8_step(utf8, pos);
      if (step.valid) {
        pos += step.length;
        continue;
      }
      out.append(utf8.substr(run_start, pos - run_start));
      out.append(kReplacementCharacter);
      pos += step.length;
      run_start = pos;
      continue;
    }
    out.append(utf8.substr(run_start, pos - run_start));
    append_escape(out, c);
    ++pos;
    run_start = pos;
  }
  out.append(utf8.substr(run_start));
  out.push_back('"');
}

std::size_t find_json_string_special(std::string_view text, std::size_t pos) {
  while (pos + 8 <= text.size()) {
    const std::uint64_t word = load_word(text.data() + pos);
    if ((has_byte_below(word, 0x20) | has_byte(word, '"') | has_byte(word, '\\')) != 0) break;
    pos += 8;
  }
  while (pos < text.size()) {
    const auto c = static_cast<unsigned char>(text[pos]);
    if (c < 0x20 || c == '"' || c == '\\') return pos;
    ++pos;
  }
  return pos;
}

void append_js_number(std::string& out, double value) {
  if (!std::isfinite(value)) {
    out.append("null");
    return;
  }
  if (value == 0) {  // both zeros print as 0
    out.push_back('0');
    return;
  }
  if (value < 0) {
    out.push_back('-');
    value = -value;
  }
  // Shortest round-trip digits in the form d[.ddd]e±x.
  char buffer[32];
  const auto result = std::to_chars(buffer, buffer + sizeof buffer, value, std::chars_format::scientific);
  const std::string_view text(buffer, static_cast<std::size_t>(result.ptr - buffer));
  const std::size_t e = text.find('e');
  char digits[24];
  std::size_t count = 0;
  for (std::size_t i = 0; i < e; ++i) {
    if (text[i] != '.') digits[count++] = text[i];
  }
  int exponent = 0;
  const char* exponent_begin = text.data() + e + 1;
  if (*exponent_begin == '+') ++exponent_begin;
  std::from_chars(exponent_begin, text.data() + text.size(), exponent);
  append_digits_js_style(out, std::string_view(digits, count), exponent + 1);
}

void append_js_stringify(std::string& out, const nlohmann::ordered_json& value) { append_value(out, value); }

std::string js_stringify(const nlohmann::ordered_json& value) {
  std::string out;
  out.reserve(256);
  append_value(out, value);
  return out;
}

std::string js_to_string(const nlohmann::ordered_json& value) {
  std::string out;
  append_js_to_string(out, value);
  return out;
}

bool js_truthy(const nlohmann::ordered_json& value) {
  switch (value.type()) {
    case json::value_t::null:
    case json::value_t::discarded: return false;
    case json::value_t::boolean: return value.get<bool>();
    case json::value_t::string: return !value.get_ref<const std::string&>().empty();
    case json::value_t::number_integer: return value.get<std::int64_t>() != 0;
    case json::value_t::number_unsigned: return value.get<std::uint64_t>() != 0;
    case json::value_t::number_float: {
      const double number = value.get<double>();
      return number != 0 && !std::isnan(number);
    }
    default: return true;
  }
}

namespace {

// Index of the quote that closes the string whose contents start at `pos`, or
// npos. memchr finds quote candidates; one preceded by an odd run of
// backslashes is escaped.
std::size_t closing_quote(std::string_view text, std::size_t pos) {
  while (pos < text.size()) {
    const void* found = std::memchr(text.data() + pos, '"', text.size() - pos);
    if (found == nullptr) return std::string_view::npos;
    const std::size_t quote = static_cast<std::size_t>(static_cast<const char*>(found) - text.data());
    std::size_t backslashes = 0;
    while (quote - backslashes > pos && text[quote - backslashes - 1] == '\\') ++backslashes;
    if (backslashes % 2 == 0) return quote;
    pos = quote + 1;
  }
  return std::string_view::npos;
}

}  // namespace

bool json_nesting_exceeds(std::string_view text, std::size_t max_depth) {
  std::size_t depth = 0;
  for (std::size_t pos = 0; pos < text.size(); ++pos) {
    switch (text[pos]) {
      case '"':
        pos = closing_quote(text, pos + 1);
        if (pos == std::string_view::npos) return false;
        break;
      case '[':
      case '{':
        if (++depth > max_depth) return true;
        break;
      case ']':
      case '}':
        if (depth > 0) --depth;
        break;
      default: break;
    }
  }
  return false;
}

}  // namespace sluice
