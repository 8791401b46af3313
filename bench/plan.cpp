#include "bench/plan.hpp"

#include <cctype>
#include <cmath>
#include <map>
#include <optional>

#include "bench/util.hpp"

namespace sluice_bench {

namespace {

bool simple_tag(const std::string& tag) {
  if (tag.empty()) return false;
  for (unsigned char c : tag) {
    if (!std::isalnum(c) && c != '_') return false;
  }
  return true;
}

std::string ascii_lower(std::string s) {
  for (auto& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

namespace {

StreamSpec parse_unweighted_stream(const std::string& text) {
  static const char* const plain[] = {"user",          "user:notification",  "public",        "public:media",
                                      "public:local",  "public:local:media", "public:remote", "public:remote:media",
                                      "direct"};
  for (const char* name : plain) {
    if (text == name) return {text, text, "", text == "user" || text == "user:notification" || text == "direct"};
  }
  auto with_param = [&](const std::string& prefix, const std::string& name) -> std::optional<StreamSpec> {
    if (text.rfind(prefix, 0) != 0) return std::nullopt;
    return StreamSpec{text, name, text.substr(prefix.size()), false};
  };
  if (auto s = with_param("hashtag:local:", "hashtag:local")) {
    if (!simple_tag(s->param)) throw UsageError("--stream " + text + ": the tag must be ASCII letters, digits or _");
    return *s;
  }
  if (auto s = with_param("hashtag:", "hashtag")) {
    if (!simple_tag(s->param)) throw UsageError("--stream " + text + ": the tag must be ASCII letters, digits or _");
    return *s;
  }
  if (text == "list:own") return StreamSpec{text, "list", "", true, true};
  if (auto s = with_param("list:", "list")) {
    if (s->param.empty() || s->param.find_first_not_of("0123456789") != std::string::npos) {
      throw UsageError("--stream " + text + ": the list id must be a number");
    }
    return *s;
  }
  throw UsageError("--stream: unknown stream '" + text + "' (see --help)");
}

}  // namespace

StreamSpec parse_stream(const std::string& text) {
  const size_t star = text.rfind('*');
  if (star == std::string::npos) return parse_unweighted_stream(text);
  const std::string weight = text.substr(star + 1);
  if (weight.empty() || weight.size() > 4 || weight.find_first_not_of("0123456789") != std::string::npos ||
      std::stoul(weight) == 0) {
    throw UsageError("--stream " + text + ": the weight after '*' must be a whole number from 1 to 9999");
  }
  StreamSpec s = parse_unweighted_stream(text.substr(0, star));
  s.weight = static_cast<uint32_t>(std::stoul(weight));
  return s;
}

static std::string channel_of(const StreamSpec& s, const TokenEntry& token) {
  if (s.name == "user") return "timeline:" + token.account_id;
  if (s.name == "user:notification") return "timeline:" + token.account_id + ":notifications";
  if (s.name == "direct") return "timeline:direct:" + token.account_id;
  if (s.name == "hashtag") return "timeline:hashtag:" + ascii_lower(s.param);
  if (s.name == "hashtag:local") return "timeline:hashtag:" + ascii_lower(s.param) + ":local";
  if (s.name == "list") return "timeline:list:" + (s.own_list ? token.account_id : s.param);
  return "timeline:" + s.name;  // public, public:media, public:local, ...
}

Plan build_plan(const Options& o) {
  Plan plan;
  for (const auto& text : o.streams) plan.streams.push_back(parse_stream(text));
  plan.tokens = o.tokens;
  for (const auto& s : plan.streams) {
    if (!s.needs_account) continue;
    for (const auto& t : plan.tokens) {
      if (t.account_id.empty()) {
        throw UsageError("stream '" + s.text + "' needs the account id of every token (--account-id or a tokens file)");
      }
    }
  }

  // Weighted streams ("NAME*W"): client i takes token i mod T and a stream drawn from
  // the weights by a hash of i, so streams do not line up with tokens (account a's
  // clients are not all on the same stream) and popularity is skewed as asked. Without
  // weights the clients take streams round-robin as before.
  bool weighted = false;
  uint64_t total_weight = 0;
  for (const auto& s : plan.streams) {
    weighted |= s.weight != 1;
    total_weight += s.weight;
  }
  const auto streams = static_cast<uint32_t>(plan.streams.size());
  const auto tokens = static_cast<uint32_t>(plan.tokens.size());
  std::vector<uint32_t> clients_of_stream(streams, 0);

  std::map<std::string, uint32_t>& channel_index = plan.channel_index;
  plan.clients.reserve(o.clients);
  for (uint32_t i = 0; i < o.clients; ++i) {
    ClientSpec c{};
    double k = 0;        // this client is the k-th of its transport group
    uint32_t group = 0;  // the group whose SSE share is kept exact
    if (weighted) {
      uint64_t draw = splitmix64(0x57E4A11u ^ i) % total_weight;
      c.stream = 0;
      while (draw >= plan.streams[c.stream].weight) {
        draw -= plan.streams[c.stream].weight;
        ++c.stream;
      }
      c.token = i % tokens;
      group = c.stream;
      k = clients_of_stream[c.stream]++;
    } else {
      c.stream = i % streams;
      // Tokens advance once per full round of streams, so every stream is used with
      // every token whenever there are at least streams x tokens clients.
      c.token = (i / streams) % tokens;
      const uint32_t combos = streams * tokens;
      group = i % combos;
      k = static_cast<double>(i / combos);
    }
    // Transport: within each group (a (stream, token) combination, or a weighted
    // stream), its k-th client is SSE when floor((k+1)s + phase) > floor(k s + phase).
    // That gives every group its share of SSE clients (so transports never line up with
    // tokens or streams), and the golden-ratio phase per group keeps the total share
    // right even when there are fewer clients than groups.
    const double phase = std::fmod(group * 0.6180339887498949, 1.0);
    c.sse = std::floor((k + 1) * o.sse_share + phase + 1e-9) > std::floor(k * o.sse_share + phase + 1e-9);
    std::string channel = channel_of(plan.streams[c.stream], plan.tokens[c.token]);
    auto [it, inserted] = channel_index.emplace(channel, static_cast<uint32_t>(plan.channels.size()));
    if (inserted) {
      plan.channels.push_back(channel);
      plan.clients_per_channel.push_back(0);
      plan.remote_channel.push_back(plan.streams[c.stream].name.find("remote") != std::string::npos);
    }
    c.channel = it->second;
    ++plan.clients_per_channel[c.channel];
    (c.sse ? plan.sse_clients : plan.ws_clients)++;
    plan.clients.push_back(c);
  }
  return plan;
}

std::vector<uint32_t> Plan::heard_channels(uint32_t client) const {
  const ClientSpec& c = clients[client];
  std::vector<uint32_t> out{c.channel};
  if (streams[c.stream].name == "user") {
    auto it = channel_index.find("timeline:" + tokens[c.token].account_id + ":notifications");
    if (it != channel_index.end()) out.push_back(it->second);
  }
  return out;
}

std::string Plan::stream_param(uint32_t client) const {
  const ClientSpec& c = clients[client];
  const StreamSpec& s = streams[c.stream];
  return s.own_list ? tokens[c.token].account_id : s.param;
}

std::vector<std::string> Plan::stream_echo(uint32_t client) const {
  const StreamSpec& s = streams[clients[client].stream];
  if (s.name == "hashtag" || s.name == "hashtag:local" || s.name == "list") return {s.name, stream_param(client)};
  return {s.name};
}

bool Plan::filtered(uint32_t client) const {
  const std::string& name = streams[clients[client].stream].name;
  return name.rfind("public", 0) == 0 || name.rfind("hashtag", 0) == 0;
}

std::string Plan::request_for(uint32_t client, const std::string& host_header, const std::string& ws_key) const {
  const ClientSpec& c = clients[client];
  const StreamSpec& s = streams[c.stream];
  const std::string& token = tokens[c.token].token;
  std::string target;
  if (c.sse) {
    std::string base = s.name;
    bool media = false;
    if (base.size() > 6 && base.compare(base.size() - 6, 6, ":media") == 0) {
      base.resize(base.size() - 6);
      media = true;
    }
    target = "/api/v1/streaming/";
    for (char ch : base) target += ch == ':' ? '/' : ch;  // user:notification -> user/notification
    std::string query;
    if (media) query = "only_media=true";
    if (s.name == "hashtag" || s.name == "hashtag:local") query = "tag=" + url_encode(s.param);
    if (s.name == "list") query = "list=" + url_encode(stream_param(client));
    if (!query.empty()) target += "?" + query;
  } else {
    target = "/api/v1/streaming?stream=" + url_encode(s.name);
    if (s.name == "hashtag" || s.name == "hashtag:local") target += "&tag=" + url_encode(s.param);
    if (s.name == "list") target += "&list=" + url_encode(stream_param(client));
  }

  std::string req;
  req.reserve(256 + token.size());
  req += "GET " + target + " HTTP/1.1\r\nHost: " + host_header + "\r\nAuthorization: Bearer " + token + "\r\n";
  if (c.sse) {
    req += "Accept: text/event-stream\r\n\r\n";
  } else {
    req += "Upgrade: websocket\r\nConnection: Upgrade\r\nSec-WebSocket-Version: 13\r\nSec-WebSocket-Key: " + ws_key +
           "\r\n\r\n";
  }
  return req;
}

}  // namespace sluice_bench
