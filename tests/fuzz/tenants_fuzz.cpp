// The tenants file comes from a provider's hands, and Host headers from anyone: any
// bytes must parse or be refused with ConfigError, never crash, and every host of a
// parsed file must find its own tenant.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/config_error.hpp"
#include "common/tenants.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::normalized_host(text);
  try {
    const auto tenants = sluice::Tenants::parse(text, sluice::Env::from_map({}));
    for (const auto& tenant : tenants.all()) {
      for (const auto& host : tenant.hosts) {
        if (tenants.for_host(host) != &tenant) std::abort();
      }
    }
  } catch (const sluice::ConfigError&) {
  }
  return 0;
}
