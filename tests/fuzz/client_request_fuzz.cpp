// What clients control: query strings and WebSocket subscribe messages. Parsing
// them and planning the stream must never crash, and a plan's channels must be
// valid UTF-8 (they travel in protobuf strings).
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "common/js_json.hpp"
#include "gateway/client_message.hpp"
#include "gateway/query_string.hpp"
#include "gateway/streams.hpp"

using namespace sluice::gateway;

namespace {
void check_plan(std::string_view name, const Params& params) {
  auto planned = plan_stream(name, params, StreamRequester{42, {"read"}});
  if (auto* plan = std::get_if<StreamPlan>(&planned)) {
    for (const auto& channel : plan->channels) {
      if (!sluice::is_valid_utf8(channel)) std::abort();
    }
    if (!sluice::is_valid_utf8(plan->echo_json)) std::abort();
  }
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  Params query = parse_query(text);
  auto path = split_target(text).first;
  if (auto name = stream_name_for_path(path, query)) check_plan(*name, query);
  check_plan(first_string(query, "stream"), query);
  ClientMessage message = parse_client_message(text);
  if (message.request) check_plan(message.request->stream_name, message.request->params);
  return 0;
}
