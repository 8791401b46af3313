#include "bench/self_test.hpp"

#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <functional>
#include <set>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/event_marker.hpp"
#include "bench/plan.hpp"
#include "bench/publisher.hpp"
#include "bench/report.hpp"
#include "bench/sse_reader.hpp"
#include "bench/util.hpp"
#include "bench/verifier.hpp"

namespace sluice_bench {

namespace {

using ojson = nlohmann::ordered_json;

constexpr uint32_t kEvents = 12;  // per channel
constexpr uint64_t kSeed = 0x5E1F7E57ull;

// Channels: 0 timeline:1 (local author), 1 timeline:public:remote (remote author),
// 2 timeline:hashtag:cafe, 3 timeline:1:notifications.
const std::vector<bool> kRemote = {false, true, false, false};

struct ClientDef {
  const char* what;
  VerifierClient spec;
};

std::vector<ClientDef> clients() {
  std::vector<ClientDef> out;
  out.push_back({"SSE user (hears timeline:1 and timeline:1:notifications)", {{0, 3}, false, {}, false, "[]"}});
  out.push_back({"WS hashtag:cafe (filtered)", {{2}, true, {"hashtag", "cafe"}, true, "[]"}});
  out.push_back({"WS public:remote (filtered)", {{1}, true, {"public:remote"}, true, "[]"}});
  return out;
}

// One message as a correct server sends it to one client.
struct Delivery {
  uint32_t client;
  uint32_t channel;
  uint32_t seq;
  bool ws;
  std::string event;
  std::string payload;              // SSE data / WS payload string
  std::vector<std::string> stream;  // WS only
  bool payload_as_object = false;   // WS: put the payload in the frame as an object (a protocol error)
  bool unseparated = false;         // SSE: no blank line after this event (a framing error)
  std::string (*rewrite)(const std::string& frame) = nullptr;  // WS: write the frame otherwise
};

std::string frame_of(const Delivery& d) {
  ojson frame;
  frame["stream"] = d.stream;
  frame["event"] = d.event;
  frame["payload"] = d.payload_as_object ? ojson::parse(d.payload) : ojson(d.payload);
  return d.rewrite ? d.rewrite(frame.dump()) : frame.dump();
}

// The same frame with its keys in another order.
std::string keys_reordered(const std::string& frame) {
  const ojson f = ojson::parse(frame);
  return ojson{{"payload", f["payload"]}, {"event", f["event"]}, {"stream", f["stream"]}}.dump();
}

// The same frame with every "/" written "\/", which JSON allows and JSON.stringify never writes.
std::string slashes_escaped(const std::string& frame) {
  std::string out;
  for (char c : frame) {
    if (c == '/') out += '\\';
    out += c;
  }
  return out;
}

// A key after the payload, which a client ignores.
std::string key_after_payload(const std::string& frame) { return frame.substr(0, frame.size() - 1) + ",\"x\":\"y\"}"; }

// A second "payload" key after the first: JSON.parse keeps the last.
std::string second_payload(const std::string& frame) {
  return frame.substr(0, frame.size() - 1) + ",\"payload\":\"x\"}";
}

// A second "payload" key holding the status as an object: JSON.parse keeps the object.
std::string second_payload_object(const std::string& frame) {
  const ojson f = ojson::parse(frame);
  return frame.substr(0, frame.size() - 1) + ",\"payload\":" + f["payload"].get<std::string>() + "}";
}

// A second "event" key that is not a string: JSON.parse keeps the null.
std::string second_event_null(const std::string& frame) { return frame.substr(0, frame.size() - 1) + ",\"event\":null}"; }

// The same "stream" key again: JSON.parse keeps one (the last), the same.
std::string stream_repeated(const std::string& frame) {
  const ojson f = ojson::parse(frame);
  return frame.substr(0, frame.size() - 1) + ",\"stream\":" + f["stream"].dump() + "}";
}

// A key after the payload whose value is no JSON literal (JSON.parse throws).
std::string invalid_literal(const std::string& frame) { return frame.substr(0, frame.size() - 1) + ",\"x\":nul}"; }

// A key after the payload with a byte that is not UTF-8: a browser fails the connection
// (so does the tool's worker, before the verifier sees it); the verifier alone counts no event.
std::string invalid_utf8(const std::string& frame) { return frame.substr(0, frame.size() - 1) + ",\"\xff\":1}"; }

// Every "SLUICEBENCH_" written with its S as a \u escape, which JSON allows.
std::string marker_prefix_escaped(const std::string& frame) {
  std::string out;
  for (size_t at = 0;;) {
    const size_t hit = frame.find("SLUICEBENCH_", at);
    out.append(frame, at, hit == std::string::npos ? std::string::npos : hit - at);
    if (hit == std::string::npos) return out;
    out += "\\u0053";
    at = hit + 1;
  }
}

// The marker's first time digit written as a \u escape, which JSON allows.
std::string marker_digit_escaped(const std::string& frame) {
  std::string out = frame;
  const size_t at = out.find("_T1");
  out.replace(at + 2, 1, "\\u0031");
  return out;
}

// The payload's first escaped quote left unescaped: the frame is no longer valid JSON.
std::string quote_unescaped(const std::string& frame) {
  std::string out = frame;
  out.erase(out.find("\\\""), 1);
  return out;
}

struct World {
  std::string prefix = marker_prefix_for("00000000" "5e1f7e57");
  std::vector<std::string> mix{"update", "status.update", "delete"};
  std::vector<EventTemplate> templates = make_event_templates(prefix, 2000, mix, kSeed);
  VerifierSetup setup = make_verifier_setup(templates, mix.size(), prefix, kSeed, kRemote);

