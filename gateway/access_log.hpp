#pragma once
// The access log (docs/protocol.md#access-log): one JSON line at info when a
// request is answered and one when a stream ends. Every value that can carry a
// token is redacted here, in one place.
#include <chrono>
#include <cstdint>
#include <string>
#include <string_view>

namespace sluice::gateway {

// The request target with the value of every token-bearing query parameter
// (access_token, however percent-encoded) replaced by "[Redacted]".
std::string redact_target(std::string_view target);

// What the log needs to know about a request after its HTTP exchange is over;
// kept by a streaming client until its stream ends.
struct RequestRecord {
  std::string request_id;
  std::string method;
  std::string target;  // already redacted
  std::string client_ip;
  // The instance the request is for (docs/hosting.md#tenants); empty without a tenants file.
  std::string tenant;
  std::chrono::steady_clock::time_point started;
  // Streams subscribed on the connection, comma-separated, each once.
  std::string streams;
  void add_stream(std::string_view name);
};

// A request answered (for a stream: its first response, 200 or 101).
void log_request(const RequestRecord& request, int status, uint64_t bytes, std::string_view stream = {});
// A stream ended: how long it lasted and the bytes written to the client.
void log_stream_end(const RequestRecord& request, std::string_view kind, uint64_t bytes, std::string_view reason);

}  // namespace sluice::gateway
