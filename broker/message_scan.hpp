#pragma once
// The quick way through a Redis message whose payload clients receive as it is
// (docs/protocol.md#payload-serialisation): one pass over the text that checks it and writes
// the payload as JSON.stringify(JSON.parse(text).payload) would, without building a tree.
// Building nlohmann's ordered tree of a 2 KB status (an allocation per key and string) was
// a quarter of the server's CPU on a load of home timelines and lists
// (docs/benchmarks.md#the-headline-a-realistic-load-2026-12-03).
//
// It takes only the ordinary case and answers nullopt for anything else — invalid UTF-8,
// a key with an escape or starting with a digit, a repeated key, a lone surrogate, a
// number beyond a double, deep nesting, an event that is not a non-empty string, a falsy
// or scalar payload — so that the full parse (redis_message.cpp) stays the one authority
// on everything unusual. The fuzzer `redis_message` holds the two to the same answer.
#include <optional>
#include <string>
#include <string_view>

namespace sluice {

struct ScannedMessage {
  std::string event;    // String(message.event): a non-empty string
  std::string payload;  // what clients receive: the string payload raw, else its JSON.stringify
};

std::optional<ScannedMessage> scan_plain_message(std::string_view text);

}  // namespace sluice
