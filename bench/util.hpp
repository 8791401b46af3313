// sluice-bench: small helpers shared by the coordinator and the workers
// (clocks, random numbers, base64, string checks).
#pragma once

#include <time.h>

#include <cstdint>
#include <string>
#include <string_view>

namespace sluice_bench {

// Wall-clock nanoseconds. Publisher and clients stamp and compare with this
// clock, so remote runs need synchronised clocks (same machine: exact).
inline uint64_t realtime_ns() {
  timespec ts;
  clock_gettime(CLOCK_REALTIME, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// Monotonic nanoseconds for pacing, timeouts and phase durations.
inline uint64_t monotonic_ns() {
  timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return static_cast<uint64_t>(ts.tv_sec) * 1000000000ull + static_cast<uint64_t>(ts.tv_nsec);
}

// SplitMix64: deterministic, fast, good enough for masks and handshake keys.
inline uint64_t splitmix64(uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// A seed from the kernel's random pool (falls back to the clock).
uint64_t random_seed();

std::string base64_encode(const unsigned char* data, size_t size);

// base64(SHA-1(key + RFC 6455 GUID)): the Sec-WebSocket-Accept a server must send.
std::string websocket_accept_for(std::string_view key);

// Percent-encodes a query-string value (RFC 3986 unreserved characters kept).
std::string url_encode(std::string_view value);

bool iequals(std::string_view a, std::string_view b);
// Well-formed UTF-8 (no overlong forms, surrogates or code points past U+10FFFF), as a
// browser requires of a WebSocket text message (RFC 6455 8.1).
bool valid_utf8(std::string_view text);
std::string_view trim(std::string_view s);

}  // namespace sluice_bench
