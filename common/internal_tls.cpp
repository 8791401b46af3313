#include "common/internal_tls.hpp"

#include <grpcpp/security/server_credentials.h>
#include <grpcpp/security/tls_certificate_provider.h>
#include <grpcpp/security/tls_credentials_options.h>

#include <fstream>
#include <sstream>

#include "common/config_error.hpp"

namespace sluice {

namespace {

void require_pem(const std::string& variable, const std::string& path, const std::string& marker) {
  std::ifstream file(path);
  if (!file) throw ConfigError("Invalid " + variable + " environment variable: cannot read " + path);
  std::stringstream text;
  text << file.rdbuf();
  if (text.str().find("-----BEGIN ") == std::string::npos || text.str().find(marker) == std::string::npos) {
    throw ConfigError("Invalid " + variable + " environment variable: " + path + " holds no PEM " + marker);
  }
}

std::shared_ptr<grpc::experimental::CertificateProviderInterface> watched_files(const InternalTls& tls) {
  return std::make_shared<grpc::experimental::FileWatcherCertificateProvider>(tls.key_path, tls.cert_path, tls.ca_path,
                                                                             tls.refresh_seconds);
}

}  // namespace

InternalTls InternalTls::from_env(const Env& env) {
  InternalTls tls;
  tls.cert_path = env.get_or("SLUICE_TLS_CERT", "");
  tls.key_path = env.get_or("SLUICE_TLS_KEY", "");
  tls.ca_path = env.get_or("SLUICE_TLS_CA", "");
  tls.server_name = env.get_or("SLUICE_TLS_SERVER_NAME", "");
  int64_t refresh = env.non_negative("SLUICE_TLS_REFRESH_SECONDS", 10);
  if (refresh < 1 || refresh > 86400) {
    throw ConfigError("Invalid SLUICE_TLS_REFRESH_SECONDS environment variable: expected 1 to 86400 seconds");
  }
  tls.refresh_seconds = static_cast<unsigned>(refresh);
  int given = !tls.cert_path.empty() + !tls.key_path.empty() + !tls.ca_path.empty();
  if (given == 0) return tls;
  if (given != 3) {
    throw ConfigError("SLUICE_TLS_CERT, SLUICE_TLS_KEY and SLUICE_TLS_CA must be set together (mutual TLS between tiers)");
  }
  require_pem("SLUICE_TLS_CERT", tls.cert_path, "CERTIFICATE");
  require_pem("SLUICE_TLS_KEY", tls.key_path, "PRIVATE KEY");
  require_pem("SLUICE_TLS_CA", tls.ca_path, "CERTIFICATE");
  return tls;
}

std::shared_ptr<grpc::ServerCredentials> internal_server_credentials(const InternalTls& tls) {
  if (!tls.enabled()) return grpc::InsecureServerCredentials();
  grpc::experimental::TlsServerCredentialsOptions options(watched_files(tls));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  // Mutual: a peer without a certificate signed by SLUICE_TLS_CA never gets a call in.
  options.set_cert_request_type(GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY);
  return grpc::experimental::TlsServerCredentials(options);
}

std::shared_ptr<grpc::ChannelCredentials> internal_channel_credentials(const InternalTls& tls) {
  if (!tls.enabled()) return grpc::InsecureChannelCredentials();
  grpc::experimental::TlsChannelCredentialsOptions options;
  options.set_certificate_provider(watched_files(tls));
  options.watch_root_certs();
  options.watch_identity_key_cert_pairs();
  options.set_verify_server_certs(true);
  return grpc::experimental::TlsCredentials(options);
}

}  // namespace sluice
