#include "common/env.hpp"

#include <cctype>
#include <cstdlib>
#include <fstream>
#include <sstream>

#include "common/config_error.hpp"

extern char** environ;

namespace sluice {

Env Env::from_process() {
  Env env;
  for (char** entry = environ; entry && *entry; ++entry) {
    std::string_view kv(*entry);
    auto eq = kv.find('=');
    if (eq == std::string_view::npos) continue;
    env.vars_.emplace(std::string(kv.substr(0, eq)), std::string(kv.substr(eq + 1)));
  }
  return env;
}

Env Env::from_map(std::map<std::string, std::string> vars) {
  Env env;
  for (auto& [k, v] : vars) env.vars_.emplace(k, v);
  return env;
}

std::optional<std::string> Env::get(std::string_view name) const {
  auto it = vars_.find(name);
  if (it == vars_.end()) return std::nullopt;
  return it->second;
}

std::optional<std::string> Env::non_empty(std::string_view name) const {
  auto value = get(name);
  if (!value || value->empty()) return std::nullopt;
  return value;
}

std::string Env::get_or(std::string_view name, std::string_view fallback) const {
  auto value = get(name);
  return value ? *value : std::string(fallback);
}

std::optional<int64_t> parse_leading_integer(std::string_view text) {
  size_t i = 0;
  while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
  bool negative = false;
  if (i < text.size() && (text[i] == '+' || text[i] == '-')) {
    negative = text[i] == '-';
    ++i;
  }
  size_t digits_start = i;
  int64_t value = 0;
  while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) {
    if (value > (INT64_MAX - 9) / 10) return std::nullopt;  // absurdly large: refuse
    value = value * 10 + (text[i] - '0');
    ++i;
  }
  if (i == digits_start) return std::nullopt;
  return negative ? -value : value;
}

int64_t Env::integer(std::string_view name, int64_t fallback) const {
  auto value = get(name);
  if (!value || value->empty()) return fallback;
  auto parsed = parse_leading_integer(*value);
  if (!parsed) {
    throw ConfigError("Invalid " + std::string(name) + " environment variable: " + *value);
  }
  return *parsed;
}

int64_t Env::non_negative(std::string_view name, int64_t fallback) const {
  auto value = get(name);
  if (!value || value->empty()) return fallback;
  int64_t result = 0;
  bool ok = !value->empty() && value->size() < 19;
  for (char c : *value) {
    if (!std::isdigit(static_cast<unsigned char>(c))) {
      ok = false;
      break;
    }
    result = result * 10 + (c - '0');
  }
  if (!ok) {
    throw ConfigError("Invalid " + std::string(name) +
                      " environment variable: expected a non-negative integer, got '" + *value +
                      "'");
  }
  return result;
}

bool Env::flag(std::string_view name, bool fallback) const {
  auto value = non_empty(name);
  if (!value) return fallback;
  std::string v = *value;
  for (auto& c : v) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  if (v == "1" || v == "true" || v == "yes" || v == "on") return true;
  if (v == "0" || v == "false" || v == "no" || v == "off") return false;
  throw ConfigError("Invalid " + std::string(name) + " environment variable: expected true or false, got '" +
                    *value + "'");
}

namespace {

std::string_view trim(std::string_view s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
  return s;
}

bool valid_key(std::string_view key) {
  if (key.empty()) return false;
  for (char c : key) {
    if (!(std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '.' || c == '-')) return false;
  }
  return true;
}

}  // namespace

// The dotenv package's rules (the reference loads .env with dotenv ^17,
// docs/protocol.md#environment-file): KEY=VALUE lines, optional `export `, `#` comments;
// an unquoted value ends at the first `#`; a quoted one ('…', "…", `…`) may span lines,
// `\"` inside double quotes does not end it (and stays as written), and only whitespace
// or a comment may follow its closing quote (else the line is read as unquoted); in a
// value that starts with a double quote, `\n` and `\r` become newline and return.
std::map<std::string, std::string> parse_dotenv(std::string_view input) {
  // dotenv reads CRLF and CR line ends as LF first.
  std::string text;
  text.reserve(input.size());
  for (size_t i = 0; i < input.size(); ++i) {
    if (input[i] != '\r') {
      text += input[i];
    } else {
      text += '\n';
      if (i + 1 < input.size() && input[i + 1] == '\n') ++i;
    }
  }
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t eol = text.find('\n', pos);
    if (eol == std::string::npos) eol = text.size();
    std::string_view line = trim(std::string_view(text).substr(pos, eol - pos));
    size_t next = eol + 1;
    if (line.empty() || line.front() == '#') {
      pos = next;
      continue;
    }
    if (line.substr(0, 7) == "export ") line = trim(line.substr(7));
    auto eq = line.find('=');
    if (eq == std::string_view::npos) {
      pos = next;
      continue;
    }
    std::string_view key = trim(line.substr(0, eq));
    // The value may span lines when quoted, so work on the rest of the text.
    size_t value_start = static_cast<size_t>(line.data() - text.data()) + eq + 1;
    while (value_start < eol && (text[value_start] == ' ' || text[value_start] == '\t')) ++value_start;
    std::string_view raw;
    const char quote = value_start < eol ? text[value_start] : '\0';
    if (quote == '"' || quote == '\'' || quote == '`') {
      size_t at = value_start + 1;
      while (at < text.size() && text[at] != quote) at += (text[at] == '\\' && at + 1 < text.size() && text[at + 1] == quote) ? 2 : 1;
      if (at < text.size()) {
        size_t after = at + 1;
        while (after < text.size() && (text[after] == ' ' || text[after] == '\t')) ++after;
        if (after == text.size() || text[after] == '\n' || text[after] == '#') {
          raw = std::string_view(text).substr(value_start, at + 1 - value_start);
          size_t close_eol = text.find('\n', at);
          next = close_eol == std::string::npos ? text.size() : close_eol + 1;
        }
      }
    }
    if (raw.empty()) {
      raw = std::string_view(text).substr(value_start, eol - value_start);
      raw = trim(raw.substr(0, raw.find('#')));
    }
    const bool expand = !raw.empty() && raw.front() == '"';
    if (raw.size() >= 2 && raw.front() == raw.back() && (raw.front() == '"' || raw.front() == '\'' || raw.front() == '`')) {
      raw = raw.substr(1, raw.size() - 2);
    }
    std::string value;
    for (size_t i = 0; i < raw.size(); ++i) {
      if (expand && raw[i] == '\\' && i + 1 < raw.size() && (raw[i + 1] == 'n' || raw[i + 1] == 'r')) {
        value += raw[i + 1] == 'n' ? '\n' : '\r';
        ++i;
      } else {
        value += raw[i];
      }
    }
    if (valid_key(key)) out[std::string(key)] = std::move(value);
    pos = next;
  }
  return out;
}

std::string load_dotenv_into_process(const std::string& directory) {
  const char* node_env = std::getenv("NODE_ENV");
  std::string name = (node_env && std::string_view(node_env) == "production") ? ".env.production" : ".env";
  std::string path = directory.empty() ? name : directory + "/" + name;
  std::ifstream in(path, std::ios::binary);
  if (!in) return {};
  std::stringstream buffer;
  buffer << in.rdbuf();
  for (const auto& [key, value] : parse_dotenv(buffer.str())) {
    ::setenv(key.c_str(), value.c_str(), /*overwrite=*/0);
  }
  return path;
}

}  // namespace sluice
