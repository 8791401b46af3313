#include "broker/redis_config.hpp"

#include "common/percent_encoding.hpp"

#include <algorithm>
#include <cctype>

#include "common/config_error.hpp"

namespace sluice {
namespace {

constexpr std::string_view kUrlVariable = "REDIS_URL";

// The URL as it may appear in an error line: the password replaced, so that a
// bad REDIS_URL never leaks a secret into logs.
std::string redact_url(std::string_view url) {
  auto scheme_end = url.find("://");
  if (scheme_end == std::string_view::npos) return std::string(url);
  auto authority_start = scheme_end + 3;
  auto at = url.find('@', authority_start);
  auto slash = url.find('/', authority_start);
  if (at == std::string_view::npos || (slash != std::string_view::npos && slash < at)) return std::string(url);
  auto colon = url.find(':', authority_start);
  if (colon == std::string_view::npos || colon > at) return std::string(url);
  return std::string(url.substr(0, colon + 1)) + "[Redacted]" + std::string(url.substr(at));
}

[[noreturn]] void invalid_url(std::string_view url, std::string_view why) {
  throw ConfigError("Invalid " + std::string(kUrlVariable) + " environment variable: " + redact_url(url) + " (" +
                    std::string(why) + ")");
}

// URL userinfo, hosts and paths are percent-encoded (a password with '@' is written
// %40): plain decoding, malformed escapes kept, as ioredis's URL parsing.
std::string percent_decode(std::string_view text) { return sluice::percent_decode(text, PercentDecoding{}); }

// A non-negative decimal with nothing after it (URL ports and database numbers).
bool parse_decimal(std::string_view text, int max, int& out) {
  if (text.empty() || text.size() > 9) return false;
  int value = 0;
  for (char c : text) {
    if (!std::isdigit(static_cast<unsigned char>(c))) return false;
    value = value * 10 + (c - '0');
  }
  if (value > max) return false;
  out = value;
  return true;
}

// The value of `name` in a query string ("a=1&db=2"), if present.
std::optional<std::string> query_value(std::string_view query, std::string_view name) {
  while (!query.empty()) {
    auto amp = query.find('&');
    std::string_view pair = query.substr(0, amp);
    auto eq = pair.find('=');
    if (pair.substr(0, eq) == name) {
      return eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1));
    }
    if (amp == std::string_view::npos) break;
    query.remove_prefix(amp + 1);
  }
  return std::nullopt;
}

int db_from_query(std::string_view url, std::string_view query) {
  int db = 0;
  if (auto value = query_value(query, "db"); value && !value->empty()) {
    if (!parse_decimal(*value, 1 << 20, db)) invalid_url(url, "the database must be a number");
  }
  return db;
}

// unix:///path/to.sock[?db=N]
void parse_unix_url(std::string_view url, RedisConfig& config) {
  std::string_view rest = url.substr(std::string_view("unix://").size());
  auto question = rest.find('?');
  std::string_view query = question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);
  config.mode = RedisConfig::Mode::unix_socket;
  config.path = percent_decode(rest.substr(0, question));
  if (config.path.empty()) invalid_url(url, "no socket path");
  config.db = db_from_query(url, query);
}

