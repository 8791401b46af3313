#include "tests/support/pki.hpp"

#include <cstdlib>
#include <fstream>
#include <stdexcept>

namespace sluice::testing {

namespace {
void run(const std::string& command) {
  if (std::system((command + " >/dev/null 2>&1").c_str()) != 0) throw std::runtime_error("failed: " + command);
}
}  // namespace

void TestPki::make_ca(const std::string& ca) {
  run("openssl req -x509 -newkey rsa:2048 -nodes -days 2 -subj /CN=" + ca + " -keyout " + path(ca + ".key") +
      " -out " + path(ca + ".pem"));
}

void TestPki::make_cert(const std::string& name, const std::string& ca, const std::string& subject_alt_names) {
  std::ofstream(path(name + ".ext")) << "subjectAltName=" << subject_alt_names << "\n"
                                        "extendedKeyUsage=serverAuth,clientAuth\n";
  run("openssl req -newkey rsa:2048 -nodes -subj /CN=" + name + " -keyout " + path(name + ".key") + " -out " +
      path(name + ".csr"));
  run("openssl x509 -req -days 2 -in " + path(name + ".csr") + " -CA " + path(ca + ".pem") + " -CAkey " +
      path(ca + ".key") + " -CAcreateserial -extfile " + path(name + ".ext") + " -out " + path(name + ".pem"));
}


}  // namespace sluice::testing
