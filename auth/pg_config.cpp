#include "auth/pg_config.hpp"

#include "common/percent_encoding.hpp"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>
#include <tuple>

#include "common/config_error.hpp"
#include "common/log.hpp"

namespace sluice {
namespace {

// Node verifies server certificates against the public CAs it ships; libpq 15 has no
// "system" root store keyword, so point verify-full at Debian's bundle unless the URL
// names its own root certificate.
constexpr const char* kSystemCaBundle = "/etc/ssl/certs/ca-certificates.crt";

constexpr const char* kInvalidPort = "Invalid port specified in DATABASE_URL environment variable";


std::string percent_decode(std::string_view text, bool component, bool plus_is_space = false) {
  return sluice::percent_decode(text, PercentDecoding{plus_is_space, /*keep_reserved=*/!component, false});
}

struct ParsedUrl {
  std::map<std::string, std::string> query;  // URLSearchParams, later duplicates win
  std::string user, password, host, port, database;
  bool has_database = false;
};

std::map<std::string, std::string> parse_query(std::string_view query) {
  std::map<std::string, std::string> out;
  size_t pos = 0;
  while (pos <= query.size() && !query.empty()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    if (!pair.empty()) {
      size_t eq = pair.find('=');
      std::string key = percent_decode(pair.substr(0, eq), true, true);
      std::string value = eq == std::string_view::npos ? "" : percent_decode(pair.substr(eq + 1), true, true);
      out[key] = value;
    }
    pos = amp + 1;
  }
  return out;
}

std::string query_value(const ParsedUrl& url, const std::string& key) {
  auto it = url.query.find(key);
  return it == url.query.end() ? std::string() : it->second;
}

// The parts of pg-connection-string's parse() that the reference copies into its pool
// configuration: user, password, host, port, database, options and the TLS settings.
ParsedUrl parse_database_url(const std::string& text) {
  ParsedUrl url;
  // "/socket/dir dbname": a Unix socket directory and an optional database.
  if (!text.empty() && text.front() == '/') {
    auto space = text.find(' ');
    url.host = text.substr(0, space);
    if (space != std::string::npos) {
      auto rest = text.substr(space + 1);
      url.database = rest.substr(0, rest.find(' '));
      url.has_database = true;
    }
    return url;
  }

  auto colon = text.find(':');
  if (colon == std::string::npos || colon == 0) throw ConfigError("Invalid DATABASE_URL environment variable");
  std::string scheme = text.substr(0, colon);
  for (char c : scheme) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') {
      throw ConfigError("Invalid DATABASE_URL environment variable");
    }
  }
  std::string_view rest = std::string_view(text).substr(colon + 1);
  if (auto hash = rest.find('#'); hash != std::string_view::npos) rest = rest.substr(0, hash);
  std::string_view query;
  if (auto question = rest.find('?'); question != std::string_view::npos) {
    query = rest.substr(question + 1);
    rest = rest.substr(0, question);
  }
  url.query = parse_query(query);

  std::string_view authority;
  std::string_view path;
  if (rest.substr(0, 2) == "//") {
    rest.remove_prefix(2);
    size_t slash = rest.find('/');
    authority = rest.substr(0, slash);
    path = slash == std::string_view::npos ? std::string_view() : rest.substr(slash);
  } else if (scheme == "socket") {
    path = rest;
  } else {
    throw ConfigError("Invalid DATABASE_URL environment variable");
  }

  std::string_view userinfo;
  std::string_view hostport = authority;
  if (auto at = authority.rfind('@'); at != std::string_view::npos) {
    userinfo = authority.substr(0, at);
    hostport = authority.substr(at + 1);
  }
  std::string_view username = userinfo.substr(0, userinfo.find(':'));
  std::string_view password =
      userinfo.find(':') == std::string_view::npos ? std::string_view() : userinfo.substr(userinfo.find(':') + 1);

  std::string_view hostname = hostport;
  std::string_view port;
  if (!hostport.empty() && hostport.front() == '[') {
    auto close = hostport.find(']');
    if (close == std::string_view::npos) throw ConfigError("Invalid DATABASE_URL environment variable");
    hostname = hostport.substr(1, close - 1);  // libpq wants IPv6 literals without brackets
    std::string_view after = hostport.substr(close + 1);
    if (!after.empty()) {
      if (after.front() != ':') throw ConfigError("Invalid DATABASE_URL environment variable");
      port = after.substr(1);
    }
  } else if (auto c = hostport.find(':'); c != std::string_view::npos) {
    hostname = hostport.substr(0, c);
    port = hostport.substr(c + 1);
  }
  // A URL port is digits only and at most 65535; anything else fails URL parsing.
  if (!port.empty()) {
    bool digits = port.size() <= 5;
    for (char ch : port) digits = digits && std::isdigit(static_cast<unsigned char>(ch));
    if (!digits || std::stoi(std::string(port)) > 65535) throw ConfigError(kInvalidPort);
  }

