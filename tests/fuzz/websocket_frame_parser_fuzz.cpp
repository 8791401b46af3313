// Client bytes in arbitrary chunks: the parser never crashes, reports the same
// events however the bytes are split, and keeps its guarantees (text is UTF-8,
// control payloads fit 125 bytes, nothing after close or error).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <vector>

#include "common/js_json.hpp"
#include "gateway/websocket_protocol.hpp"

namespace {

using sluice::WebSocketEvent;

bool same_events(const std::vector<WebSocketEvent>& a, const std::vector<WebSocketEvent>& b) {
  if (a.size() != b.size()) return false;
  for (std::size_t i = 0; i < a.size(); ++i) {
    if (a[i].kind != b[i].kind || a[i].code != b[i].code || a[i].data != b[i].data) return false;
  }
  return true;
}

void check_guarantees(const std::vector<WebSocketEvent>& events) {
  for (std::size_t i = 0; i < events.size(); ++i) {
    const WebSocketEvent& event = events[i];
    const bool last = i + 1 == events.size();
    switch (event.kind) {
      case WebSocketEvent::Kind::text:
        if (!sluice::is_valid_utf8(event.data)) std::abort();
        break;
      case WebSocketEvent::Kind::ping:
      case WebSocketEvent::Kind::pong:
        if (event.data.size() > 125) std::abort();
        break;
      case WebSocketEvent::Kind::close:
        if (!last || !sluice::is_valid_utf8(event.data) || event.data.size() > 123) std::abort();
        break;
      case WebSocketEvent::Kind::protocol_error:
        if (!last || (event.code != 1002 && event.code != 1007 && event.code != 1009)) std::abort();
        break;
      case WebSocketEvent::Kind::binary: break;
    }
  }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size < 2) return 0;
  // First byte: message size limit; second: seed for the chunk sizes.
  const std::size_t max_message_size = data[0] < 16 ? sluice::WebSocketFrameParser::kDefaultMaxMessageSize : data[0] * 4;
  unsigned seed = data[1];
  const char* bytes = reinterpret_cast<const char*>(data + 2);
  const std::size_t length = size - 2;

  sluice::WebSocketFrameParser whole(max_message_size);
  const std::vector<WebSocketEvent> expected = whole.feed(bytes, length);
  check_guarantees(expected);

  sluice::WebSocketFrameParser chunked(max_message_size);
  std::vector<WebSocketEvent> events;
  std::size_t pos = 0;
  while (pos < length) {
    seed = seed * 1103515245u + 12345u;
    const std::size_t chunk = std::min<std::size_t>(length - pos, 1 + (seed >> 16) % 17);
    chunked.feed(bytes + pos, chunk, events);
    pos += chunk;
  }
  if (!same_events(expected, events) || whole.finished() != chunked.finished()) std::abort();
  if (whole.buffered_bytes() != chunked.buffered_bytes()) std::abort();
  return 0;
}
