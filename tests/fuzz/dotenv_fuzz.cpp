// .env files come from admins' hands: any bytes must parse without a crash, and
// every key produced must be a plain variable name.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/env.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  for (const auto& [key, value] : sluice::parse_dotenv(text)) {
    if (key.empty() || key.find('=') != std::string::npos || key.find('\n') != std::string::npos) std::abort();
  }
  sluice::parse_leading_integer(text);
  return 0;
}