  // The Redis message for (channel, seq), rendered by a correct server for client c.
  Delivery render(uint32_t client, const ClientDef& c, uint32_t channel, uint32_t seq) {
    EventTemplate& t = templates[(kRemote[channel] ? mix.size() : 0) + seq % mix.size()];
    const std::string message = t.stamp(1'700'000'000'000'000'000ull + seq * 1000 + channel, seq, channel);
    ojson m = ojson::parse(message);
    Delivery d{client, channel, seq, c.spec.websocket, m["event"].get<std::string>(), "", {}, false};
    ojson& p = m["payload"];
    if (p.is_string()) {
      d.payload = p.get<std::string>();
    } else {
      if (c.spec.filtered && is_status_event(d.event)) p["filtered"] = ojson::array();
      d.payload = p.dump();
    }
    if (d.ws) d.stream = c.spec.stream;
    return d;
  }

  std::vector<Delivery> clean_run() {
    std::vector<Delivery> out;
    const auto defs = clients();
    for (uint32_t seq = 0; seq < kEvents; ++seq) {
      for (uint32_t c = 0; c < defs.size(); ++c) {
        for (uint32_t ch : defs[c].spec.channels) out.push_back(render(c, defs[c], ch, seq));
      }
    }
    return out;
  }

  VerifyCounters feed(const std::vector<Delivery>& deliveries, const std::vector<std::vector<uint32_t>>& excused) {
    Verifier v(setup);
    for (auto& c : clients()) v.add_client(c.spec);
    // SSE goes through the worker's reader, as the bytes a server writes.
    std::vector<SseEventReader> readers(clients().size());
    for (const Delivery& d : deliveries) {
      if (d.ws) {
        v.feed_ws(d.client, frame_of(d));
        continue;
      }
      std::vector<std::string> lines = {"event: " + d.event, "data: " + d.payload};
      if (!d.unseparated) lines.emplace_back();
      for (const auto& line : lines) {
        if (readers[d.client].line(line)) v.feed_sse(d.client, readers[d.client].event(), readers[d.client].data());
      }
    }
    v.set_published(std::vector<uint64_t>(kRemote.size(), kEvents));
    v.set_excused(excused);
    return v.totals([](uint32_t) { return true; });
  }
};

size_t find(const std::vector<Delivery>& ds, uint32_t client, uint32_t channel, uint32_t seq) {
  for (size_t i = 0; i < ds.size(); ++i) {
    if (ds[i].client == client && ds[i].channel == channel && ds[i].seq == seq) return i;
  }
  std::fprintf(stderr, "self-test: no delivery %u/%u/%u\n", client, channel, seq);
  std::abort();
}

// Writes one delivery's frame (client, channel, seq) otherwise.
std::function<void(World&, std::vector<Delivery>&)> rewrite_one(uint32_t client, uint32_t channel, uint32_t seq,
                                                              std::string (*rewrite)(const std::string&)) {
  return [=](World&, std::vector<Delivery>& ds) { ds[find(ds, client, channel, seq)].rewrite = rewrite; };
}

struct Scenario {
  const char* name;
  std::function<void(World&, std::vector<Delivery>&)> inject;
  VerifyCounters want;  // delivered and expected are checked too; distinct is not
  std::vector<std::vector<uint32_t>> excused = {};  // per channel: seqs Redis may never have had
};

VerifyCounters with_expected(VerifyCounters c, uint64_t expected) {
  c.expected = expected;
  return c;
}

VerifyCounters counts(uint64_t delivered, uint64_t missing, uint64_t duplicated, uint64_t reordered, uint64_t wrong_event,
                      uint64_t wrong_payload, uint64_t wrong_filtered, uint64_t wrong_stream, uint64_t unexpected) {
  VerifyCounters c;
  c.expected = 4 * kEvents;  // SSE user hears two channels, the others one each
  c.delivered = delivered;
  c.missing = missing;
  c.duplicated = duplicated;
  c.reordered = reordered;
  c.wrong_event = wrong_event;
  c.wrong_payload = wrong_payload;
  c.wrong_filtered = wrong_filtered;
  c.wrong_stream = wrong_stream;
  c.unexpected = unexpected;
  return c;
}

std::string describe(const VerifyCounters& c) {
  char buf[320];
  std::snprintf(buf, sizeof buf,
                "delivered %" PRIu64 " expected %" PRIu64 " missing %" PRIu64 " duplicated %" PRIu64 " reordered %" PRIu64
                " wrong_event %" PRIu64 " wrong_payload %" PRIu64 " wrong_filtered %" PRIu64 " wrong_stream %" PRIu64
                " unexpected %" PRIu64,
                c.delivered, c.expected, c.missing, c.duplicated, c.reordered, c.wrong_event, c.wrong_payload,
                c.wrong_filtered, c.wrong_stream, c.unexpected);
  return buf;
}

bool same(const VerifyCounters& a, const VerifyCounters& b) {
  return a.delivered == b.delivered && a.expected == b.expected && a.missing == b.missing &&
         a.duplicated == b.duplicated && a.reordered == b.reordered && a.wrong_event == b.wrong_event &&
         a.wrong_payload == b.wrong_payload && a.wrong_filtered == b.wrong_filtered &&
         a.wrong_stream == b.wrong_stream && a.unexpected == b.unexpected;
}

// Overwrites one byte of the payload at `at` (from the end when negative).
void corrupt(Delivery& d, long at, char with) {
  const size_t i = at >= 0 ? static_cast<size_t>(at) : d.payload.size() - static_cast<size_t>(-at);
  d.payload[i] = d.payload[i] == with ? static_cast<char>(with + 1) : with;
}

}  // namespace

// One PASS/FAIL line a check, as "<area>: <what>"; counts the failures.
struct Checks {
  const char* area;
  int failures = 0;
  void operator()(bool ok, const std::string& what) {
    std::printf("%s  %s: %s\n", ok ? "PASS" : "FAIL", area, what.c_str());
    failures += ok ? 0 : 1;
  }
};

// The worker's SSE reader: events exist at their blank line, data lines join with "\n",
// comments and other fields are skipped, CR LF ends a line as LF does.
int check_sse_reader() {
  auto read = [](const std::vector<std::string>& lines) {
    SseEventReader reader;
    std::vector<std::string> events;
    for (const auto& line : lines) {
      if (reader.line(line)) events.push_back(std::string(reader.event()) + "|" + std::string(reader.data()));
    }
    return events;
  };
  Checks check{"sse reader"};
  using Events = std::vector<std::string>;
  check(read({"event: update", "data: A", ""}) == Events{"update|A"}, "an event is its type and data at the blank line");
  check(read({"event: update", "data: A"}).empty(), "no event before its blank line");
  check(read({"data: A", "data: B", ""}) == Events{"|A\nB"}, "data lines join with a newline");
  check(read({":thump", "", "event: delete\r", "data:7\r", "\r"}) == Events{"delete|7"},
        "comments and blank lines without data make no event; CR LF ends a line; the space after ':' is optional");
  check(read({"event: update", "data:  A", "id: 3", "retry: 10", ""}) == Events{"update| A"},
        "one leading space is dropped from a value, and other fields are skipped");
  check(read({"event: a", "data: 1", "", "data: 2", ""}) == Events{"a|1", "|2"}, "the type does not carry over");
  return check.failures;
}

// What a WebSocket text message must be (RFC 3629's well-formed UTF-8).
int check_utf8() {
  Checks check{"utf-8"};
  check(valid_utf8("plain ASCII, longer than eight bytes") && valid_utf8(""), "ASCII");
  check(valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xF4\x8F\xBF\xBF"), "two, three and four bytes, up to U+10FFFF");
  check(!valid_utf8("\xC0\xAF") && !valid_utf8("\xE0\x80\xAF") && !valid_utf8("\xF0\x80\x80\xAF"), "overlong forms");
  check(!valid_utf8("\xED\xA0\x80"), "a surrogate");
  check(!valid_utf8("\xF4\x90\x80\x80") && !valid_utf8("\xF5\x80\x80\x80"), "past U+10FFFF");
  check(!valid_utf8("abcdefgh\xC3") && !valid_utf8("\xE2\x82") && !valid_utf8("\x80") && !valid_utf8("\xFF"),
        "cut short, a lone continuation, a byte never used");
  return check.failures;
}

// --redis-outages: which events Redis answered with no receiver are excused.
int check_outage_rule() {
  Checks check{"outages"};
  OutageExcuses excuses(2);
  excuses.heard(0);
  check(!excuses.excuses_unheard(0) && !excuses.excuses_unheard(1), "before any loss, nothing is excused");
  excuses.lost();
  check(excuses.excuses_unheard(0) && excuses.excuses_unheard(1), "from a loss on, every channel is");
  excuses.answered();
  excuses.heard(0);
  check(!excuses.excuses_unheard(0) && excuses.excuses_unheard(1),
        "after the reconnect, a channel heard again is not, one not heard yet is");
  check(!excuses.every_channel_heard(), "not over while a channel is unheard (round-robin: one an event)");
  excuses.heard(1);
  check(excuses.every_channel_heard() && !excuses.excuses_unheard(1), "over once every channel was heard");
  excuses.lost();
  excuses.answered();
  check(excuses.excuses_unheard(0) && excuses.excuses_unheard(1), "a second loss excuses every channel again");
  using Outage = Report::RedisOutage;
  check(outages_unresolved({}) == 0 && outages_unresolved({Outage{1, 2, 3}}) == 0, "an outage that resumed is resolved");
  check(outages_unresolved({Outage{1, 2, 3}, Outage{4, 5, 0}, Outage{6, 0, 0}}) == 2,
        "one never heard again on every channel, or never answered, is not (the run is not verified)");
  return check.failures;
}

// The plan: weighted streams get their share, tokens and transports spread over
// them, "list:own" resolves per account, and unweighted plans keep the round-robin.
int check_plans() {
  Checks check{"plan"};
  Options o;
  o.clients = 10000;
  o.sse_share = 0.5;
  o.streams = {"user*50", "public*30", "hashtag:cafe*15", "list:own*5"};
  for (int a = 1; a <= 1000; ++a) o.tokens.push_back({"token" + std::to_string(a), std::to_string(a)});
  const Plan plan = build_plan(o);
  std::vector<uint32_t> per_stream(4, 0), sse_per_stream(4, 0);
  bool tokens_round_robin = true, own_lists = true;
  for (uint32_t i = 0; i < o.clients; ++i) {
    const ClientSpec& c = plan.clients[i];
    ++per_stream[c.stream];
    sse_per_stream[c.stream] += c.sse ? 1 : 0;
    tokens_round_robin &= c.token == i % 1000;
    if (c.stream == 3) {
      const std::string account = plan.tokens[c.token].account_id;
      own_lists &= plan.channels[c.channel] == "timeline:list:" + account &&
                   plan.stream_echo(i) == std::vector<std::string>{"list", account} &&
                   plan.request_for(i, "h", "k").find("list=" + account + " ") != std::string::npos;
    }
  }
  const double weights[] = {50, 30, 15, 5};
  bool shares = true, transports = true;
  for (int s = 0; s < 4; ++s) {
    shares &= std::abs(per_stream[s] - o.clients * weights[s] / 100) <= 0.03 * o.clients;
    transports &= std::abs(2.0 * sse_per_stream[s] - per_stream[s]) <= 2;
  }
  check(shares, "weighted streams get their share of the clients (50/30/15/5 %, within 3 points)");
  check(transports, "every weighted stream is half SSE, half WebSocket");
  check(tokens_round_robin, "with weights, client i takes token i mod T");
  check(own_lists, "list:own is the account's list: channel, request and stream echo");
  std::set<uint32_t> user_accounts, list_accounts;
  for (const ClientSpec& c : plan.clients) {
    if (c.stream == 0) user_accounts.insert(c.token);
    if (c.stream == 3) list_accounts.insert(c.token);
  }
  check(plan.channels.size() == user_accounts.size() + list_accounts.size() + 2,
        "channels: a user and a list channel per account that has such a client, one public, one hashtag");

  Options rr;
  rr.clients = 12;
  rr.streams = {"user", "public", "list:own"};
  rr.tokens = {{"t1", "1"}, {"t2", "2"}};
  const Plan round_robin = build_plan(rr);
  bool unchanged = true;
  for (uint32_t i = 0; i < rr.clients; ++i) {
    unchanged &= round_robin.clients[i].stream == i % 3 && round_robin.clients[i].token == (i / 3) % 2;
  }
  check(unchanged, "without weights, streams round-robin and tokens advance once per round");

  bool rejected = true;
  for (const char* bad : {"user*0", "user*", "user*x", "user*10000", "list:own:2", "bogus*2"}) {
    try {
      parse_stream(bad);
      rejected = false;
    } catch (const UsageError&) {
    }
  }
  const StreamSpec weighted = parse_stream("list:own*3");
  check(rejected && weighted.weight == 3 && weighted.own_list && weighted.needs_account && weighted.text == "list:own",
        "stream weights parse (list:own*3) and bad ones are refused");
  return check.failures;
}

int run_self_test() {
  World w;
  const uint64_t all = 4 * kEvents;
  // Sequence numbers: mix is update, status.update, delete, so seq 1 is a status.update
  // and seq 2 a delete. Clients: 0 SSE user (channels 0 and 3), 1 WS hashtag (2), 2 WS public:remote (1).
  const std::vector<Scenario> scenarios = {
      {"clean delivery counts nothing", [](World&, std::vector<Delivery>&) {},
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"dropped event -> missing",
       [](World&, std::vector<Delivery>& ds) { ds.erase(ds.begin() + static_cast<long>(find(ds, 0, 0, 5))); },
       counts(all - 1, 1, 0, 0, 0, 0, 0, 0, 0)},
      {"duplicated event -> duplicated",
       [](World&, std::vector<Delivery>& ds) { ds.push_back(ds[find(ds, 1, 2, 5)]); },
       counts(all + 1, 0, 1, 0, 0, 0, 0, 0, 0)},
      {"a loss and a duplicate on one client do not cancel out",
       [](World&, std::vector<Delivery>& ds) {
         const Delivery dup = ds[find(ds, 0, 0, 7)];
         ds.erase(ds.begin() + static_cast<long>(find(ds, 0, 0, 3)));
         ds.push_back(dup);
       },
       counts(all, 1, 1, 0, 0, 0, 0, 0, 0)},
      {"reordered event -> reordered",
       [](World&, std::vector<Delivery>& ds) { std::swap(ds[find(ds, 2, 1, 3)], ds[find(ds, 2, 1, 4)]); },
       counts(all, 0, 0, 1, 0, 0, 0, 0, 0)},
      {"delete overtaking a status on an unfiltered stream -> reordered",
       [](World&, std::vector<Delivery>& ds) { std::swap(ds[find(ds, 0, 0, 1)], ds[find(ds, 0, 0, 2)]); },
       counts(all, 0, 0, 1, 0, 0, 0, 0, 0)},
      {"status overtaking a delete on a filtered stream -> reordered (a delete is never held back)",
       [](World&, std::vector<Delivery>& ds) { std::swap(ds[find(ds, 1, 2, 2)], ds[find(ds, 1, 2, 3)]); },
       counts(all, 0, 0, 1, 0, 0, 0, 0, 0)},
      {"delete overtaking a status on a filtered stream is allowed",
       [](World&, std::vector<Delivery>& ds) { std::swap(ds[find(ds, 1, 2, 1)], ds[find(ds, 1, 2, 2)]); },
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"SSE event without the blank line after it -> one event with both data lines for a browser: "
       "wrong_payload, and the second is missing",
       [](World&, std::vector<Delivery>& ds) { ds[find(ds, 0, 0, 4)].unseparated = true; },
       counts(all - 1, 1, 0, 0, 0, 1, 0, 0, 0)},
      {"SSE event whose blank line never comes (the stream ends) -> missing",
       [](World&, std::vector<Delivery>& ds) {
         const size_t last = find(ds, 0, 3, kEvents - 1);
         ds[last].unseparated = true;
       },
       counts(all - 1, 1, 0, 0, 0, 0, 0, 0, 0)},
      {"corrupted payload byte -> wrong_payload",
       [](World&, std::vector<Delivery>& ds) { corrupt(ds[find(ds, 2, 1, 6)], -40, 'X'); },
       counts(all, 0, 0, 0, 0, 1, 0, 0, 0)},
      {"WebSocket frame with its keys in another order -> nothing wrong",
       rewrite_one(1, 2, 4, keys_reordered),
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"WebSocket payload escaped otherwise (\\/) -> nothing wrong",
       rewrite_one(1, 2, 4, slashes_escaped),
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"WebSocket frame with a key after the payload -> nothing wrong",
       rewrite_one(2, 1, 4, key_after_payload),
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"WebSocket frame with a second payload key: the last counts, so the event is missing",
       rewrite_one(2, 1, 4, second_payload),
       counts(all - 1, 1, 0, 0, 0, 0, 0, 0, 0)},
      {"WebSocket frame with a second payload key, an object: the last counts -> wrong_payload",
       rewrite_one(2, 1, 4, second_payload_object),
       counts(all, 0, 0, 0, 0, 1, 0, 0, 0)},
      {"WebSocket frame with a second event key, null: the last counts -> wrong_event",
       rewrite_one(1, 2, 4, second_event_null),
       counts(all, 0, 0, 0, 1, 0, 0, 0, 0)},
      {"WebSocket frame with its stream key written twice, the same -> nothing wrong",
       rewrite_one(1, 2, 4, stream_repeated),
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"WebSocket frame with an invalid literal -> wrong_payload (not JSON), and the event is missing",
       rewrite_one(2, 1, 4, invalid_literal),
       counts(all, 1, 0, 0, 0, 1, 0, 0, 0)},
      {"WebSocket frame with a byte that is not UTF-8 -> wrong_payload (not JSON), and the event is missing",
       rewrite_one(1, 2, 5, invalid_utf8),
       counts(all, 1, 0, 0, 0, 1, 0, 0, 0)},
      {"WebSocket marker prefix written with escapes -> nothing wrong",
       rewrite_one(2, 1, 5, marker_prefix_escaped),
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"WebSocket marker digit written as an escape -> nothing wrong",
       rewrite_one(1, 2, 3, marker_digit_escaped),
       counts(all, 0, 0, 0, 0, 0, 0, 0, 0)},
      {"WebSocket payload with an unescaped quote -> wrong_payload (not JSON), and the event is missing",
       rewrite_one(2, 1, 4, quote_unescaped),
       counts(all, 1, 0, 0, 0, 1, 0, 0, 0)},
      {"corrupted marker digit -> wrong_payload, and the event is missing",
       [&w](World&, std::vector<Delivery>& ds) {
         Delivery& d = ds[find(ds, 0, 3, 4)];
         corrupt(d, static_cast<long>(d.payload.find(w.prefix) + w.prefix.size() + 5), '7');
       },
       counts(all, 1, 0, 0, 0, 1, 0, 0, 0)},
      {"wrong event name -> wrong_event",
       [](World&, std::vector<Delivery>& ds) { ds[find(ds, 0, 0, 1)].event = "update"; },
       counts(all, 0, 0, 0, 1, 0, 0, 0, 0)},
      {"no \"filtered\" on a filtered stream -> wrong_payload (filtered)",
       [](World&, std::vector<Delivery>& ds) {
         Delivery& d = ds[find(ds, 1, 2, 0)];
         d.payload = d.payload.substr(0, d.payload.rfind(",\"filtered\":")) + "}";
       },
       counts(all, 0, 0, 0, 0, 1, 1, 0, 0)},
      {"a non-empty \"filtered\" where none matches -> wrong_payload (filtered)",
       [](World&, std::vector<Delivery>& ds) {
         Delivery& d = ds[find(ds, 2, 1, 3)];
         d.payload = d.payload.substr(0, d.payload.rfind(",\"filtered\":")) + ",\"filtered\":[{\"filter\":{}}]}";
       },
       counts(all, 0, 0, 0, 0, 1, 1, 0, 0)},
      {"\"filtered\" on an unfiltered stream -> wrong_payload (filtered)",
       [](World&, std::vector<Delivery>& ds) {
         Delivery& d = ds[find(ds, 0, 0, 0)];
         d.payload.pop_back();
         d.payload += ",\"filtered\":[]}";
       },
       counts(all, 0, 0, 0, 0, 1, 1, 0, 0)},
      {"wrong WebSocket stream echo -> wrong_stream",
       [](World&, std::vector<Delivery>& ds) { ds[find(ds, 1, 2, 8)].stream = {"hashtag", "Cafe"}; },
       counts(all, 0, 0, 0, 0, 0, 0, 1, 0)},
      {"WebSocket payload as an object, not a string -> wrong_payload",
       [](World&, std::vector<Delivery>& ds) { ds[find(ds, 2, 1, 0)].payload_as_object = true; },
       counts(all, 0, 0, 0, 0, 1, 0, 0, 0)},
      {"event from a channel the client does not hear -> unexpected",
       [](World& world, std::vector<Delivery>& ds) {
         const auto defs = clients();
         Delivery stray = world.render(2, defs[2], 0, 9);  // timeline:1's event to the public:remote client
         ds.push_back(stray);
       },
       counts(all + 1, 0, 0, 0, 0, 0, 0, 0, 1)},
      // --redis-outages: events Redis may never have had are excused (channel 0 is
      // heard by client 0 only, channel 1 by client 2 only).
      {"an excused event that never arrives is not missing",
       [](World&, std::vector<Delivery>& ds) { ds.erase(ds.begin() + static_cast<long>(find(ds, 0, 0, 5))); },
       with_expected(counts(all - 1, 0, 0, 0, 0, 0, 0, 0, 0), all - 1), {{5}}},
      {"an excused event that arrives is neither expected nor missing",
       [](World&, std::vector<Delivery>&) {}, with_expected(counts(all, 0, 0, 0, 0, 0, 0, 0, 0), all - 1), {{5}}},
      {"a loss next to an excused event is still missing",
       [](World&, std::vector<Delivery>& ds) {
         ds.erase(ds.begin() + static_cast<long>(find(ds, 0, 0, 6)));
         ds.erase(ds.begin() + static_cast<long>(find(ds, 0, 0, 5)));
       },
       with_expected(counts(all - 2, 1, 0, 0, 0, 0, 0, 0, 0), all - 1), {{5}}},
      {"an excused event arriving late is still reordered",
       [](World&, std::vector<Delivery>& ds) { std::swap(ds[find(ds, 2, 1, 3)], ds[find(ds, 2, 1, 4)]); },
       with_expected(counts(all, 0, 0, 1, 0, 0, 0, 0, 0), all - 1), {{}, {3}}},
      {"an excused event arriving twice is still duplicated",
       [](World&, std::vector<Delivery>& ds) { ds.push_back(ds[find(ds, 2, 1, 7)]); },
       with_expected(counts(all + 1, 0, 1, 0, 0, 0, 0, 0, 0), all - 1), {{}, {7}}},
  };

  int failures = check_plans() + check_sse_reader() + check_outage_rule() + check_utf8();
  for (const Scenario& s : scenarios) {
    std::vector<Delivery> ds = w.clean_run();
    s.inject(w, ds);
    const VerifyCounters got = w.feed(ds, s.excused);
    const bool ok = same(got, s.want) && got.clean() == s.want.clean();
    std::printf("%s  %s\n", ok ? "PASS" : "FAIL", s.name);
    if (!ok) {
      ++failures;
      std::printf("      got  %s\n      want %s\n", describe(got).c_str(), describe(s.want).c_str());
    }
  }
  if (failures) {
    std::printf("sluice-bench self-test: %d checks FAILED\n", failures);
  } else {
    std::printf("sluice-bench self-test: all %zu scenarios and the plan checks passed\n", scenarios.size());
  }
  return failures ? 1 : 0;
}

}  // namespace sluice_bench
