// JSON.stringify round trip: whatever nlohmann parses, js_stringify writes as
// JSON that parses back to an equal value (numbers compared as JS doubles) and
// that re-serialises to the same bytes.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/js_json.hpp"

namespace {

using json = nlohmann::ordered_json;

double as_double(const json& value) {
  if (value.is_number_integer() && value.is_number_unsigned()) return static_cast<double>(value.get<std::uint64_t>());
  if (value.is_number_integer()) return static_cast<double>(value.get<std::int64_t>());
  return value.get<double>();
}

bool same_js_value(const json& a, const json& b) {
  if (a.is_number() && b.is_number()) return as_double(a) == as_double(b);
  if (a.type() != b.type()) return false;
  if (a.is_object()) {
    // The same members; their order is JavaScript's (array indices first), which the
    // second serialisation below pins.
    if (a.size() != b.size()) return false;
    for (auto left = a.begin(); left != a.end(); ++left) {
      auto right = b.find(left.key());
      if (right == b.end() || !same_js_value(left.value(), *right)) return false;
    }
    return true;
  }
  if (a.is_array()) {
    if (a.size() != b.size()) return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
      if (!same_js_value(a[i], b[i])) return false;
    }
    return true;
  }
  return a == b;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  if (sluice::json_nesting_exceeds(text, 256)) return 0;
  const json value = json::parse(text, nullptr, /*allow_exceptions=*/false);
  if (value.is_discarded()) return 0;
  const std::string written = sluice::js_stringify(value);
  if (!sluice::is_valid_utf8(written)) std::abort();
  const json reread = json::parse(written, nullptr, /*allow_exceptions=*/false);
  if (reread.is_discarded() || !same_js_value(value, reread)) std::abort();
  if (sluice::js_stringify(reread) != written) std::abort();
  return 0;
}
