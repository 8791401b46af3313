#include "broker/message_scan.hpp"

#include <charconv>
#include <cmath>
#include <cstddef>
#include <cstdint>
#include <system_error>
#include <vector>

#include "common/js_json.hpp"

namespace sluice {
namespace {

// Well below the full parse's 512: what is deeper than Rails ever nests goes the full way.
constexpr int kMaxDepth = 64;
// Keys of one object are checked for repeats pairwise; larger objects go the full way.
constexpr std::size_t kMaxKeysPerObject = 128;
// Integers of up to 15 digits are exact doubles, which JavaScript prints as written.
constexpr std::size_t kExactIntegerDigits = 15;

bool is_json_whitespace(char c) { return c == ' ' || c == '\t' || c == '\n' || c == '\r'; }

bool is_digit(char c) { return c >= '0' && c <= '9'; }

int hex_value(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  if (c >= 'a' && c <= 'f') return c - 'a' + 10;
  if (c >= 'A' && c <= 'F') return c - 'A' + 10;
  return -1;
}

// One pass over a message already known to be valid UTF-8. Every method returns false
// for "not the ordinary case" (invalid JSON included): the caller then parses fully.
class Scanner {
 public:
  explicit Scanner(std::string_view text) : text_(text) { keys_.reserve(64); }

  bool message(ScannedMessage& out) {
    skip_whitespace();
    if (!consume('{')) return false;
    bool have_event = false;
    bool have_payload = false;
    std::string ignored;
    const bool members_read = members('}', nullptr, [&] {
      std::string_view key;
      if (!plain_key(key)) return false;
      skip_whitespace();
      if (!consume(':')) return false;
      skip_whitespace();
      if (key == "event") {
        if (have_event || !string_value(out.event) || out.event.empty()) return false;
        have_event = true;
        return true;
      }
      if (key == "payload") {
        if (have_payload || !payload(out.payload)) return false;
        have_payload = true;
        return true;
      }
      ignored.clear();
      return value(ignored);
    });
    if (!members_read) return false;
    skip_whitespace();
    return have_event && have_payload && pos_ == text_.size();
  }

 private:
  // A truthy payload: a non-empty string (sent raw) or an object or array (stringified).
  bool payload(std::string& out) {
    if (peek() == '"') return string_value(out) && !out.empty();
    if (peek() != '{' && peek() != '[') return false;
    out.reserve(text_.size());
    return value(out);
  }

  // The comma-separated members of an object or array, the opening bracket already read,
  // through `close`. `member` reads one from its first character; `out`, if given, gets
  // the commas between members.
  template <class ReadMember>
  bool members(char close, std::string* out, ReadMember member) {
    skip_whitespace();
    if (consume(close)) return true;
    for (;;) {
      if (!member()) return false;
      skip_whitespace();
      if (consume(close)) return true;
      if (!consume(',')) return false;
      if (out) out->push_back(',');
      skip_whitespace();
    }
  }

  bool value(std::string& out) {
    switch (peek()) {
      case '{': return object(out);
      case '[': return array(out);
      case '"': return string_literal(out);
      case 't': return literal("true", out);
      case 'f': return literal("false", out);
      case 'n': return literal("null", out);
      default: return number(out);
    }
  }

  bool object(std::string& out) {
    if (++depth_ > kMaxDepth) return false;
    ++pos_;  // '{'
    out.push_back('{');
    const std::size_t first_key = keys_.size();
    const bool members_read = members('}', &out, [&] {
      std::string_view key;
      if (!plain_key(key) || !unique_key(key, first_key)) return false;
      // A key without escapes is its own JSON.stringify form.
      out.push_back('"');
      out.append(key);
      out.append("\":");
      skip_whitespace();
      if (!consume(':')) return false;
      skip_whitespace();
      return value(out);
    });
    if (!members_read) return false;
    out.push_back('}');
    keys_.resize(first_key);
    --depth_;
    return true;
  }

  bool array(std::string& out) {
    if (++depth_ > kMaxDepth) return false;
    ++pos_;  // '['
    out.push_back('[');
    if (!members(']', &out, [&] { return value(out); })) return false;
    out.push_back(']');
    --depth_;
    return true;
  }

  // A key written without escapes and not starting with a digit: JavaScript lists keys
  // that are array indices first, which only the full parse reorders.
  bool plain_key(std::string_view& key) {
    if (peek() != '"') return false;
    const std::size_t start = pos_ + 1;
    const std::size_t end = text_.find('"', start);
    if (end == std::string_view::npos) return false;
    key = text_.substr(start, end - start);
    for (char c : key) {
      if (c == '\\' || static_cast<unsigned char>(c) < 0x20) return false;
    }
    if (!key.empty() && is_digit(key[0])) return false;
    pos_ = end + 1;
    return true;
  }

  // Repeated keys keep the first position and the last value, which only the full parse does.
  bool unique_key(std::string_view key, std::size_t first_key) {
    if (keys_.size() - first_key >= kMaxKeysPerObject) return false;
    for (std::size_t i = first_key; i < keys_.size(); ++i) {
      if (keys_[i] == key) return false;
    }
    keys_.push_back(key);
    return true;
  }

  // A string value in JSON.stringify's form.
  bool string_literal(std::string& out) {
    std::string_view raw;
    if (!unescaped_string(raw)) {
      decoded_.clear();
      if (!string_value(decoded_)) return false;
      append_js_string_literal(out, decoded_);
      return true;
    }
    // Valid UTF-8 without quotes, backslashes or control characters is its own literal.
    out.push_back('"');
    out.append(raw);
    out.push_back('"');
    return true;
  }

