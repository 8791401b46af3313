// TLS to PostgreSQL as the reference's node-postgres makes it (docs/protocol.md#postgresql-configuration),
// against the suite's real PostgreSQL with a certificate from a private CA: the CA is
// trusted through NODE_EXTRA_CA_CERTS, as Node trusts it (the Mastodon chart's
// `streaming.extraCerts`), and `uselibpqcompat=true` gives sslmode libpq's meanings.
#include <gtest/gtest.h>

#include <pqxx/pqxx>

#include <cstdlib>
#include <filesystem>

#include "auth/pg_config.hpp"
#include "tests/auth/auth_test_support.hpp"
#include "tests/support/pki.hpp"

namespace sluice {
namespace {

using auth_test::shared_pg;

class PostgresTls : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    pki_ = new testing::TestPki;
    pki_->make_ca("private-ca");
    pki_->make_cert("db", "private-ca");
    shared_pg().enable_tls(pki_->path("db.pem"), pki_->path("db.key"));
  }
  // The suite's PostgreSQL is shared: later tests connect as before, without TLS.
  static void TearDownTestSuite() {
    shared_pg().disable_tls();
    delete pki_;
  }

  static std::map<std::string, std::string> production_env() {
    return {{"NODE_ENV", "production"},
            {"DB_HOST", "127.0.0.1"},
            {"DB_PORT", std::to_string(shared_pg().port())},
            {"DB_USER", shared_pg().user()},
            {"DB_NAME", shared_pg().database()}};
  }
  // Whether a connection made from `env` works, and then that it is encrypted.
  static bool connects_with_tls(std::map<std::string, std::string> env) {
    return connects_with_tls(pg_config_from_env(Env::from_map(std::move(env))));
  }
  // The same, to this server under another name (libpq's hostaddr: the name is what the
  // certificate is checked against).
  static bool connects_with_tls_as(std::map<std::string, std::string> env, const std::string& host_name) {
    PgConfig config = pg_config_from_env(Env::from_map(std::move(env)));
    for (auto& [key, value] : config.params) {
      if (key == "host") value = host_name;
    }
    config.params.emplace_back("hostaddr", "127.0.0.1");
    return connects_with_tls(config);
  }
  static bool connects_with_tls(const PgConfig& config) {
    try {
      pqxx::connection connection(config.conninfo());
      pqxx::nontransaction tx(connection);
      return tx.exec("SELECT ssl FROM pg_stat_ssl WHERE pid = pg_backend_pid()")[0][0].as<bool>();
    } catch (const pqxx::broken_connection&) {
      return false;
    }
  }

  static testing::TestPki* pki_;
};
testing::TestPki* PostgresTls::pki_ = nullptr;

TEST_F(PostgresTls, APrivateCaIsTrustedThroughNodeExtraCaCerts) {
  auto env = production_env();
  env["DB_SSLMODE"] = "require";  // verified, as node-postgres verifies it
  EXPECT_FALSE(connects_with_tls(env)) << "the system CAs alone must not trust the private CA";
  env["NODE_EXTRA_CA_CERTS"] = pki_->path("private-ca.pem");
  EXPECT_TRUE(connects_with_tls(env));
  // The extra file is added to the system CAs, not put in their place.
  const PgConfig config = pg_config_from_env(Env::from_map(env));
  const std::string roots = config.param("sslrootcert").value_or("");
  ASSERT_EQ(roots.rfind("/proc/self/fd/", 0), 0u) << roots;
  std::ifstream bundle(roots);
  std::string text((std::istreambuf_iterator<char>(bundle)), std::istreambuf_iterator<char>());
  std::ifstream system_bundle("/etc/ssl/certs/ca-certificates.crt");
  std::string system_text((std::istreambuf_iterator<char>(system_bundle)), std::istreambuf_iterator<char>());
  EXPECT_EQ(text.rfind(system_text, 0), 0u) << "the system CAs come first";
  EXPECT_GT(text.size(), system_text.size());
}

TEST_F(PostgresTls, AnUnreadableExtraFileLeavesTheSystemCas) {
  auto env = production_env();
  env["DB_SSLMODE"] = "require";
  env["NODE_EXTRA_CA_CERTS"] = "/nonexistent/extra.pem";
  EXPECT_EQ(pg_config_from_env(Env::from_map(env)).param("sslrootcert"), "/etc/ssl/certs/ca-certificates.crt");
  EXPECT_FALSE(connects_with_tls(env));
}

