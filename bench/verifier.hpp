// sluice-bench: per-client, per-event verification of what the server delivered.
//
// A pure class, no sockets: the worker feeds it every SSE event (event name and
// data line) and every WebSocket text message of each client; the verifier finds
// this run's marker (bench/event_marker.hpp), and checks, per client and per event:
//   - the sequence: each channel the client hears must deliver its events 0..P-1
//     (P = events published on that channel) exactly once and in order, except
//     those excused because Redis may never have had them (set_excused);
//   - the event name (the publisher's --event-mix, by sequence number);
//   - the payload, byte for byte, against what the server must send (the publisher's
//     template, with `"filtered":<array>` appended on filtered streams for statuses);
//   - the WebSocket `stream` echo;
//   - that the event comes from a channel the client hears at all.
// A WebSocket frame written as the reference writes it (JSON.stringify of
// {stream, event, payload}: keys in that order, the payload string escaped only where
// JSON requires) is checked without decoding its payload: against the expected payload
// escaped the same way. Any other valid frame is parsed and decoded first, so a server
// is never counted wrong for writing valid JSON differently; it only costs the tool more
// (docs/benchmarks.md#what-the-tool-spends-on-a-websocket-frame).
// bench/self_test.cpp injects faults to prove that every counter can fail.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

namespace sluice_bench {

struct VerifyCounters {
  uint64_t delivered = 0;       // messages carrying this run's marker (every copy, good or bad)
  uint64_t expected = 0;        // Σ over counted clients of the events published on the channels they hear
  uint64_t missing = 0;         // expected (client, channel, seq) never received
  uint64_t duplicated = 0;      // receipts of a (client, channel, seq) already received
  uint64_t reordered = 0;       // first receipts of a seq lower than one already received (same client, channel, order class)
  uint64_t wrong_event = 0;     // receipts whose event name is not the one published with that seq
  uint64_t wrong_payload = 0;   // receipts whose payload differs from what the server must send (or whose marker is corrupt)
  uint64_t wrong_filtered = 0;  //   of which the status is right and only the `filtered` part is wrong or absent
  uint64_t wrong_stream = 0;    // WebSocket receipts whose `stream` echo is not the client's subscription
  uint64_t unexpected = 0;      // receipts from a channel the client does not hear (or a seq never published there)
  uint64_t distinct = 0;        // first receipts of expected (client, channel, seq): delivered - duplicates - strays

  // Nothing lost, nothing extra, nothing wrong.
  bool clean() const {
    return missing == 0 && duplicated == 0 && reordered == 0 && wrong_event == 0 && wrong_payload == 0 &&
           wrong_stream == 0 && unexpected == 0;
  }
  void add(const VerifyCounters& o);
  nlohmann::json to_json() const;
  static VerifyCounters from_json(const nlohmann::json& j);
};

// What the server must send for one kind of event, from the publisher's templates.
struct ExpectedEvent {
  std::string name;     // "update", "status.update", "delete"
  bool status = false;  // update / status.update: gets "filtered" on filtered streams
  // Exact payload text for a local and a remote author, marker body zeroed, and
  // the offset of the marker prefix in each.
  std::string payload[2];
  size_t marker_at[2] = {0, 0};
};

// How a payload reaches the check: as the text itself (an SSE data line, or a
// WebSocket payload once decoded), or still inside its JSON string (a WebSocket frame's
// `"payload":"..."` between the quotes, escapes and all).
enum class PayloadForm : uint8_t { kText, kJsonString };

struct VerifierSetup {
  std::string marker_prefix;  // "SLUICEBENCH_<run id>_"
  uint64_t run_seed = 0;
  std::vector<ExpectedEvent> mix;    // seq s on any channel is mix[s % mix.size()]
  std::vector<bool> channel_remote;  // per plan channel: events there have a remote author
};

struct VerifierClient {
  std::vector<uint32_t> channels;  // plan channels the client hears
  bool websocket = false;
  std::vector<std::string> stream;  // expected WebSocket `stream` echo
  bool filtered = false;            // statuses must carry "filtered":<filtered_json> as their last key
  std::string filtered_json = "[]";
};

class Verifier {
 public:
  explicit Verifier(VerifierSetup setup);

  uint32_t add_client(VerifierClient client);  // returns the client's slot
  size_t clients() const { return clients_.size(); }

  // Result of one message: whether it carried this run's marker, and its send time for
  // the latency histograms: only a first receipt of an event the client hears is timed
  // (0 for a copy, a stray, or an unreadable marker).
  struct Fed {
    bool marked = false;
    uint64_t sent_ns = 0;
    // feed() in PayloadForm::kJsonString only: the frame is not what it looked like;
    // nothing was counted, and the whole frame must be parsed.
    bool reparse = false;
  };
  // One SSE event: the `event:` line's value and the `data:` line's value.
  Fed feed_sse(uint32_t slot, std::string_view event, std::string_view data);
  // One WebSocket text message, e.g. {"stream":["user"],"event":"update","payload":"{...}"}.
  Fed feed_ws(uint32_t slot, std::string_view message);
  // The common step: `stream` is null for SSE and for a frame whose echo is known right.
  Fed feed(uint32_t slot, std::string_view event, std::string_view payload, const std::vector<std::string>* stream,
           PayloadForm form = PayloadForm::kText);