  url.user = query_value(url, "user");
  if (url.user.empty()) url.user = percent_decode(username, true);
  url.password = query_value(url, "password");
  if (url.password.empty()) url.password = percent_decode(password, true);

  if (scheme == "socket") {
    url.host = percent_decode(path, false);
    if (url.query.count("db")) {
      url.database = url.query["db"];
      url.has_database = true;
    }
    return url;
  }

  url.host = query_value(url, "host");
  if (url.host.empty()) url.host = percent_decode(hostname, true);
  url.port = query_value(url, "port");
  if (url.port.empty()) url.port = std::string(port);
  if (path.size() > 1) {
    url.database = percent_decode(path.substr(1), false);
    url.has_database = true;
  }
  return url;
}

enum class Tls {
  none,
  unverified,
  verified,  // the chain and the host name, as Node checks them
};

// DB_SSLMODE and the URL's sslmode: `disable` → no TLS, `no-verify` → TLS without
// certificate checks, anything else → TLS with verification (docs/protocol.md#postgresql-configuration).
Tls tls_for_sslmode(const std::string& mode) {
  if (mode.empty() || mode == "disable") return Tls::none;
  if (mode == "no-verify") return Tls::unverified;
  return Tls::verified;
}

// What node-postgres does when Mastodon's configuration leaves `ssl` unset (no
// DB_SSLMODE; a URL without TLS parameters): PGSSLMODE decides, with its own table.
Tls tls_for_pgsslmode(const Env& env) {
  const std::string mode = env.get_or("PGSSLMODE", "");
  if (mode == "prefer" || mode == "require" || mode == "verify-ca" || mode == "verify-full") return Tls::verified;
  if (mode == "no-verify") return Tls::unverified;
  return Tls::none;
}

// Whether a verified connection is so by Node's default (`ssl` true or {}: DB_SSLMODE,
// PGSSLMODE, a URL's ssl=true), or because Mastodon 4.3+ set rejectUnauthorized itself
// (a URL with sslmode, sslcert, sslkey or sslrootcert: streaming/database.js copies
// the key even when undefined, and Node then verifies).
enum class Verification { node_default, explicit_ };

// Node's default for a certificate check nobody configured: NODE_TLS_REJECT_UNAUTHORIZED=0
// turns it off (with a warning), which admins use for a database with a self-signed
// certificate (mastodon#26034). An explicit `no-verify` is unverified anyway.
Tls with_node_default(Tls tls, Verification verification, const Env& env) {
  if (tls != Tls::verified || env.get_or("NODE_TLS_REJECT_UNAUTHORIZED", "") != "0") return tls;
  if (verification == Verification::explicit_) {
    static std::once_flag kept;
    std::call_once(kept, [] {
      log::warn("NODE_TLS_REJECT_UNAUTHORIZED is '0', but DATABASE_URL's TLS parameters keep PostgreSQL "
                "certificates verified, as Mastodon 4.3 and later do (4.2 did not)");
    });
    return tls;
  }
  static std::once_flag warned;
  std::call_once(warned, [] {
    log::warn("NODE_TLS_REJECT_UNAUTHORIZED is '0': PostgreSQL certificates are not verified, as in Node");
  });
  return Tls::unverified;
}

// A regular file's content, read through the descriptor that was checked. Opened
// non-blocking, so a FIFO named in a variable cannot hold the start. `error`: the errno
// that says why it could not be read (EISDIR for a directory), 0 when it was.
struct StartupFile {
  std::string text;
  dev_t device = 0;
  ino_t inode = 0;
  int error = 0;
};

StartupFile read_startup_file(const std::string& path) {
  StartupFile result;
  const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC | O_NONBLOCK);
  if (fd < 0) {
    result.error = errno;
    return result;
  }
  struct stat file {};
  if (::fstat(fd, &file) != 0) {
    result.error = errno;
  } else if (!S_ISREG(file.st_mode)) {
    result.error = S_ISDIR(file.st_mode) ? EISDIR : EINVAL;  // a FIFO, a device, a socket
  }
  if (result.error != 0) {
    ::close(fd);
    return result;
  }
  result.device = file.st_dev;
  result.inode = file.st_ino;
  char chunk[16384];
  for (ssize_t n; (n = ::read(fd, chunk, sizeof chunk)) != 0;) {
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      result.error = errno;
      result.text.clear();
      break;
    }
    result.text.append(chunk, static_cast<size_t>(n));
  }
  ::close(fd);
  return result;
}