TEST_F(PostgresTls, LibpqCompatibleRequireEncryptsWithoutChecking) {
  auto env = production_env();
  const std::string base = "postgres://" + shared_pg().user() + "@127.0.0.1:" + std::to_string(shared_pg().port()) +
                           "/" + shared_pg().database();
  env["DATABASE_URL"] = base + "?sslmode=require";
  EXPECT_FALSE(connects_with_tls(env)) << "without uselibpqcompat, require verifies";
  env["DATABASE_URL"] = base + "?sslmode=require&uselibpqcompat=true";
  EXPECT_TRUE(connects_with_tls(env));
  // With a root certificate named, require checks the chain, and (as Mastodon passes
  // node-postgres no checkServerIdentity) the name: a certificate for another host is refused.
  const std::string rootcert = "&uselibpqcompat=true&sslrootcert=" + pki_->path("private-ca.pem");
  env["DATABASE_URL"] = base + "?sslmode=require" + rootcert;
  EXPECT_TRUE(connects_with_tls(env));
  for (const char* mode : {"require", "verify-ca"}) {
    env["DATABASE_URL"] = base + "?sslmode=" + mode + rootcert;
    EXPECT_TRUE(connects_with_tls_as(env, "localhost")) << mode;  // a name the certificate has
    EXPECT_FALSE(connects_with_tls_as(env, "db.elsewhere.example")) << mode << ": accepted for another name";
  }
}

// NODE_TLS_REJECT_UNAUTHORIZED=0 (mastodon#26034): encrypted, nothing checked.
TEST_F(PostgresTls, NodeTlsRejectUnauthorizedZeroConnectsToAnUntrustedCertificate) {
  auto env = production_env();
  env["DB_SSLMODE"] = "require";
  EXPECT_FALSE(connects_with_tls(env));
  env["NODE_TLS_REJECT_UNAUTHORIZED"] = "0";
  EXPECT_TRUE(connects_with_tls(env));
}

// libpq's own files, which node-postgres never reads: a root certificate in
// ~/.postgresql would make an unverified connection check the chain (and refuse this
// server's), and revocation lists there would be checked.
TEST_F(PostgresTls, LibpqsOwnFilesInHomeAreNotRead) {
  pki_->make_ca("unrelated-ca");
  testing::TempDir home;
  std::filesystem::create_directories(home.path() + "/.postgresql");
  std::filesystem::copy_file(pki_->path("unrelated-ca.pem"), home.path() + "/.postgresql/root.crt");
  // HOME as libpq reads it, put back however the test ends.
  struct HomeFor {
    explicit HomeFor(const std::string& path) : had(std::getenv("HOME") != nullptr), saved(had ? std::getenv("HOME") : "") {
      ::setenv("HOME", path.c_str(), 1);
    }
    ~HomeFor() { had ? ::setenv("HOME", saved.c_str(), 1) : ::unsetenv("HOME"); }
    bool had;
    std::string saved;
  } home_for(home.path());
  auto env = production_env();
  env["DB_SSLMODE"] = "no-verify";
  const bool connected = connects_with_tls(env);
  env["NODE_EXTRA_CA_CERTS"] = pki_->path("private-ca.pem");
  env["DB_SSLMODE"] = "require";  // verified against the CAs given, not root.crt
  const bool verified = connects_with_tls(env);
  EXPECT_TRUE(connected) << "no-verify checked the chain against ~/.postgresql/root.crt";
  EXPECT_TRUE(verified);
}

// PGSSLMODE, when Mastodon's variables leave TLS unset.
TEST_F(PostgresTls, PgSslModeIsReadWithoutDbSslMode) {
  auto env = production_env();
  env["PGSSLMODE"] = "no-verify";
  EXPECT_TRUE(connects_with_tls(env));
  env["PGSSLMODE"] = "require";
  EXPECT_FALSE(connects_with_tls(env)) << "verified: the private CA is not trusted";
  env["NODE_EXTRA_CA_CERTS"] = pki_->path("private-ca.pem");
  EXPECT_TRUE(connects_with_tls(env));
}

}  // namespace
}  // namespace sluice