// redis://[user:pass@]host[:port][/db]
void parse_redis_url(std::string_view url, RedisConfig& config) {
  config.tls = url.starts_with("rediss://");
  std::string_view rest = url.substr(url.find("://") + 3);
  auto question = rest.find('?');
  std::string_view query = question == std::string_view::npos ? std::string_view() : rest.substr(question + 1);
  rest = rest.substr(0, question);
  auto slash = rest.find('/');
  std::string_view authority = rest.substr(0, slash);
  std::string_view path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash + 1);

  auto at = authority.rfind('@');
  if (at != std::string_view::npos) {
    std::string_view userinfo = authority.substr(0, at);
    authority.remove_prefix(at + 1);
    auto colon = userinfo.find(':');
    config.username = percent_decode(userinfo.substr(0, colon));
    if (colon != std::string_view::npos) config.password = percent_decode(userinfo.substr(colon + 1));
  }

  std::string_view host = authority;
  std::string_view port;
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) invalid_url(url, "unterminated IPv6 address");
    host = authority.substr(1, close - 1);
    std::string_view after = authority.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') invalid_url(url, "bad port");
      port = after.substr(1);
    }
  } else if (auto colon = authority.rfind(':'); colon != std::string_view::npos) {
    host = authority.substr(0, colon);
    port = authority.substr(colon + 1);
  }
  config.mode = RedisConfig::Mode::tcp;
  config.host = host.empty() ? "127.0.0.1" : percent_decode(host);
  config.port = 6379;
  if (!port.empty() && !parse_decimal(port, 65535, config.port)) invalid_url(url, "bad port");

  config.db = 0;
  if (!path.empty()) {
    if (!parse_decimal(path, 1 << 20, config.db)) invalid_url(url, "the database must be a number");
  } else {
    config.db = db_from_query(url, query);
  }
}

// REDIS_SENTINELS: "host[:port],host[:port]" with REDIS_SENTINEL_PORT as the default port.
std::vector<RedisEndpoint> parse_sentinels(const std::string& text, int default_port) {
  std::vector<RedisEndpoint> out;
  std::string_view rest = text;
  while (true) {
    auto comma = rest.find(',');
    std::string_view item = rest.substr(0, comma);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.front()))) item.remove_prefix(1);
    while (!item.empty() && std::isspace(static_cast<unsigned char>(item.back()))) item.remove_suffix(1);
    if (!item.empty()) {
      RedisEndpoint endpoint{std::string(item), default_port};
      std::string_view port;
      if (item.front() == '[') {
        auto close = item.find(']');
        if (close == std::string_view::npos) {
          throw ConfigError("Invalid REDIS_SENTINELS environment variable: " + text);
        }
        endpoint.host = std::string(item.substr(1, close - 1));
        if (close + 1 < item.size()) {
          if (item[close + 1] != ':') throw ConfigError("Invalid REDIS_SENTINELS environment variable: " + text);
          port = item.substr(close + 2);
        }
      } else if (auto colon = item.find(':'); colon != std::string_view::npos) {
        endpoint.host = std::string(item.substr(0, colon));
        port = item.substr(colon + 1);
      }
      if (!port.empty()) {
        auto parsed = parse_leading_integer(port);
        if (!parsed) throw ConfigError("Invalid REDIS_SENTINELS environment variable: " + text);
        endpoint.port = static_cast<int>(*parsed);
      }
      out.push_back(std::move(endpoint));
    }
    if (comma == std::string_view::npos) break;
    rest.remove_prefix(comma + 1);
  }
  if (out.empty()) throw ConfigError("Invalid REDIS_SENTINELS environment variable: " + text);
  return out;
}

}  // namespace

std::string RedisConfig::with_namespace(std::string_view name) const {
  if (redis_namespace.empty()) return std::string(name);
  std::string out;
  out.reserve(redis_namespace.size() + 1 + name.size());
  out.append(redis_namespace).append(":").append(name);
  return out;
}

std::string_view RedisConfig::without_namespace(std::string_view channel) const {
  if (redis_namespace.empty()) return channel;
  size_t cut = redis_namespace.size() + 1;
  return cut >= channel.size() ? std::string_view() : channel.substr(cut);
}

std::string RedisConfig::describe() const {
  std::string db_text = "/" + std::to_string(db);
  switch (mode) {
    case Mode::tcp:
      return std::string(tls ? "rediss://" : "") + (host.find(':') != std::string::npos ? "[" + host + "]" : host) +
             ":" + std::to_string(port) + db_text;
    case Mode::unix_socket:
      return "unix:" + path + db_text;
    case Mode::sentinel: {
      std::string out = "sentinel master " + sentinel_master + " via ";
      for (size_t i = 0; i < sentinels.size(); ++i) {
        if (i) out += ',';
        out += sentinels[i].host + ":" + std::to_string(sentinels[i].port);
      }
      return out + db_text;
    }
  }
  return {};
}

