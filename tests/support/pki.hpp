#pragma once
// A throwaway PKI for TLS tests, made with the openssl command: CAs, and
// certificates for localhost / 127.0.0.1 usable as server and as client.
#include <string>

#include "tests/support/process.hpp"

namespace sluice::testing {

class TestPki {
 public:
  // <dir>/<name>: e.g. path("ca.pem"), path("tier.key").
  std::string path(const std::string& name) const { return dir_.path() + "/" + name; }
  // <ca>.pem and <ca>.key.
  void make_ca(const std::string& ca);
  // <name>.pem and <name>.key, signed by <ca>, for the names in `subject_alt_names`.
  void make_cert(const std::string& name, const std::string& ca,
                 const std::string& subject_alt_names = "DNS:localhost,IP:127.0.0.1");

 private:
  TempDir dir_;
};

}  // namespace sluice::testing
