#pragma once
// Environment variables, read the way Mastodon's streaming server reads them
// (docs/protocol.md#redis-configuration, docs/protocol.md#postgresql-configuration,
// docs/protocol.md#environment-file): `.env` loading where set variables win, and
// leading-integer parsing of numeric variables.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

// A snapshot of the variables a tier reads. Tests build one from a map so they
// never touch the process environment.
class Env {
 public:
  static Env from_process();
  static Env from_map(std::map<std::string, std::string> vars);

  // The value if set (possibly empty).
  std::optional<std::string> get(std::string_view name) const;
  // The value if set and non-empty.
  std::optional<std::string> non_empty(std::string_view name) const;
  std::string get_or(std::string_view name, std::string_view fallback) const;

  // Node's parseInt semantics as the reference uses them: unset or empty → fallback;
  // "6380abc" → 6380; no leading integer → ConfigError
  // "Invalid <NAME> environment variable: <value>".
  int64_t integer(std::string_view name, int64_t fallback) const;

  // Sluice's own durations and sizes (SLUICE_*): a plain non-negative integer, else
  // ConfigError naming the variable.
  int64_t non_negative(std::string_view name, int64_t fallback) const;

  bool flag(std::string_view name, bool fallback) const;

  void set(std::string name, std::string value) { vars_[std::move(name)] = std::move(value); }
  const std::map<std::string, std::string, std::less<>>& all() const { return vars_; }

 private:
  std::map<std::string, std::string, std::less<>> vars_;
};

// Parses dotenv text as the dotenv package does (common/env.cpp). Pure, for tests and
// fuzzing.
std::map<std::string, std::string> parse_dotenv(std::string_view text);

// Loads `.env.production` (NODE_ENV=production) or `.env` from `directory` into the
// process environment without overriding variables that are already set.
// Returns the path loaded, or empty if there was none.
std::string load_dotenv_into_process(const std::string& directory);

// Leading-integer parse with JavaScript parseInt(…, 10) rules: optional whitespace,
// optional sign, digits. nullopt when there is no leading integer.
std::optional<int64_t> parse_leading_integer(std::string_view text);

}  // namespace sluice
