// Any bytes published on a Redis channel: parse_redis_message must never crash,
// whatever it keeps must be valid UTF-8 (protobuf string fields, WS text), and the quick
// pass of unfiltered channels must agree with the full parse.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

#include "common/js_json.hpp"
#include "broker/redis_message.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const std::string_view text(reinterpret_cast<const char*>(data), size);
  sluice::v1::ChannelEvent event;
  const auto verdict = sluice::parse_redis_message("timeline:public", text, event);
  if (!sluice::is_valid_utf8(event.event()) || !sluice::is_valid_utf8(event.payload())) std::abort();
  if (verdict == sluice::RedisMessageVerdict::deliver && event.payload().empty()) std::abort();
  if (verdict != sluice::RedisMessageVerdict::deliver && !event.payload().empty()) std::abort();
  if (event.has_status()) {
    const auto& status = event.status();
    if (!sluice::is_valid_utf8(status.filter_text()) || !sluice::is_valid_utf8(status.account_id())) std::abort();
    if (status.mention_ids_size() != status.mention_ids_num_size()) std::abort();
  }
  std::string wire;
  if (!event.SerializeToString(&wire)) std::abort();
  // A home channel takes the quick pass (broker/message_scan.hpp) where the message is
  // ordinary; clients must receive exactly what the full parse gives.
  sluice::v1::ChannelEvent quick;
  const auto quick_verdict = sluice::parse_redis_message("timeline:1", text, quick);
  if (quick_verdict != verdict || quick.event() != event.event() || quick.payload() != event.payload()) std::abort();
  return 0;
}
