#pragma once
// JSON written the way JavaScript's JSON.stringify writes it (docs/protocol.md#payload-serialisation), so
// payloads reach clients byte-for-byte as the reference server sends them, plus the
// UTF-8 rules JavaScript applies when it turns bytes into strings.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace sluice {

// JSON.stringify(value): compact, keys in insertion order, only `"`, `\` and
// U+0000–U+001F escaped, numbers as Number.prototype.toString (docs/protocol.md#payload-serialisation).
// Non-finite numbers become `null`, as in JavaScript (only values built in C++
// hold them: nlohmann's parser refuses `1e400`, which JSON.parse reads as Infinity). Strings holding invalid UTF-8 (which
// nlohmann's parser never produces) have each ill-formed sequence replaced by
// U+FFFD, as a JS string decoded from those bytes would hold.
// Recursion depth equals the value's nesting depth: callers parsing untrusted
// text bound it first with json_nesting_exceeds().
std::string js_stringify(const nlohmann::ordered_json& value);
void append_js_stringify(std::string& out, const nlohmann::ordered_json& value);

// Appends `utf8` as a quoted JSON string literal, escaped as above.
void append_js_string_literal(std::string& out, std::string_view utf8);

// Appends Number.prototype.toString(value): shortest round-trip digits, no `.0`
// on integers, exponent form (`1e+21`, `1.5e-7`) when |value| >= 1e21 or
// < 1e-6, `-0` as `0`. Non-finite values append `null` (JSON.stringify's rule).
void append_js_number(std::string& out, double value);

// String(value) for a parsed JSON value, as a JS template literal would print it:
// strings as is, numbers via append_js_number (±Infinity as `Infinity`),
// `true`/`false`/`null`, objects `[object Object]`, arrays joined with `,` with
// null elements empty.
std::string js_to_string(const nlohmann::ordered_json& value);

// JavaScript truthiness of a parsed JSON value: false for null, false, 0, -0,
// NaN and "", true for everything else (objects and arrays even when empty).
bool js_truthy(const nlohmann::ordered_json& value);

// True when `text` nests arrays/objects deeper than `max_depth`. A cheap scan
// (brackets inside strings do not count) run before nlohmann's recursive parser,
// which overflows the stack on very deep input.
bool json_nesting_exceeds(std::string_view text, std::size_t max_depth);

// The position of the first '"', '\\' or control character (below U+0020) at or after
// `pos` in `text`, or text.size(): where a JSON string's plain bytes end. Eight bytes
// at a time.
std::size_t find_json_string_special(std::string_view text, std::size_t pos);

// ---- UTF-8 as JavaScript decodes bytes (WHATWG "utf-8" decoder) ----

// Length of the well-formed UTF-8 sequence starting at text[pos] (1–4), or 0 if
// the bytes there are ill-formed (overlong, surrogate, > U+10FFFF, truncated).
std::size_t utf8_sequence_length(std::string_view text, std::size_t pos);

// Appends the code point (at most U+10FFFF, not a surrogate) as UTF-8.
inline void append_utf8(std::string& out, std::uint32_t code_point) {
  if (code_point < 0x80) {
    out.push_back(static_cast<char>(code_point));
  } else if (code_point < 0x800) {
    out.push_back(static_cast<char>(0xC0 | (code_point >> 6)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else if (code_point < 0x10000) {
    out.push_back(static_cast<char>(0xE0 | (code_point >> 12)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  } else {
    out.push_back(static_cast<char>(0xF0 | (code_point >> 18)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 12) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | ((code_point >> 6) & 0x3F)));
    out.push_back(static_cast<char>(0x80 | (code_point & 0x3F)));
  }
}

// Strict RFC 3629 validity (what WebSocket text frames require, RFC 6455 §8.1).
bool is_valid_utf8(std::string_view text);

// The bytes decoded the way Node's Buffer#toString('utf8') does: every maximal
// ill-formed subpart becomes U+FFFD. Valid input is returned unchanged.
std::string to_well_formed_utf8(std::string_view text);

}  // namespace sluice