namespace {
// Length-prefixed fields: no value can run into the next.
void add_key_field(std::string& key, std::string_view field) {
  key += std::to_string(field.size());
  key += ':';
  key += field;
}
}  // namespace

std::string RedisConfig::connection_key() const {
  std::string key;
  add_key_field(key, std::to_string(static_cast<int>(mode)));
  add_key_field(key, host);
  add_key_field(key, std::to_string(port));
  add_key_field(key, path);
  for (const auto& sentinel : sentinels) {
    add_key_field(key, sentinel.host);
    add_key_field(key, std::to_string(sentinel.port));
  }
  add_key_field(key, sentinel_master);
  add_key_field(key, sentinel_username);
  add_key_field(key, sentinel_password);
  add_key_field(key, std::to_string(db));
  add_key_field(key, username);
  add_key_field(key, password);
  add_key_field(key, tls ? (tls_verify ? "tls" : "tls-unverified") : "plain");
  add_key_field(key, tls_extra_ca_file);
  return key;
}

std::string RedisConfig::server_key() const {
  std::string key;
  add_key_field(key, std::to_string(static_cast<int>(mode)));
  if (mode == Mode::sentinel) {
    // A master is named by its Sentinels, in whatever order they are listed.
    std::vector<std::string> by_address;
    for (const auto& sentinel : sentinels) by_address.push_back(sentinel.host + ":" + std::to_string(sentinel.port));
    std::sort(by_address.begin(), by_address.end());
    for (const auto& address : by_address) add_key_field(key, address);
    add_key_field(key, sentinel_master);
  } else {
    add_key_field(key, host);
    add_key_field(key, std::to_string(port));
    add_key_field(key, path);
  }
  return key;
}

RedisConfig redis_config_from_env(const Env& env) {
  RedisConfig config;
  config.redis_namespace = env.get_or("REDIS_NAMESPACE", "");

  // 1. REDIS_URL wins and nothing else but REDIS_NAMESPACE is read.
  if (auto url = env.non_empty("REDIS_URL")) {
    std::string_view text = *url;
    if (text.starts_with("unix://")) {
      parse_unix_url(text, config);
    } else if (text.starts_with("redis://") || text.starts_with("rediss://")) {
      parse_redis_url(text, config);
      config.tls_extra_ca_file = env.get_or("NODE_EXTRA_CA_CERTS", "");
      config.tls_verify = env.get_or("NODE_TLS_REJECT_UNAUTHORIZED", "") != "0";
    } else {
      invalid_url(text, "expected redis://, rediss:// or unix://");
    }
    return config;
  }

  config.db = static_cast<int>(env.integer("REDIS_DB", 0));
  // REDIS_USER since Mastodon 4.3.1 (mastodon#32493, the name Rails reads); 4.3.0's
  // REDIS_USERNAME still works (docs/mastodon-releases.md).
  config.username = env.get("REDIS_USER").value_or(env.get_or("REDIS_USERNAME", ""));
  config.password = env.get_or("REDIS_PASSWORD", "");

  // 2. Sentinel when both the list and the master name are given.
  auto sentinels = env.non_empty("REDIS_SENTINELS");
  auto master = env.non_empty("REDIS_SENTINEL_MASTER");
  if (sentinels && master) {
    int default_port = static_cast<int>(env.integer("REDIS_SENTINEL_PORT", 26379));
    config.mode = RedisConfig::Mode::sentinel;
    config.sentinels = parse_sentinels(*sentinels, default_port);
    config.sentinel_master = *master;
    config.sentinel_username = env.get("REDIS_SENTINEL_USERNAME").value_or(config.username);
    config.sentinel_password = env.get("REDIS_SENTINEL_PASSWORD").value_or(config.password);
    return config;
  }

  // 3. Host and port.
  config.mode = RedisConfig::Mode::tcp;
  config.host = env.get_or("REDIS_HOST", "127.0.0.1");
  config.port = static_cast<int>(env.integer("REDIS_PORT", 6379));
  return config;
}

}  // namespace sluice
