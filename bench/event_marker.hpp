// sluice-bench: the marker stamped into every published event, shared by the
// publisher (writes it) and the verifier (reads it back).
//
//   SLUICEBENCH_<run id>_T<19 digits>_S<10 digits>_C<7 digits>_H<16 hex>_
//
// T: send time (CLOCK_REALTIME ns); S: sequence number of the event on its
// Redis channel (0, 1, 2, ... per channel); C: index of that channel in the
// plan; H: a check over (run, T, S, C), so that a corrupted digit is caught
// even though the digits are not known in advance. Plain ASCII without quotes
// or backslashes: it reads the same in an SSE data line and inside a WebSocket
// payload's JSON string.
#pragma once

#include <cstddef>
#include <cstdint>
#include <cstring>
#include <string>

#include "bench/util.hpp"

namespace sluice_bench {

struct MarkerFields {
  uint64_t sent_ns = 0;
  uint32_t seq = 0;
  uint32_t channel = 0;
};

// "T" + 19 + "_S" + 10 + "_C" + 7 + "_H" + 16 + "_"
constexpr size_t kMarkerBodyBytes = 1 + 19 + 2 + 10 + 2 + 7 + 2 + 16 + 1;
constexpr uint32_t kMaxMarkerChannels = 10'000'000;

inline std::string marker_prefix_for(const std::string& run_id) { return "SLUICEBENCH_" + run_id + "_"; }

inline uint64_t marker_check(uint64_t run_seed, const MarkerFields& f) {
  uint64_t h = splitmix64(run_seed ^ 0x5151CE5151CEull);
  h = splitmix64(h ^ f.sent_ns);
  h = splitmix64(h ^ (uint64_t{f.seq} << 24) ^ f.channel);
  return h;
}

// A body of the right shape with every digit zero (a template's hole).
inline std::string marker_body_placeholder() {
  return "T" + std::string(19, '0') + "_S" + std::string(10, '0') + "_C" + std::string(7, '0') + "_H" +
         std::string(16, '0') + "_";
}

// Writes the body (kMarkerBodyBytes) at `at`.
inline void write_marker_body(char* at, uint64_t run_seed, const MarkerFields& f) {
  auto digits = [](char* p, uint64_t v, int n) {
    for (int i = n - 1; i >= 0; --i) {
      p[i] = static_cast<char>('0' + v % 10);
      v /= 10;
    }
  };
  static const char hex[] = "0123456789abcdef";
  at[0] = 'T';
  digits(at + 1, f.sent_ns, 19);
  std::memcpy(at + 20, "_S", 2);
  digits(at + 22, f.seq, 10);
  std::memcpy(at + 32, "_C", 2);
  digits(at + 34, f.channel, 7);
  std::memcpy(at + 41, "_H", 2);
  uint64_t h = marker_check(run_seed, f);
  for (int i = 15; i >= 0; --i) {
    at[43 + i] = hex[h & 15];
    h >>= 4;
  }
  at[59] = '_';
}

// Parses a body at `at` (needs kMarkerBodyBytes readable). False when the shape
// is wrong or the check does not match.
inline bool parse_marker_body(const char* at, size_t avail, uint64_t run_seed, MarkerFields& out) {
  if (avail < kMarkerBodyBytes) return false;
  auto digits = [](const char* p, int n, uint64_t& v) {
    v = 0;
    for (int i = 0; i < n; ++i) {
      if (p[i] < '0' || p[i] > '9') return false;
      v = v * 10 + static_cast<uint64_t>(p[i] - '0');
    }
    return true;
  };
  if (at[0] != 'T' || std::memcmp(at + 20, "_S", 2) != 0 || std::memcmp(at + 32, "_C", 2) != 0 ||
      std::memcmp(at + 41, "_H", 2) != 0 || at[59] != '_') {
    return false;
  }
  uint64_t t, s, c;
  if (!digits(at + 1, 19, t) || !digits(at + 22, 10, s) || !digits(at + 34, 7, c)) return false;
  if (s > UINT32_MAX) return false;
  uint64_t h = 0;
  for (int i = 0; i < 16; ++i) {
    const char ch = at[43 + i];
    const int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : -1;
    if (v < 0) return false;
    h = (h << 4) | static_cast<uint64_t>(v);
  }
  MarkerFields f{t, static_cast<uint32_t>(s), static_cast<uint32_t>(c)};
  if (h != marker_check(run_seed, f)) return false;
  out = f;
  return true;
}

}  // namespace sluice_bench
