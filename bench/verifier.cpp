#include "bench/verifier.hpp"

#include <algorithm>
#include <cstring>
#include <stdexcept>

#include "bench/event_marker.hpp"

namespace sluice_bench {

using json = nlohmann::json;

namespace {

constexpr std::string_view kFilteredKey = ",\"filtered\":";
constexpr std::string_view kFilteredKeyInString = ",\\\"filtered\\\":";
// Between the event name and the payload string, in a frame written as the reference writes it.
constexpr std::string_view kPayloadKey = "\",\"payload\":\"";

// --- a small JSON reader for WebSocket event frames --------------------------

struct Reader {
  const char* p;
  const char* end;

  void ws() {
    while (p < end && (*p == ' ' || *p == '\t' || *p == '\n' || *p == '\r')) ++p;
  }
  bool eat(char c) {
    ws();
    if (p < end && *p == c) {
      ++p;
      return true;
    }
    return false;
  }
  static void utf8(std::string& out, uint32_t cp) {
    if (cp < 0x80) {
      out += static_cast<char>(cp);
    } else if (cp < 0x800) {
      out += static_cast<char>(0xC0 | (cp >> 6));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else if (cp < 0x10000) {
      out += static_cast<char>(0xE0 | (cp >> 12));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    } else {
      out += static_cast<char>(0xF0 | (cp >> 18));
      out += static_cast<char>(0x80 | ((cp >> 12) & 0x3F));
      out += static_cast<char>(0x80 | ((cp >> 6) & 0x3F));
      out += static_cast<char>(0x80 | (cp & 0x3F));
    }
  }
  bool hex4(uint32_t& v) {
    if (end - p < 4) return false;
    v = 0;
    for (int i = 0; i < 4; ++i) {
      const char c = p[i];
      const int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
      if (d < 0) return false;
      v = (v << 4) | static_cast<uint32_t>(d);
    }
    p += 4;
    return true;
  }
  // A JSON string, decoded into out (nullptr: skip).
  bool string(std::string* out) {
    ws();
    if (p >= end || *p != '"') return false;
    ++p;
    if (out) out->clear();
    for (;;) {
      const char* run = p;
      while (p < end && *p != '"' && *p != '\\' && static_cast<unsigned char>(*p) >= 0x20) ++p;
      if (out) out->append(run, static_cast<size_t>(p - run));
      if (p >= end || static_cast<unsigned char>(*p) < 0x20) return false;
      if (*p == '"') {
        ++p;
        return true;
      }
      ++p;  // backslash
      if (p >= end) return false;
      const char e = *p++;
      char c;
      switch (e) {
        case '"': c = '"'; break;
        case '\\': c = '\\'; break;
        case '/': c = '/'; break;
        case 'b': c = '\b'; break;
        case 'f': c = '\f'; break;
        case 'n': c = '\n'; break;
        case 'r': c = '\r'; break;
        case 't': c = '\t'; break;
        case 'u': {
          uint32_t cp;
          if (!hex4(cp)) return false;
          if (cp >= 0xD800 && cp < 0xDC00 && end - p >= 6 && p[0] == '\\' && p[1] == 'u') {
            const char* save = p;
            p += 2;
            uint32_t lo;
            if (hex4(lo) && lo >= 0xDC00 && lo < 0xE000) {
              cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
            } else {
              p = save;
            }
          }
          if (out) utf8(*out, cp);
          continue;
        }
        default: return false;
      }
      if (out) *out += c;
    }
  }
};

}  // namespace

bool parse_ws_event(std::string_view message, std::string& event, std::string& payload, bool& payload_is_string,
                    std::vector<std::string>& stream) {
  event.clear();
  payload.clear();
  stream.clear();
  payload_is_string = false;
  // Read as a browser's JSON.parse reads it: strict JSON (a frame it would throw on is
  // not an event), UTF-8 checked, and of a key written twice the last one kept. Only
  // frames not written as the reference writes them come here, so the tool's cost per
  // delivery does not depend on this parser. (JSON.parse also takes a lone surrogate
  // escape, which this refuses; no server writes one at the frame's level.)
  const json frame = json::parse(message.begin(), message.end(), nullptr, /*allow_exceptions=*/false);
  if (!frame.is_object()) return false;
  if (auto it = frame.find("stream"); it != frame.end()) {
    if (it->is_array()) {
      for (const json& item : *it) stream.push_back(item.is_string() ? item.get<std::string>() : "\x01(not a string)");
    } else {
      stream.emplace_back("\x01(not an array)");
    }
  }
  // A name that is not a string stays empty: a wrong event.
  if (auto it = frame.find("event"); it != frame.end() && it->is_string()) event = it->get<std::string>();
  if (auto it = frame.find("payload"); it != frame.end()) {
    payload_is_string = it->is_string();
    payload = payload_is_string ? it->get<std::string>() : it->dump();
  }
  return true;
}

std::string json_string_contents(std::string_view text) {
  // nlohmann escapes a string as JSON.stringify does: ", \ and control characters only
  // (\b \f \n \r \t, others as lower-case \u00xx), UTF-8 left as it is.
  const std::string quoted = json(std::string(text)).dump(-1, ' ', false, json::error_handler_t::replace);
  return quoted.substr(1, quoted.size() - 2);
}

namespace {

// A frame as the reference writes it: `head` ({"stream":<echo>,"event":"), the event
// name, then ","payload":" and the payload string's contents up to the closing "}.
bool split_reference_frame(std::string_view message, const std::string& head, std::string_view& event,
                           std::string_view& contents) {
  if (message.size() < head.size() + kPayloadKey.size() + 2 || message.compare(0, head.size(), head) != 0 ||
      message.compare(message.size() - 2, 2, "\"}") != 0) {
    return false;
  }
  const size_t name_end = message.find('"', head.size());
  if (name_end == std::string_view::npos || name_end + kPayloadKey.size() > message.size() - 2 ||
      message.compare(name_end, kPayloadKey.size(), kPayloadKey) != 0) {
    return false;
  }
  event = message.substr(head.size(), name_end - head.size());
  if (event.find('\\') != std::string_view::npos) return false;  // an escaped name: let the parser read it
  const size_t at = name_end + kPayloadKey.size();
  contents = message.substr(at, message.size() - 2 - at);
  return true;
}

}  // namespace

// --- counters ---------------------------------------------------------------

void VerifyCounters::add(const VerifyCounters& o) {
  delivered += o.delivered;
  expected += o.expected;
  missing += o.missing;
  duplicated += o.duplicated;
  reordered += o.reordered;
  wrong_event += o.wrong_event;
  wrong_payload += o.wrong_payload;
  wrong_filtered += o.wrong_filtered;
  wrong_stream += o.wrong_stream;
  unexpected += o.unexpected;
  distinct += o.distinct;
}

json VerifyCounters::to_json() const {
  return {{"delivered", delivered},       {"expected", expected},         {"missing", missing},
          {"duplicated", duplicated},     {"reordered", reordered},       {"wrong_event", wrong_event},
          {"wrong_payload", wrong_payload}, {"wrong_filtered", wrong_filtered}, {"wrong_stream", wrong_stream},
          {"unexpected", unexpected},     {"distinct", distinct}};
}

VerifyCounters VerifyCounters::from_json(const json& j) {
  VerifyCounters c;
  if (!j.is_object()) return c;
  c.delivered = j.value("delivered", uint64_t{0});
  c.expected = j.value("expected", uint64_t{0});
  c.missing = j.value("missing", uint64_t{0});
  c.duplicated = j.value("duplicated", uint64_t{0});
  c.reordered = j.value("reordered", uint64_t{0});
  c.wrong_event = j.value("wrong_event", uint64_t{0});
  c.wrong_payload = j.value("wrong_payload", uint64_t{0});
  c.wrong_filtered = j.value("wrong_filtered", uint64_t{0});
  c.wrong_stream = j.value("wrong_stream", uint64_t{0});
  c.unexpected = j.value("unexpected", uint64_t{0});
  c.distinct = j.value("distinct", uint64_t{0});
  return c;
}

// --- verifier -----------------------------------------------------------------

Verifier::Verifier(VerifierSetup setup) : setup_(std::move(setup)) {
  if (setup_.mix.empty()) throw std::logic_error("verifier: empty event mix");
  for (const ExpectedEvent& e : setup_.mix) {
    Escaped x;
    for (int remote = 0; remote < 2; ++remote) {
      x.payload[remote] = json_string_contents(e.payload[remote]);
      x.marker_at[remote] = x.payload[remote].find(setup_.marker_prefix);
      if (x.marker_at[remote] == std::string::npos) throw std::logic_error("verifier: a payload without its marker");
    }
    escaped_.push_back(std::move(x));
  }
}

uint32_t Verifier::add_client(VerifierClient client) {
  Client c;
  for (uint32_t ch : client.channels) {
    c.tracks.emplace_back();
    c.tracks.back().channel = ch;
  }
  c.spec = std::move(client);
  c.ws_head = "{\"stream\":" + json(c.spec.stream).dump() + ",\"event\":\"";
  c.filtered_json_string = json_string_contents(c.spec.filtered_json);
  clients_.push_back(std::move(c));
  return static_cast<uint32_t>(clients_.size() - 1);
}

namespace {

std::string json_list(const std::vector<std::string>& v) { return json(v).dump(); }

// Where two texts first differ, with a little context of each.
std::string first_difference(std::string_view got, std::string_view want) {
  size_t i = 0;
  while (i < got.size() && i < want.size() && got[i] == want[i]) ++i;
  const size_t from = i > 30 ? i - 30 : 0;
  return "differs at byte " + std::to_string(i) + " of " + std::to_string(got.size()) + " (want " +
         std::to_string(want.size()) + "): got \"" + std::string(got.substr(from, 80)) + "\", want \"" +
         std::string(want.substr(from, 80)) + "\"";
}

}  // namespace

void Verifier::sample(const char* counter, uint32_t slot, const std::string& what) {
  if (samples_.count(counter)) return;
  const Client& c = clients_[slot];
  std::string channels;
  for (uint32_t ch : c.spec.channels) {
    if (!channels.empty()) channels += ',';
    channels += std::to_string(ch);
  }
  samples_[counter] = std::string(c.spec.websocket ? "WS " + json_list(c.spec.stream) : "SSE") + " client (channels " +
                      channels + (c.spec.filtered ? ", filtered" : "") + "): " + what;
}

Verifier::Fed Verifier::feed_sse(uint32_t slot, std::string_view event, std::string_view data) {
  return feed(slot, event, data, nullptr);
}

Verifier::Fed Verifier::feed_ws(uint32_t slot, std::string_view message) {
  const std::string& prefix = setup_.marker_prefix;
  // Not ours, unless the marker is there written with \u escapes (valid JSON).
  const bool marker_as_written = memmem(message.data(), message.size(), prefix.data(), prefix.size()) != nullptr;
  if (!marker_as_written && !memmem(message.data(), message.size(), "\\u", 2)) return {};
  std::string_view event, contents;
  if (marker_as_written && split_reference_frame(message, clients_[slot].ws_head, event, contents)) {
    // The echo is right: it is in the head.
    const Fed fed = feed(slot, event, contents, nullptr, PayloadForm::kJsonString);
    if (!fed.reparse) return fed;
  }
  bool payload_is_string = false;
  if (!parse_ws_event(message, scratch_event_, scratch_payload_, payload_is_string, scratch_stream_)) {
    if (!marker_as_written) return {};  // not ours
    ++receipts_.delivered;
    ++receipts_.wrong_payload;
    ++clients_[slot].errors;
    sample("wrong_payload", slot, "WebSocket frame is not a JSON object: " + std::string(message.substr(0, 120)));
    return {true, 0};
  }
  const uint64_t wrong_before = receipts_.wrong_payload;
  Fed fed = feed(slot, scratch_event_, scratch_payload_, &scratch_stream_);
  // The payload of a WebSocket event frame is always a JSON string (docs/protocol.md#event-frames).
  if (fed.marked && !payload_is_string && receipts_.wrong_payload == wrong_before) {
    ++receipts_.wrong_payload;
    ++clients_[slot].errors;
    sample("wrong_payload", slot, "WebSocket payload is not a JSON string");
  }
  return fed;
}

Verifier::Want Verifier::want_for(const Client& c, size_t mix_index, bool remote, PayloadForm form) const {
  const ExpectedEvent& e = setup_.mix[mix_index];
  const int r = remote ? 1 : 0;
  Want w;
  w.status = e.status;
  w.filtered = c.spec.filtered;
  if (form == PayloadForm::kText) {
    w.payload = e.payload[r];
    w.marker_at = e.marker_at[r];
    w.filtered_key = kFilteredKey;
    w.filtered_json = c.spec.filtered_json;
  } else {
    w.payload = escaped_[mix_index].payload[r];
    w.marker_at = escaped_[mix_index].marker_at[r];
    w.filtered_key = kFilteredKeyInString;
    w.filtered_json = c.filtered_json_string;
  }
  return w;
}

bool Verifier::payload_matches(const Want& w, std::string_view got, size_t marker_at, bool& only_filtered_wrong) const {
  only_filtered_wrong = false;
  const std::string_view want = w.payload;
  const size_t at = w.marker_at;
  if (marker_at != at) return false;
  const size_t body_end = at + setup_.marker_prefix.size() + kMarkerBodyBytes;  // marker already checked
  if (got.size() < body_end || want.size() < body_end) return false;
  if (std::memcmp(got.data(), want.data(), at) != 0) return false;
  if (!w.status) {
    // delete: the string payload, unchanged.
    return got.size() == want.size() && std::memcmp(got.data() + body_end, want.data() + body_end, want.size() - body_end) == 0;
  }
  // The status without its closing brace must match exactly...
  const size_t status_end = want.size() - 1;
  if (got.size() < status_end + 1 ||
      std::memcmp(got.data() + body_end, want.data() + body_end, status_end - body_end) != 0) {
    return false;
  }
  // ... then either "}" or ',"filtered":<array>}'.
  std::string_view tail = got.substr(status_end);
  const std::string_view key = w.filtered_key;
  if (!w.filtered) {
    if (tail == "}") return true;
    only_filtered_wrong = tail.substr(0, key.size()) == key;
    return false;
  }
  const std::string_view f = w.filtered_json;
  const bool ok = tail.size() == key.size() + f.size() + 1 && tail.substr(0, key.size()) == key &&
                  tail.substr(key.size(), f.size()) == f && tail.back() == '}';
  only_filtered_wrong = !ok;
  return ok;
}

std::string Verifier::expected_payload(const Want& w) const {
  std::string want(w.payload);
  if (w.filtered && w.status) {
    want.pop_back();
    want.append(w.filtered_key).append(w.filtered_json).push_back('}');
  }
  return want;
}

Verifier::Fed Verifier::feed(uint32_t slot, std::string_view event, std::string_view payload,
                             const std::vector<std::string>* stream, PayloadForm form) {
  const std::string& prefix = setup_.marker_prefix;
  const char* hit = static_cast<const char*>(memmem(payload.data(), payload.size(), prefix.data(), prefix.size()));
  if (!hit) return {};
  Client& c = clients_[slot];
  const bool in_string = form == PayloadForm::kJsonString;
  const size_t marker_at = static_cast<size_t>(hit - payload.data());
  const size_t body_at = marker_at + prefix.size();
  MarkerFields f;
  if (!parse_marker_body(payload.data() + body_at, payload.size() - body_at, setup_.run_seed, f)) {
    if (in_string) return {false, 0, true};  // its digits may be escapes: let the parser decode them
    // A corrupted marker: we cannot tell which event this was.
    ++receipts_.delivered;
    ++receipts_.wrong_payload;
    ++c.errors;
    sample("wrong_payload", slot, "corrupted marker " + std::string(payload.substr(marker_at, prefix.size() + kMarkerBodyBytes)));
    return {true, 0};
  }
  Fed fed{true, f.sent_ns};
  Track* t = nullptr;
  for (Track& candidate : c.tracks) {
    if (candidate.channel == f.channel) t = &candidate;
  }
  if (!t || f.channel >= setup_.channel_remote.size()) {
    ++receipts_.delivered;
    ++receipts_.unexpected;  // published on a channel this client does not hear
    ++c.errors;
    sample("unexpected", slot, "event " + std::to_string(f.seq) + " of channel " + std::to_string(f.channel));
    fed.sent_ns = 0;  // not timed: only first receipts of what the client hears are
    return fed;
  }
  const size_t mix_index = f.seq % setup_.mix.size();
  const ExpectedEvent& e = setup_.mix[mix_index];
  const bool remote = setup_.channel_remote[f.channel];

  // The payload first, before anything is counted: in a frame's JSON-string form, a
  // mismatch may also mean the frame only looked like the reference's (a key after the
  // payload, say), and then the parser must read the whole frame instead.
  bool only_filtered = false;
  Want want = want_for(c, mix_index, remote, form);
  std::string_view checked = payload;
  size_t checked_marker_at = marker_at;
  bool payload_ok = payload_matches(want, payload, marker_at, only_filtered);
  if (!payload_ok && in_string) {
    // Valid JSON can write the same string otherwise ("\/", "\u00e9"): decode it and compare
    // the text, so that only the tool's cost depends on how the server escapes.
    scratch_quoted_.assign(1, '"').append(payload).push_back('"');
    Reader r{scratch_quoted_.data(), scratch_quoted_.data() + scratch_quoted_.size()};
    if (!r.string(&scratch_payload_) || r.p != r.end) return {false, 0, true};  // not one string
    const char* again =
        static_cast<const char*>(memmem(scratch_payload_.data(), scratch_payload_.size(), prefix.data(), prefix.size()));
    if (!again) return {false, 0, true};
    want = want_for(c, mix_index, remote, PayloadForm::kText);
    checked = scratch_payload_;
    checked_marker_at = static_cast<size_t>(again - scratch_payload_.data());
    payload_ok = payload_matches(want, checked, checked_marker_at, only_filtered);
  }

  ++receipts_.delivered;
  bool bad = false;

  // Sequence. On filtered streams statuses may be overtaken by later non-status
  // events (docs/protocol.md#ordering-of-filtered-statuses), so they are ordered apart;
  // a non-status event goes out as it comes, so it may follow no later event of either.
  const uint32_t s = f.seq;
  if (s < t->contiguous || t->test(s)) {
    ++receipts_.duplicated;
    sample("duplicated", slot, "event " + std::to_string(s) + " of channel " + std::to_string(f.channel) + " again");
    fed.sent_ns = 0;  // a copy is not timed
    bad = true;
  } else {
    ++receipts_.distinct;
    const int cls = c.spec.filtered && !e.status ? 1 : 0;
    const uint32_t after = cls == 1 ? std::max(t->next[0], t->next[1]) : t->next[0];
    if (after > s + 1) {
      ++receipts_.reordered;
      sample("reordered", slot, "event " + std::to_string(s) + " of channel " + std::to_string(f.channel) + " after " +
                                    std::to_string(after - 1));
      bad = true;
    }
    t->next[cls] = std::max(t->next[cls], s + 1);
    if (s == t->contiguous) {
      ++t->contiguous;
      while (t->test(t->contiguous)) ++t->contiguous;
      if (!t->ahead.empty() && t->contiguous >= t->ahead.size() * 64) std::vector<uint64_t>().swap(t->ahead);
    } else {
      if (t->ahead.size() <= s / 64) t->ahead.resize(s / 64 + 1, 0);
      t->ahead[s / 64] |= uint64_t{1} << (s % 64);
    }
  }

  if (event != e.name) {
    ++receipts_.wrong_event;
    sample("wrong_event", slot, "event " + std::to_string(s) + ": got '" + std::string(event) + "', want '" + e.name + "'");
    bad = true;
  }
  if (stream && *stream != c.spec.stream) {
    ++receipts_.wrong_stream;
    sample("wrong_stream", slot, "event " + std::to_string(s) + " of channel " + std::to_string(f.channel) + ": got " +
                                     json_list(*stream) + ", want " + json_list(c.spec.stream));
    bad = true;
  }
  if (!payload_ok) {
    ++receipts_.wrong_payload;
    if (only_filtered) ++receipts_.wrong_filtered;
    const char* counter = only_filtered ? "wrong_filtered" : "wrong_payload";
    // Only the first is described: building the expected payload for every wrong one
    // cost the tool about as much CPU again per delivery, and that CPU came out of the
    // server's share on this host, as when measuring the floor (which sends its
    // payloads unparsed and so fails this check on every delivery).
    if (!sampled(counter)) {
      std::string expected = expected_payload(want);
      std::memcpy(expected.data() + want.marker_at + prefix.size(), checked.data() + checked_marker_at + prefix.size(),
                  kMarkerBodyBytes);
      sample(counter, slot,
             "event " + std::to_string(s) + " of channel " + std::to_string(f.channel) + " (" + e.name + "): " +
                 first_difference(checked, expected));
    }
    bad = true;
  }
  if (bad) ++c.errors;
  return fed;
}

void Verifier::set_excused(std::vector<std::vector<uint32_t>> per_channel) {
  for (auto& seqs : per_channel) {
    std::sort(seqs.begin(), seqs.end());
    seqs.erase(std::unique(seqs.begin(), seqs.end()), seqs.end());
  }
  excused_ = std::move(per_channel);
}

uint64_t Verifier::excused_below(uint32_t channel, uint64_t published) const {
  if (channel >= excused_.size()) return 0;
  const auto& seqs = excused_[channel];
  return static_cast<uint64_t>(std::lower_bound(seqs.begin(), seqs.end(), published) - seqs.begin());
}

uint64_t Verifier::expected_for(uint32_t slot) const {
  uint64_t n = 0;
  for (const Track& t : clients_[slot].tracks) {
    const uint64_t p = t.channel < published_.size() ? published_[t.channel] : 0;
    n += p - excused_below(t.channel, p);
  }
  return n;
}

Verifier::PerClient Verifier::client_result(uint32_t slot) const {
  PerClient r;
  const Client& c = clients_[slot];
  r.errors = c.errors;
  for (const Track& t : c.tracks) {
    // Until the publish counts are known, every receipt counts as received.
    const uint64_t p = published_.empty() ? UINT64_MAX : t.channel < published_.size() ? published_[t.channel] : 0;
    uint64_t got = std::min<uint64_t>(t.contiguous, p);
    uint64_t late = t.contiguous > p ? t.contiguous - p : 0;
    for (size_t w = 0; w < t.ahead.size(); ++w) {
      uint64_t bits = t.ahead[w];
      while (bits) {
        const uint64_t s = w * 64 + static_cast<uint64_t>(__builtin_ctzll(bits));
        bits &= bits - 1;
        if (s < t.contiguous) continue;
        if (s < p) {
          ++got;
        } else {
          ++late;
        }
      }
    }
    // Excused events that arrived anyway are neither expected nor missing.
    uint64_t excused = 0;
    if (!published_.empty() && t.channel < excused_.size()) {
      for (uint32_t s : excused_[t.channel]) {
        if (s >= p) break;
        ++excused;
        if (s < t.contiguous || t.test(s)) --got;
      }
    }
    r.received += got;
    if (published_.empty()) continue;
    r.expected += p - excused;
    r.missing += p - excused - got;
    r.unexpected_late += late;
  }
  r.errors += r.unexpected_late;
  return r;
}

}  // namespace sluice_bench