// `text` in an in-memory file readable by this process's user only, named through
// /proc/self/fd (it stays open for the life of the process: libpq opens the path anew
// for every connection). `what` names it in errors.
std::string memory_file(const std::string& what, const std::string& text) {
  const int fd = ::memfd_create("sluice-pg", MFD_CLOEXEC);
  if (fd < 0) {
    // A seccomp filter without it (systemd's @ipc group): the units in dist/ allow it.
    throw ConfigError(what + ": cannot make its in-memory copy for PostgreSQL (memfd_create failed: " +
                      std::string(std::strerror(errno)) + ")");
  }
  bool written_all = ::fchmod(fd, 0600) == 0;
  for (size_t written = 0; written_all && written < text.size();) {
    const ssize_t n = ::write(fd, text.data() + written, text.size() - written);
    written_all = n > 0;
    if (written_all) written += static_cast<size_t>(n);
  }
  if (!written_all) {
    ::close(fd);
    throw ConfigError(what + ": cannot make its in-memory copy for PostgreSQL (" + std::strerror(errno) + ")");
  }
  return "/proc/self/fd/" + std::to_string(fd);
}

// The certificate files a URL names, as the reference has them: read when it starts
// (pg-connection-string), which stops when one cannot be read, and kept. libpq would read
// them again at each connection, so a cert and key rotated in place would meet there
// half old, half new, and refuse a private key others may read (more than 0600), as a
// Kubernetes Secret is mounted by default (0644). So libpq gets private in-memory copies,
// one per file and content.
std::string startup_copy(const std::string& parameter, const std::string& path) {
  StartupFile read = read_startup_file(path);
  if (read.error != 0) {
    throw ConfigError("Invalid DATABASE_URL environment variable: " + parameter + " " + path + ": " +
                      std::strerror(read.error));
  }
  static std::mutex mutex;
  // (device, inode, content) → copy: one per file however it is spelled, and per content.
  static std::map<std::tuple<dev_t, ino_t, std::string>, std::string> copies;
  std::lock_guard lock(mutex);
  auto [it, added] = copies.try_emplace({read.device, read.inode, read.text});
  if (added) it->second = memory_file(parameter + " " + path, read.text);
  return it->second;
}

// The roots a verified connection trusts when the URL names none: the system's CAs
// (Node's are compiled into it: docs/protocol.md#postgresql-configuration) plus the file
// NODE_EXTRA_CA_CERTS names (the Mastodon chart's `streaming.extraCerts` sets it for a
// database with a private CA). libpq reads one file, so the two are joined into an
// in-memory file (a read-only root file system has no place for one), made once per
// process.
std::string trusted_roots(const Env& env) {
  const std::string extra = env.get_or("NODE_EXTRA_CA_CERTS", "");
  if (extra.empty()) return kSystemCaBundle;
  static std::mutex mutex;
  static std::map<std::string, std::string> joined;  // extra file → bundle path
  std::lock_guard lock(mutex);
  if (auto it = joined.find(extra); it != joined.end()) return it->second;
  const std::string extra_text = read_startup_file(extra).text;
  if (extra_text.empty()) {
    // As Node: a warning, and the public CAs alone.
    log::warn("NODE_EXTRA_CA_CERTS cannot be read; PostgreSQL certificates are checked against the system CAs only",
              {{"file", extra}});
    return joined.emplace(extra, kSystemCaBundle).first->second;
  }
  const std::string bundle = read_startup_file(kSystemCaBundle).text + "\n" + extra_text;
  return joined.emplace(extra, memory_file("NODE_EXTRA_CA_CERTS", bundle)).first->second;
}

// libpq reads files node-postgres never does: a root certificate in PGSSLROOTCERT or
// ~/.postgresql/root.crt would make `require` check the chain, revocation lists in
// PGSSLCRL, PGSSLCRLDIR or ~/.postgresql/root.crl would be checked, and a client
// certificate and key in PGSSLCERT, PGSSLKEY or ~/.postgresql/ would be sent. A path that
// cannot exist keeps each to what the configuration says (libpq goes on without a file
// it cannot find).
constexpr const char* kNoFile = "/dev/null/none";

