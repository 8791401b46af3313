#include "gateway/client_message.hpp"

#include "common/js_json.hpp"

namespace sluice::gateway {
namespace {

// nlohmann's DOM is recursive: absurd nesting is refused before parsing.
constexpr std::size_t kMaxNesting = 256;

bool is_read_field(std::string_view key) { return key == "type" || key == "stream" || key == "tag" || key == "list"; }

// The reference takes an array's first element (`firstParam`) and compares the result
// with the stream names as it is: anything but a string names no stream.
std::string stream_name(const Params& message) {
  auto it = message.find("stream");
  if (it == message.end()) return {};
  const Params* value = &*it;
  if (value->is_array() && !value->empty()) value = &(*value)[0];
  return value->is_string() ? value->get<std::string>() : std::string();
}

}  // namespace

size_t ClientRequest::bytes() const {
  size_t total = sizeof(ClientRequest) + stream_name.size();
  for (const auto& [key, value] : params.items()) {
    total += 64 + key.size() + (value.is_string() ? value.get_ref<const std::string&>().size() : 0);
  }
  return total;
}

ClientMessage parse_client_message(std::string_view text) {
  if (json_nesting_exceeds(text, kMaxNesting)) return {std::nullopt, "websocket message nested too deeply; ignored"};
  // JSON.parse refuses a byte order mark, which nlohmann would skip.
  if (text.starts_with("\xEF\xBB\xBF")) return {std::nullopt, "websocket message is not JSON; ignored"};
  // Only the top level's type, stream, tag and list are ever read, and of an object
  // below them only that it is one (truthy, "[object Object]" as a string): every other
  // key is skipped as the parser meets it. Kept, each key would be looked up among
  // those before it (the ordered DOM's map is a list), so a message of many keys would
  // cost the square of their number: seconds of a worker's time for one message.
  auto keep = [](int depth, Params::parse_event_t event, Params& parsed) {
    if (event != Params::parse_event_t::key) return true;
    return depth == 1 && is_read_field(parsed.get_ref<const std::string&>());
  };
  Params message = Params::parse(text, keep, /*allow_exceptions=*/false);
  if (message.is_discarded()) return {std::nullopt, "websocket message is not JSON; ignored"};
  if (!message.is_object()) return {};  // falsy values and non-objects carry no fields
  auto type = message.find("type");
  if (type == message.end() || !type->is_string()) return {};
  const auto& kind = type->get_ref<const std::string&>();
  if (kind != "subscribe" && kind != "unsubscribe") return {};
  ClientRequest request{kind == "subscribe", stream_name(message), Params::object()};
  for (const char* field : {"tag", "list"}) {
    auto it = message.find(field);
    if (it == message.end()) continue;
    // Of an array parameter only that it is one matters (a tag must be a string; a list
    // id that is an array is refused), so a queued request does not hold its elements.
    request.params[field] = it->is_array() ? Params::array() : std::move(*it);
  }
  return {std::move(request)};
}

}  // namespace sluice::gateway