  // The string at pos_ if it has no escapes (most of a status), consumed; else false
  // with nothing consumed.
  bool unescaped_string(std::string_view& raw) {
    const std::size_t start = pos_ + 1;
    const std::size_t end = find_json_string_special(text_, start);
    if (end >= text_.size() || text_[end] != '"') return false;
    raw = text_.substr(start, end - start);
    pos_ = end + 1;
    return true;
  }

  // The string at pos_, decoded, appended to `out`.
  bool string_value(std::string& out) {
    if (!consume('"')) return false;
    std::size_t run = pos_;
    while (pos_ < text_.size()) {
      const auto c = static_cast<unsigned char>(text_[pos_]);
      if (c == '"') {
        out.append(text_.substr(run, pos_ - run));
        ++pos_;
        return true;
      }
      if (c < 0x20) return false;  // raw control characters are not JSON
      if (c != '\\') {
        ++pos_;
        continue;
      }
      out.append(text_.substr(run, pos_ - run));
      if (!escape(out)) return false;
      run = pos_;
    }
    return false;
  }

  bool escape(std::string& out) {
    if (pos_ + 1 >= text_.size()) return false;
    const char kind = text_[pos_ + 1];
    pos_ += 2;
    switch (kind) {
      case '"': out.push_back('"'); return true;
      case '\\': out.push_back('\\'); return true;
      case '/': out.push_back('/'); return true;
      case 'b': out.push_back('\b'); return true;
      case 'f': out.push_back('\f'); return true;
      case 'n': out.push_back('\n'); return true;
      case 'r': out.push_back('\r'); return true;
      case 't': out.push_back('\t'); return true;
      case 'u': break;
      default: return false;
    }
    std::uint32_t unit = 0;
    if (!hex4(unit)) return false;
    if (unit >= 0xDC00 && unit <= 0xDFFF) return false;  // a lone low surrogate
    if (unit >= 0xD800 && unit <= 0xDBFF) {
      std::uint32_t low = 0;
      if (text_.substr(pos_, 2) != "\\u") return false;  // a lone high surrogate
      pos_ += 2;
      if (!hex4(low) || low < 0xDC00 || low > 0xDFFF) return false;
      unit = 0x10000 + ((unit - 0xD800) << 10) + (low - 0xDC00);
    }
    append_utf8(out, unit);
    return true;
  }

  bool hex4(std::uint32_t& unit) {
    if (pos_ + 4 > text_.size()) return false;
    for (int i = 0; i < 4; ++i) {
      const int digit = hex_value(text_[pos_ + i]);
      if (digit < 0) return false;
      unit = unit * 16 + static_cast<std::uint32_t>(digit);
    }
    pos_ += 4;
    return true;
  }

  // A JSON number, printed as JavaScript prints the double it denotes.
  bool number(std::string& out) {
    const std::size_t start = pos_;
    if (peek() == '-') ++pos_;
    if (peek() == '0') {
      ++pos_;
    } else if (is_digit(peek())) {
      while (is_digit(peek())) ++pos_;
    } else {
      return false;
    }
    const std::size_t integer_end = pos_;
    if (peek() == '.') {
      ++pos_;
      if (!is_digit(peek())) return false;
      while (is_digit(peek())) ++pos_;
    }
    if (peek() == 'e' || peek() == 'E') {
      ++pos_;
      if (peek() == '+' || peek() == '-') ++pos_;
      if (!is_digit(peek())) return false;
      while (is_digit(peek())) ++pos_;
    }
    const std::string_view token = text_.substr(start, pos_ - start);
    const bool negative = token[0] == '-';
    const std::size_t digits = integer_end - start - (negative ? 1 : 0);
    if (integer_end == pos_ && digits <= kExactIntegerDigits && token != "-0") {
      out.append(token);
      return true;
    }
    double number = 0;
    const auto [end, error] = std::from_chars(token.data(), token.data() + token.size(), number);
    // Out of a double's range (either way) is left to the full parse, which refuses it.
    if (error != std::errc() || end != token.data() + token.size() || !std::isfinite(number)) return false;
    append_js_number(out, number);
    return true;
  }

  bool literal(std::string_view word, std::string& out) {
    if (text_.substr(pos_, word.size()) != word) return false;
    pos_ += word.size();
    out.append(word);
    return true;
  }

  char peek() const { return pos_ < text_.size() ? text_[pos_] : '\0'; }

  bool consume(char c) {
    if (peek() != c || pos_ >= text_.size()) return false;
    ++pos_;
    return true;
  }

  void skip_whitespace() {
    while (pos_ < text_.size() && is_json_whitespace(text_[pos_])) ++pos_;
  }

  const std::string_view text_;
  std::size_t pos_ = 0;
  int depth_ = 0;
  std::vector<std::string_view> keys_;  // the keys of every object being scanned, innermost last
  std::string decoded_;                 // a string with escapes, decoded
};

}  // namespace

std::optional<ScannedMessage> scan_plain_message(std::string_view text) {
  if (!is_valid_utf8(text)) return std::nullopt;
  ScannedMessage message;
  if (!Scanner(text).message(message)) return std::nullopt;
  return message;
}

}  // namespace sluice