// The TLS keywords for `tls`. `rootcert`, `cert` and `key`: a URL's files, as copies
// (empty: none named).
void add_tls(PgConfig& config, Tls tls, Verification verification, const Env& env, const std::string& rootcert = {},
             const std::string& cert = {}, const std::string& key = {}) {
  tls = with_node_default(tls, verification, env);
  switch (tls) {
    case Tls::none:
      config.params.emplace_back("sslmode", "disable");
      return;
    case Tls::unverified:
      config.params.emplace_back("sslmode", "require");
      config.params.emplace_back("sslrootcert", kNoFile);
      break;
    case Tls::verified:
      config.params.emplace_back("sslmode", "verify-full");
      config.params.emplace_back("sslrootcert", rootcert.empty() ? trusted_roots(env) : rootcert);
      config.params.emplace_back("sslcrl", kNoFile);
      config.params.emplace_back("sslcrldir", kNoFile);
      break;
  }
  // Node sends a certificate only with its key (libpq would look for the key elsewhere,
  // and fail without one).
  const bool client_certificate = !cert.empty() && !key.empty();
  config.params.emplace_back("sslcert", client_certificate ? cert : kNoFile);
  config.params.emplace_back("sslkey", client_certificate ? key : kNoFile);
}

// pg-connection-string's `uselibpqcompat=true` (2.8 and later: Mastodon 4.4 and later)
// gives sslmode libpq's meanings: `prefer`, and `require` without a root certificate,
// encrypt without checking it. With one, `require` and `verify-ca` skip the host name
// check there, but Mastodon passes only the certificates and rejectUnauthorized on to
// node-postgres (streaming/database.js), so Node checks the host name too: verified.
Tls libpq_compatible_tls(const std::string& sslmode, const std::string& sslrootcert) {
  if (sslmode == "disable") return Tls::none;
  if (sslmode == "prefer") return Tls::unverified;
  if (sslmode == "require") return sslrootcert.empty() ? Tls::unverified : Tls::verified;
  if (sslmode == "verify-ca" && sslrootcert.empty()) {
    throw ConfigError("SECURITY WARNING: Using sslmode=verify-ca requires specifying a CA with sslrootcert.");
  }
  // verify-ca, verify-full, and every other mode, `no-verify` included: its switch
  // leaves them verified.
  return Tls::verified;
}


void from_url(PgConfig& config, const Env& env, const std::string& text) {
  ParsedUrl url = parse_database_url(text);
  std::string password = url.password;
  // docs/protocol.md#postgresql-configuration: DB_PASS fills in a password the URL does not have.
  if (password.empty()) password = env.get_or("DB_PASS", "");

  config.params.emplace_back("host", url.host.empty() ? env.get_or("PGHOST", "localhost") : url.host);
  if (!url.port.empty()) {
    auto port = parse_leading_integer(url.port);
    if (!port || *port < 1 || *port > 65535) throw ConfigError(kInvalidPort);
    config.params.emplace_back("port", std::to_string(*port));
  }
  if (!url.user.empty()) config.params.emplace_back("user", url.user);
  if (!password.empty()) config.params.emplace_back("password", password);
  if (url.has_database && !url.database.empty()) config.params.emplace_back("dbname", url.database);
  if (auto options = url.query.find("options"); options != url.query.end()) {
    config.params.emplace_back("options", options->second);
  }

  // pg-connection-string: ssl=true/1 → TLS, ssl=0 → none; any of sslmode, sslcert, sslkey,
  // sslrootcert turns TLS on (verified unless sslmode says otherwise); so does
  // sslnegotiation=direct where `ssl` is not given at all (2.14 and later: Mastodon after
  // 4.5), which libpq 15 reaches with the usual negotiation. Anything else leaves `ssl`
  // unset (or a string Mastodon drops), and node-postgres reads PGSSLMODE.
  std::string ssl = query_value(url, "ssl");
  std::string sslmode = query_value(url, "sslmode");
  std::string sslcert = query_value(url, "sslcert");
  std::string sslkey = query_value(url, "sslkey");
  std::string sslrootcert = query_value(url, "sslrootcert");
  std::optional<Tls> tls;
  Verification verification = Verification::node_default;
  if (ssl == "true" || ssl == "1") tls = Tls::verified;
  if (ssl == "0") tls = Tls::none;
  if (!sslmode.empty() || !sslcert.empty() || !sslkey.empty() || !sslrootcert.empty()) {
    tls = sslmode.empty() ? Tls::verified : tls_for_sslmode(sslmode);
    verification = Verification::explicit_;
  }
  if (!url.query.count("ssl") && !tls && query_value(url, "sslnegotiation") == "direct") tls = Tls::verified;
  std::map<std::string, std::string> copies;  // parameter → the file's copy
  for (const auto& [parameter, path] : {std::pair{"sslcert", sslcert}, {"sslkey", sslkey}, {"sslrootcert", sslrootcert}}) {
    if (!path.empty()) copies[parameter] = startup_copy(parameter, path);
  }
  if (query_value(url, "uselibpqcompat") == "true" && !sslmode.empty()) tls = libpq_compatible_tls(sslmode, sslrootcert);
  add_tls(config, tls ? *tls : tls_for_pgsslmode(env), verification, env, copies["sslrootcert"], copies["sslcert"],
          copies["sslkey"]);
}

