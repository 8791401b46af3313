#pragma once
// A startup configuration problem: printed as one line, then the process exits non-zero.
#include <stdexcept>
#include <string>

namespace sluice {

struct ConfigError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

}  // namespace sluice
