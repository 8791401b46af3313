#pragma once
// One Redis pub/sub message as Mastodon's Rails side publishes it (docs/protocol.md#messages-from-rails),
// parsed ONCE by the broker into what every gateway needs.
#include <string>
#include <string_view>

#include "sluice/v1/broker.pb.h"

namespace sluice {

enum class RedisMessageVerdict {
  deliver,         // event and payload are truthy: forward to stream subscribers
  system_only,     // has a truthy event but no usable payload: only system channels react (kill, filters_changed)
  invalid_json,    // not JSON: logged and dropped
  not_an_object,   // array/number/string/…: dropped
  no_event,        // missing or falsy event: dropped
  invalid_channel,  // a channel name that is not UTF-8 (only a pattern subscription hands one over): dropped
};

// Parses `text` published on `channel` (namespace already stripped) into `out`:
// channel, event, payload exactly as clients receive it (JS JSON.stringify of an
// object payload, the raw string of a string payload, docs/protocol.md#payload-serialisation), and for
// update/status.update with an object payload on a channel of filtered streams
// (timeline:public*, timeline:hashtag:*) the StatusFacts of docs/protocol.md#status-fields-used, including
// the custom-filter search text of docs/protocol.md#searched-text. Never throws; never crashes on any input.
RedisMessageVerdict parse_redis_message(std::string_view channel, std::string_view text,
                                        sluice::v1::ChannelEvent& out);

// Sets system_channel, system_id and system_id_valid of `out` from `channel`
// (docs/protocol.md#system-channels). parse_redis_message calls it.
void classify_system_channel(std::string_view channel, sluice::v1::ChannelEvent& out);

}  // namespace sluice