void from_node_env(PgConfig& config, const Env& env, const std::string& node_env) {
  const bool production = node_env == "production";
  auto value_or = [&](const char* name, const std::string& fallback) {
    auto value = env.non_empty(name);
    return value ? *value : fallback;
  };
  // pg's defaults in development: $USER, localhost, 5432; libpq supplies the rest.
  std::string user = value_or("DB_USER", production ? "mastodon" : env.get_or("USER", ""));
  std::string password = value_or("DB_PASS", "");
  std::string database = value_or("DB_NAME", production ? "mastodon_production" : "mastodon_development");
  std::string host = value_or("DB_HOST", "localhost");
  int64_t port = env.integer("DB_PORT", 5432);

  config.params.emplace_back("host", host);  // a leading '/' is a socket directory for libpq too
  config.params.emplace_back("port", std::to_string(port));
  if (!user.empty()) config.params.emplace_back("user", user);
  if (!password.empty()) config.params.emplace_back("password", password);
  config.params.emplace_back("dbname", database);
  // Mastodon sets `ssl` only for a non-empty DB_SSLMODE; without one, PGSSLMODE decides.
  const std::string sslmode = env.get_or("DB_SSLMODE", "");
  const Tls tls = sslmode.empty() ? tls_for_pgsslmode(env) : tls_for_sslmode(sslmode);
  add_tls(config, tls, Verification::node_default, env);
}

void append_quoted(std::string& out, const std::string& key, const std::string& value) {
  if (!out.empty()) out += ' ';
  out += key;
  out += "='";
  for (char c : value) {
    if (c == '\'' || c == '\\') out += '\\';
    out += c;
  }
  out += '\'';
}

}  // namespace

std::string PgConfig::conninfo() const {
  std::string out;
  for (const auto& [key, value] : params) append_quoted(out, key, value);
  return out;
}

std::string PgConfig::describe() const {
  std::string out;
  for (const auto& [key, value] : params) {
    if (key != "password") append_quoted(out, key, value);
  }
  out += " pool=" + std::to_string(pool_size);
  return out;
}

std::optional<std::string> PgConfig::param(std::string_view keyword) const {
  for (const auto& [key, value] : params) {
    if (key == keyword) return value;
  }
  return std::nullopt;
}

PgConfig pg_config_from_env(const Env& env) {
  PgConfig config;
  if (auto url = env.non_empty("DATABASE_URL")) {
    from_url(config, env, *url);
  } else {
    std::string node_env = env.non_empty("NODE_ENV").value_or("development");
    if (node_env != "development" && node_env != "production") {
      throw ConfigError("Unable to resolve postgresql database configuration.");
    }
    from_node_env(config, env, node_env);
  }
  // docs/protocol.md#postgresql-configuration: connect timeout 15 000 ms, application_name set to the empty string.
  // (node-postgres falls back to PGAPPNAME for an empty one.) GSS encryption, which
  // libpq tries first when it finds credentials, node-postgres never does.
  config.params.emplace_back("connect_timeout", "15");
  config.params.emplace_back("application_name", env.get_or("PGAPPNAME", ""));
  config.params.emplace_back("client_encoding", "UTF8");
  config.params.emplace_back("gssencmode", "disable");

  int64_t pool = env.integer("DB_POOL", 10);
  // pg-pool takes 0 for its default, 10. A negative size, with which the reference
  // starts and then times every query out, stops here instead, as does a huge one.
  if (pool == 0) pool = 10;
  // One auth worker thread per connection, started together: a size no host could run
  // stops here too.
  if (pool < 0 || pool > 10000) {
    throw ConfigError("Invalid DB_POOL environment variable: " + env.get_or("DB_POOL", ""));
  }
  config.pool_size = static_cast<int>(pool);
  return config;
}

}  // namespace sluice