  // Per-channel publish counts (P); needed for `expected` and `missing`.
  void set_published(std::vector<uint64_t> per_channel) { published_ = std::move(per_channel); }
  bool published_known() const { return !published_.empty(); }
  // Seqs, per channel, that need not arrive: with --redis-outages, events Redis may
  // never have received (sent while it was down or in flight when it went) or had no
  // subscriber for. They are left out of `expected` and `missing`; one that arrives
  // is still checked for order, name, payload and duplicates.
  void set_excused(std::vector<std::vector<uint32_t>> per_channel);
  uint64_t expected_for(uint32_t slot) const;

  // Totals. Receipt counters cover every client; `expected` and `missing` only
  // clients for which counted(slot) is true (those that connected).
  template <typename Pred>
  VerifyCounters totals(Pred counted) const {
    VerifyCounters c = receipts_;
    for (uint32_t slot = 0; slot < clients_.size(); ++slot) {
      const PerClient pc = client_result(slot);
      c.unexpected += pc.unexpected_late;
      c.distinct -= pc.unexpected_late;
      if (!counted(slot)) continue;
      c.expected += pc.expected;
      c.missing += pc.missing;
    }
    return c;
  }

  struct PerClient {
    uint64_t expected = 0;
    uint64_t received = 0;  // distinct expected events received
    uint64_t missing = 0;
    uint64_t errors = 0;    // duplicated + reordered + wrong_* + unexpected
    uint64_t unexpected_late = 0;  // seqs at or beyond P (only knowable once P is)
  };
  PerClient client_result(uint32_t slot) const;

  // Running count of first receipts (for the drain: done when it reaches expected).
  uint64_t distinct() const { return receipts_.distinct; }
  const VerifyCounters& receipts() const { return receipts_; }
  // The first receipt of each kind of error, described (counter name -> text), to
  // tell what went wrong without a packet capture.
  const std::map<std::string, std::string>& samples() const { return samples_; }

 private:
  struct Track {  // one (client, channel)
    uint32_t channel = 0;
    uint32_t contiguous = 0;         // seqs 0..contiguous-1 all received
    uint32_t next[2] = {0, 0};       // 1 + highest seq received, per order class
    std::vector<uint64_t> ahead;     // bitmap of received seqs (allocated on the first gap)
    bool test(uint32_t s) const { return s / 64 < ahead.size() && (ahead[s / 64] >> (s % 64) & 1); }
  };
  struct Client {
    VerifierClient spec;
    std::string ws_head;               // {"stream":<echo>,"event":"  as the reference writes it
    std::string filtered_json_string;  // spec.filtered_json escaped as inside a JSON string
    std::vector<Track> tracks;
    uint64_t errors = 0;
  };
  void sample(const char* counter, uint32_t slot, const std::string& what);
  bool sampled(const char* counter) const { return samples_.count(counter) != 0; }
  // What one client must receive for one event, in one form (marker body zeroed).
  struct Want {
    std::string_view payload;
    size_t marker_at = 0;
    bool status = false;  // a status: gets `filtered` on filtered streams
    bool filtered = false;
    std::string_view filtered_key;   // ,"filtered":  as written in this form
    std::string_view filtered_json;  // the array, as written in this form
  };
  Want want_for(const Client& c, size_t mix_index, bool remote, PayloadForm form) const;
  bool payload_matches(const Want& w, std::string_view payload, size_t marker_at, bool& only_filtered_wrong) const;
  std::string expected_payload(const Want& w) const;  // for describing a mismatch
  // Each mix entry's payloads escaped as inside a JSON string, and where the marker is there.
  struct Escaped {
    std::string payload[2];
    size_t marker_at[2] = {0, 0};
  };
  std::vector<Escaped> escaped_;

  VerifierSetup setup_;
  std::vector<Client> clients_;
  uint64_t excused_below(uint32_t channel, uint64_t published) const;
  std::vector<uint64_t> published_;
  std::vector<std::vector<uint32_t>> excused_;  // per channel, sorted
  VerifyCounters receipts_;
  std::string scratch_event_, scratch_payload_, scratch_quoted_;
  std::vector<std::string> scratch_stream_;
  std::map<std::string, std::string> samples_;
};

// Parses a WebSocket event frame {"stream":[...],"event":"...","payload":"..."}.
// False when it is not a JSON object; fields that are absent stay empty, and
// payload_is_string tells whether `payload` was a JSON string.
bool parse_ws_event(std::string_view message, std::string& event, std::string& payload, bool& payload_is_string,
                    std::vector<std::string>& stream);

// The contents of `text` as a JSON string, escaped as JSON.stringify escapes it.
std::string json_string_contents(std::string_view text);

}  // namespace sluice_bench
