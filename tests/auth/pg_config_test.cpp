// docs/protocol.md#postgresql-configuration: how the PostgreSQL configuration is resolved from the environment.
#include "auth/pg_config.hpp"

#include <gtest/gtest.h>

#include <sys/stat.h>

#include <fstream>

#include "common/config_error.hpp"
#include "tests/support/process.hpp"

namespace sluice {
namespace {

// Files a URL's sslrootcert, sslcert and sslkey can name (read at startup).
struct CertificateFiles {
  testing::TempDir dir;
  std::string ca = dir.path() + "/ca.pem", cert = dir.path() + "/c.pem", key = dir.path() + "/k.pem";
  std::string fifo = dir.path() + "/fifo.pem";
  CertificateFiles() {
    ::mkfifo(fifo.c_str(), 0644);
    for (const auto& [path, text] : {std::pair{ca, "ca"}, {cert, "cert"}, {key, "key"}}) {
      std::ofstream(path) << text;
      ::chmod(path.c_str(), 0644);
    }
  }
};

PgConfig resolve(std::map<std::string, std::string> vars) { return pg_config_from_env(Env::from_map(std::move(vars))); }

std::string param(const PgConfig& config, const std::string& key) { return config.param(key).value_or("<unset>"); }

void expect_error(std::map<std::string, std::string> vars, const std::string& message) {
  try {
    resolve(std::move(vars));
    ADD_FAILURE() << "expected ConfigError: " << message;
  } catch (const ConfigError& e) {
    EXPECT_EQ(e.what(), message);
  }
}

TEST(PgConfigTest, DevelopmentDefaults) {
  auto config = resolve({{"USER", "alice"}});
  EXPECT_EQ(param(config, "host"), "localhost");
  EXPECT_EQ(param(config, "port"), "5432");
  EXPECT_EQ(param(config, "user"), "alice");
  EXPECT_EQ(param(config, "dbname"), "mastodon_development");
  EXPECT_EQ(param(config, "password"), "<unset>");
  EXPECT_EQ(param(config, "sslmode"), "disable");
  EXPECT_EQ(param(config, "connect_timeout"), "15");
  EXPECT_EQ(param(config, "application_name"), "");
  EXPECT_EQ(config.pool_size, 10);
}

TEST(PgConfigTest, EmptyNodeEnvMeansDevelopment) {
  EXPECT_EQ(param(resolve({{"NODE_ENV", ""}}), "dbname"), "mastodon_development");
}

TEST(PgConfigTest, ProductionDefaults) {
  auto config = resolve({{"NODE_ENV", "production"}, {"USER", "alice"}});
  EXPECT_EQ(param(config, "host"), "localhost");
  EXPECT_EQ(param(config, "port"), "5432");
  EXPECT_EQ(param(config, "user"), "mastodon");
  EXPECT_EQ(param(config, "dbname"), "mastodon_production");
  EXPECT_EQ(param(config, "password"), "<unset>");  // '' means no password
}

TEST(PgConfigTest, DbVariablesOverrideDefaults) {
  auto config = resolve({{"NODE_ENV", "production"},
                         {"DB_USER", "u"},
                         {"DB_PASS", "p w'd"},
                         {"DB_NAME", "db"},
                         {"DB_HOST", "pg.internal"},
                         {"DB_PORT", "6543"},
                         {"DB_POOL", "25"}});
  EXPECT_EQ(param(config, "user"), "u");
  EXPECT_EQ(param(config, "password"), "p w'd");
  EXPECT_EQ(param(config, "dbname"), "db");
  EXPECT_EQ(param(config, "host"), "pg.internal");
  EXPECT_EQ(param(config, "port"), "6543");
  EXPECT_EQ(config.pool_size, 25);
}

TEST(PgConfigTest, SocketDirectoryHost) {
  EXPECT_EQ(param(resolve({{"DB_HOST", "/var/run/postgresql"}}), "host"), "/var/run/postgresql");
}

TEST(PgConfigTest, OtherNodeEnvWithoutUrlFails) {
  expect_error({{"NODE_ENV", "test"}}, "Unable to resolve postgresql database configuration.");
  expect_error({{"NODE_ENV", "staging"}}, "Unable to resolve postgresql database configuration.");
}

TEST(PgConfigTest, OtherNodeEnvWithUrlWorks) {
  auto config = resolve({{"NODE_ENV", "test"}, {"DATABASE_URL", "postgres://u@h/d"}});
  EXPECT_EQ(param(config, "host"), "h");
  EXPECT_EQ(param(config, "dbname"), "d");
}

TEST(PgConfigTest, IntegersUseLeadingIntegerParse) {
  auto config = resolve({{"DB_PORT", "6380abc"}, {"DB_POOL", "7x"}});
  EXPECT_EQ(param(config, "port"), "6380");
  EXPECT_EQ(config.pool_size, 7);
  EXPECT_EQ(resolve({{"DB_PORT", ""}, {"DB_POOL", ""}}).pool_size, 10);
  expect_error({{"DB_PORT", "abc"}}, "Invalid DB_PORT environment variable: abc");
  expect_error({{"DB_POOL", "many"}}, "Invalid DB_POOL environment variable: many");
  // pg-pool's `max || 10`: 0 is the default size; a negative one is refused.
  EXPECT_EQ(resolve({{"DB_POOL", "0"}}).pool_size, 10);
  EXPECT_EQ(resolve({{"DB_POOL", "10000"}}).pool_size, 10000);
  expect_error({{"DB_POOL", "-1"}}, "Invalid DB_POOL environment variable: -1");
  expect_error({{"DB_POOL", "10001"}}, "Invalid DB_POOL environment variable: 10001");  // a thread each
}

TEST(PgConfigTest, SslModes) {
  EXPECT_EQ(param(resolve({{"DB_SSLMODE", "disable"}}), "sslmode"), "disable");
  EXPECT_EQ(param(resolve({{"DB_SSLMODE", ""}}), "sslmode"), "disable");
  auto no_verify = resolve({{"DB_SSLMODE", "no-verify"}});
  EXPECT_EQ(param(no_verify, "sslmode"), "require");
  // libpq would check the chain with a root certificate it finds in PGSSLROOTCERT or
  // ~/.postgresql, and send a client certificate it finds there: node-postgres does neither.
  EXPECT_EQ(param(no_verify, "sslrootcert"), "/dev/null/none");
  EXPECT_EQ(param(no_verify, "sslcert"), "/dev/null/none");
  for (const char* mode : {"require", "prefer", "verify-full", "verify-ca", "allow"}) {
    auto verified = resolve({{"DB_SSLMODE", mode}});
    EXPECT_EQ(param(verified, "sslmode"), "verify-full") << mode;
    EXPECT_EQ(param(verified, "sslrootcert"), "/etc/ssl/certs/ca-certificates.crt") << mode;
    EXPECT_EQ(param(verified, "sslcert"), "/dev/null/none") << mode;
  }
  EXPECT_EQ(param(resolve({}), "gssencmode"), "disable");  // node-postgres never encrypts with GSS
}

// Mastodon leaves `ssl` unset without DB_SSLMODE (an empty one included), and then
// node-postgres reads PGSSLMODE, with its own table.
TEST(PgConfigTest, PgSslModeDecidesWhenDbSslModeIsUnset) {
  auto mode_with = [](std::map<std::string, std::string> vars) { return param(resolve(std::move(vars)), "sslmode"); };
  for (const char* mode : {"prefer", "require", "verify-ca", "verify-full"}) {
    EXPECT_EQ(mode_with({{"PGSSLMODE", mode}}), "verify-full") << mode;
    EXPECT_EQ(mode_with({{"PGSSLMODE", mode}, {"DB_SSLMODE", ""}}), "verify-full") << mode;
  }
  EXPECT_EQ(mode_with({{"PGSSLMODE", "no-verify"}}), "require");
  EXPECT_EQ(mode_with({{"PGSSLMODE", "disable"}}), "disable");
  EXPECT_EQ(mode_with({{"PGSSLMODE", "allow"}}), "disable");  // not in pg's table
  EXPECT_EQ(mode_with({}), "disable");
  // DB_SSLMODE set: Mastodon's choice, PGSSLMODE unread.
  EXPECT_EQ(mode_with({{"PGSSLMODE", "require"}, {"DB_SSLMODE", "disable"}}), "disable");
  EXPECT_EQ(mode_with({{"PGSSLMODE", "disable"}, {"DB_SSLMODE", "require"}}), "verify-full");
  // A URL without TLS parameters, or with an `ssl` that is not a boolean, leaves it unset too.
  EXPECT_EQ(mode_with({{"DATABASE_URL", "postgres://h/d"}, {"PGSSLMODE", "require"}}), "verify-full");
  EXPECT_EQ(mode_with({{"DATABASE_URL", "postgres://h/d?ssl=false"}, {"PGSSLMODE", "no-verify"}}), "require");
  EXPECT_EQ(mode_with({{"DATABASE_URL", "postgres://h/d?ssl=0"}, {"PGSSLMODE", "require"}}), "disable");
  EXPECT_EQ(mode_with({{"DATABASE_URL", "postgres://h/d?sslmode=disable"}, {"PGSSLMODE", "require"}}), "disable");
}

// Node's certificate check, where nobody configured one, is off with
// NODE_TLS_REJECT_UNAUTHORIZED=0 (mastodon#26034: DB_SSLMODE=require with it, for a
// database's self-signed certificate).
TEST(PgConfigTest, NodeTlsRejectUnauthorizedZeroTurnsVerificationOff) {
  auto off = resolve({{"DB_SSLMODE", "require"}, {"NODE_TLS_REJECT_UNAUTHORIZED", "0"}});
  EXPECT_EQ(param(off, "sslmode"), "require");
  EXPECT_EQ(param(off, "sslrootcert"), "/dev/null/none");
  EXPECT_EQ(param(resolve({{"PGSSLMODE", "verify-full"}, {"NODE_TLS_REJECT_UNAUTHORIZED", "0"}}), "sslmode"), "require");
  EXPECT_EQ(param(resolve({{"DB_SSLMODE", "require"}, {"NODE_TLS_REJECT_UNAUTHORIZED", "1"}}), "sslmode"), "verify-full");
  EXPECT_EQ(param(resolve({{"DB_SSLMODE", "disable"}, {"NODE_TLS_REJECT_UNAUTHORIZED", "0"}}), "sslmode"), "disable");
  auto url = [](const std::string& query) {
    return param(resolve({{"DATABASE_URL", "postgres://h/d" + query}, {"NODE_TLS_REJECT_UNAUTHORIZED", "0"}}), "sslmode");
  };
  EXPECT_EQ(url("?ssl=true"), "require");
  // A URL with sslmode (or a certificate file): Mastodon 4.3+ sets rejectUnauthorized
  // itself, left undefined, and Node then verifies whatever the variable says.
  EXPECT_EQ(url("?sslmode=require"), "verify-full");
  EXPECT_EQ(url("?sslmode=verify-full"), "verify-full");
}

TEST(PgConfigTest, ApplicationNameIsEmptyUnlessPgAppNameSaysOtherwise) {
  EXPECT_EQ(param(resolve({}), "application_name"), "");
  EXPECT_EQ(param(resolve({{"PGAPPNAME", "streaming"}}), "application_name"), "streaming");
}

TEST(PgConfigTest, UrlParts) {
  auto config = resolve({{"DATABASE_URL", "postgresql://bob:s%40cr%2Ft@db.example:6000/mastodon%20prod?sslmode=disable"}});
  EXPECT_EQ(param(config, "user"), "bob");
  EXPECT_EQ(param(config, "password"), "s@cr/t");
  EXPECT_EQ(param(config, "host"), "db.example");
  EXPECT_EQ(param(config, "port"), "6000");
  EXPECT_EQ(param(config, "dbname"), "mastodon prod");
  EXPECT_EQ(param(config, "sslmode"), "disable");
}

TEST(PgConfigTest, UrlIgnoresDbVariablesExceptPassword) {
  auto config = resolve({{"DATABASE_URL", "postgres://u@h:5433/d"},
                         {"DB_USER", "x"},
                         {"DB_HOST", "y"},
                         {"DB_NAME", "z"},
                         {"DB_PORT", "1"},
                         {"DB_SSLMODE", "require"},
                         {"DB_PASS", "from-env"}});
  EXPECT_EQ(param(config, "user"), "u");
  EXPECT_EQ(param(config, "host"), "h");
  EXPECT_EQ(param(config, "dbname"), "d");
  EXPECT_EQ(param(config, "port"), "5433");
  EXPECT_EQ(param(config, "sslmode"), "disable");
  EXPECT_EQ(param(config, "password"), "from-env");
  // A password in the URL wins over DB_PASS.
  EXPECT_EQ(param(resolve({{"DATABASE_URL", "postgres://u:inurl@h/d"}, {"DB_PASS", "env"}}), "password"), "inurl");
}

TEST(PgConfigTest, UrlWithoutPortOrHost) {
  auto config = resolve({{"DATABASE_URL", "postgres:///d"}});
  EXPECT_EQ(param(config, "host"), "localhost");
  EXPECT_EQ(param(config, "port"), "<unset>");
  EXPECT_EQ(param(config, "dbname"), "d");
  EXPECT_EQ(param(resolve({{"DATABASE_URL", "postgres://u:p@/d"}}), "host"), "localhost");
  EXPECT_EQ(param(resolve({{"DATABASE_URL", "postgres://h"}}), "dbname"), "<unset>");
}

TEST(PgConfigTest, UrlQueryParameters) {
  auto config = resolve({{"DATABASE_URL", "postgres://u@h/d?host=%2Fvar%2Frun%2Fpostgresql&port=5434&options=-c%20x%3Dy"}});
  EXPECT_EQ(param(config, "host"), "/var/run/postgresql");
  EXPECT_EQ(param(config, "port"), "5434");
  EXPECT_EQ(param(config, "options"), "-c x=y");
  // A percent-encoded host is a socket directory.
  EXPECT_EQ(param(resolve({{"DATABASE_URL", "postgres://u@%2Ftmp%2Fpg/d"}}), "host"), "/tmp/pg");
  EXPECT_EQ(param(resolve({{"DATABASE_URL", "postgres://u@[::1]:5432/d"}}), "host"), "::1");
}

TEST(PgConfigTest, UrlSsl) {
  auto ssl_of = [](const std::string& query) { return param(resolve({{"DATABASE_URL", "postgres://h/d" + query}}), "sslmode"); };
  EXPECT_EQ(ssl_of(""), "disable");
  EXPECT_EQ(ssl_of("?sslmode=disable"), "disable");
  EXPECT_EQ(ssl_of("?sslmode=no-verify"), "require");
  EXPECT_EQ(ssl_of("?sslmode=require"), "verify-full");
  EXPECT_EQ(ssl_of("?sslmode=prefer"), "verify-full");
  EXPECT_EQ(ssl_of("?sslmode=verify-ca"), "verify-full");
  EXPECT_EQ(ssl_of("?ssl=true"), "verify-full");
  EXPECT_EQ(ssl_of("?ssl=1"), "verify-full");
  EXPECT_EQ(ssl_of("?ssl=0"), "disable");
  EXPECT_EQ(ssl_of("?sslnegotiation=direct"), "verify-full");  // pg-connection-string 2.14
  EXPECT_EQ(ssl_of("?ssl=0&sslnegotiation=direct"), "disable");
  EXPECT_EQ(ssl_of("?ssl=false&sslnegotiation=direct"), "disable");  // a string `ssl`: PGSSLMODE's (none)
  CertificateFiles files;
  auto with_certs = resolve({{"DATABASE_URL", "postgres://h/d?sslrootcert=" + files.ca + "&sslcert=" + files.cert +
                                                  "&sslkey=" + files.key}});
  EXPECT_EQ(param(with_certs, "sslmode"), "verify-full");
  // Each file goes to libpq as the private copy read at startup (as the reference reads
  // them; libpq refuses a key others may read, as a Kubernetes Secret is mounted, 0644).
  for (const auto& [parameter, text] : {std::pair{"sslrootcert", "ca"}, {"sslcert", "cert"}, {"sslkey", "key"}}) {
    const std::string copy = param(with_certs, parameter);
    ASSERT_EQ(copy.rfind("/proc/self/fd/", 0), 0u) << parameter << ": " << copy;
    struct stat copy_stat {};
    ASSERT_EQ(::stat(copy.c_str(), &copy_stat), 0) << parameter;
    EXPECT_EQ(copy_stat.st_mode & 077, 0u) << parameter;
    std::ifstream in(copy);
    EXPECT_EQ(std::string(std::istreambuf_iterator<char>(in), {}), text) << parameter;
  }
  EXPECT_EQ(param(with_certs, "sslcrl"), "/dev/null/none");  // libpq's own revocation lists: unread
  // A certificate without its key is not sent (Node's way; libpq would look for the key).
  auto cert_alone = resolve({{"DATABASE_URL", "postgres://h/d?sslcert=" + files.cert}});
  EXPECT_EQ(param(cert_alone, "sslcert"), "/dev/null/none");
  EXPECT_EQ(param(cert_alone, "sslkey"), "/dev/null/none");
  // Read at startup by the reference: a file that is not there, or not a file, stops it.
  for (const char* parameter : {"sslrootcert", "sslcert", "sslkey"}) {
    expect_error({{"DATABASE_URL", std::string("postgres://h/d?") + parameter + "=/nonexistent/file.pem"}},
                 std::string("Invalid DATABASE_URL environment variable: ") + parameter +
                     " /nonexistent/file.pem: No such file or directory");
    expect_error({{"DATABASE_URL", std::string("postgres://h/d?") + parameter + "=" + files.dir.path()}},
                 std::string("Invalid DATABASE_URL environment variable: ") + parameter + " " + files.dir.path() +
                     ": Is a directory");
    // A FIFO is refused at once (opened non-blocking: no writer would ever come).
    expect_error({{"DATABASE_URL", std::string("postgres://h/d?") + parameter + "=" + files.fifo}},
                 std::string("Invalid DATABASE_URL environment variable: ") + parameter + " " + files.fifo +
                     ": Invalid argument");
  }
}

// NODE_EXTRA_CA_CERTS that is not a readable file: Node's warning, and the system CAs
// alone (a FIFO does not hold the start).
TEST(PgConfigTest, ExtraCaCertsThatAreNotAFileLeaveTheSystemCas) {
  CertificateFiles files;
  for (const std::string& extra : {files.fifo, files.dir.path(), files.dir.path() + "/missing.pem"}) {
    auto config = resolve({{"NODE_ENV", "production"}, {"DB_SSLMODE", "require"}, {"NODE_EXTRA_CA_CERTS", extra}});
    EXPECT_EQ(param(config, "sslrootcert"), "/etc/ssl/certs/ca-certificates.crt") << extra;
  }
  auto with_extra = resolve({{"NODE_ENV", "production"}, {"DB_SSLMODE", "require"}, {"NODE_EXTRA_CA_CERTS", files.ca}});
  EXPECT_EQ(param(with_extra, "sslrootcert").rfind("/proc/self/fd/", 0), 0u);
}

// pg-connection-string's uselibpqcompat=true (2.8 and later: Mastodon 4.4 and later):
// sslmode as libpq reads it, but with the host name checked wherever a certificate is,
// as Mastodon hands node-postgres only the certificates and rejectUnauthorized.
TEST(PgConfigTest, UrlSslLibpqCompatible) {
  CertificateFiles files;
  auto config_of = [](const std::string& query) {
    return resolve({{"DATABASE_URL", "postgres://h/d?uselibpqcompat=true&" + query}});
  };
  EXPECT_EQ(param(config_of("sslmode=disable"), "sslmode"), "disable");
  EXPECT_EQ(param(config_of("sslmode=prefer"), "sslmode"), "require");
  EXPECT_EQ(param(config_of("sslmode=require"), "sslmode"), "require");
  EXPECT_EQ(param(config_of("sslmode=require"), "sslrootcert"), "/dev/null/none");
  EXPECT_EQ(param(config_of("sslmode=require&sslrootcert=" + files.ca), "sslmode"), "verify-full");
  EXPECT_EQ(param(config_of("sslmode=require&sslrootcert=" + files.ca), "sslrootcert").rfind("/proc/self/fd/", 0), 0u);
  EXPECT_EQ(param(config_of("sslmode=verify-ca&sslrootcert=" + files.ca), "sslmode"), "verify-full");
  EXPECT_EQ(param(config_of("sslmode=verify-full"), "sslmode"), "verify-full");
  // Not a mode the compatible reading knows: left verified, as pg-connection-string leaves it.
  EXPECT_EQ(param(config_of("sslmode=no-verify"), "sslmode"), "verify-full");
  expect_error({{"DATABASE_URL", "postgres://h/d?uselibpqcompat=true&sslmode=verify-ca"}},
               "SECURITY WARNING: Using sslmode=verify-ca requires specifying a CA with sslrootcert.");
  // Only the exact string "true" turns it on.
  EXPECT_EQ(param(resolve({{"DATABASE_URL", "postgres://h/d?uselibpqcompat=1&sslmode=require"}}), "sslmode"),
            "verify-full");
}

TEST(PgConfigTest, UrlInvalidPort) {
  const std::string message = "Invalid port specified in DATABASE_URL environment variable";
  expect_error({{"DATABASE_URL", "postgres://u@h:abc/d"}}, message);
  expect_error({{"DATABASE_URL", "postgres://u@h:99999/d"}}, message);
  expect_error({{"DATABASE_URL", "postgres://u@h/d?port=abc"}}, message);
  // The query's port is read with parseInt.
  EXPECT_EQ(param(resolve({{"DATABASE_URL", "postgres://u@h/d?port=5999x"}}), "port"), "5999");
}

TEST(PgConfigTest, SocketPathForm) {
  auto config = resolve({{"DATABASE_URL", "/var/run/postgresql mastodon"}});
  EXPECT_EQ(param(config, "host"), "/var/run/postgresql");
  EXPECT_EQ(param(config, "dbname"), "mastodon");
}

TEST(PgConfigTest, ConninfoQuotesAndDescribeHidesPassword) {
  auto config = resolve({{"DATABASE_URL", "postgres://u:it's%5Csecret@h/d"}});
  const std::string conninfo = config.conninfo();
  EXPECT_NE(conninfo.find("password='it\\'s\\\\secret'"), std::string::npos) << conninfo;
  EXPECT_NE(conninfo.find("application_name=''"), std::string::npos) << conninfo;
  EXPECT_NE(conninfo.find("connect_timeout='15'"), std::string::npos) << conninfo;
  const std::string description = config.describe();
  EXPECT_EQ(description.find("secret"), std::string::npos) << description;
  EXPECT_EQ(description.find("password"), std::string::npos) << description;
  EXPECT_NE(description.find("host='h'"), std::string::npos) << description;
}

}  // namespace
}  // namespace sluice
