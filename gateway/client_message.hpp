#pragma once
// One WebSocket text message from a client (docs/protocol.md#client-messages), read as
// the reference reads it. Parsing only: the session acts on the result.
#include <optional>
#include <string>
#include <string_view>

#include "gateway/query_string.hpp"

namespace sluice::gateway {

// A subscribe or unsubscribe request: the stream it names and its parameters.
struct ClientRequest {
  bool subscribe = true;
  std::string stream_name;  // empty when `stream` is missing or not a string: no stream has that name
  Params params;            // `tag` and `list`, as sent

  // About what it holds in memory: its strings, and a little for the rest.
  size_t bytes() const;
};

struct ClientMessage {
  std::optional<ClientRequest> request;  // none for a message the reference ignores
  const char* ignored_because = nullptr;  // for the debug log: not JSON, or nested too deeply
};

ClientMessage parse_client_message(std::string_view text);

}  // namespace sluice::gateway
