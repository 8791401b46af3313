#include "bench/publisher.hpp"

#include <hiredis/hiredis.h>

#include <cstring>
#include <stdexcept>

#include <nlohmann/json.hpp>

#include "bench/event_marker.hpp"

namespace sluice_bench {

namespace {

using ojson = nlohmann::ordered_json;

constexpr const char* kLorem =
    "Lorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod tempor incididunt ut labore et "
    "dolore magna aliqua. Ut enim ad minim veniam, quis nostrud exercitation ullamco laboris nisi ut aliquip "
    "ex ea commodo consequat. Duis aute irure dolor in reprehenderit in voluptate velit esse cillum dolore eu "
    "fugiat nulla pariatur. ";

ojson make_status(const std::string& content, bool remote) {
  const std::string username = remote ? "carol" : "alice";
  const std::string acct = remote ? "carol@remote.example" : "alice";
  const std::string origin = remote ? "https://remote.example" : "https://social.example";
  const std::string account_id = remote ? "109500000000000003" : "109000000000000001";
  ojson account = {
      {"id", account_id},
      {"username", username},
      {"acct", acct},
      {"display_name", remote ? "Carol" : "Alice"},
      {"locked", false},
      {"bot", false},
      {"discoverable", true},
      {"indexable", false},
      {"group", false},
      {"created_at", "2022-11-01T00:00:00.000Z"},
      {"note", "<p>Hi</p>"},
      {"url", origin + "/@" + username},
      {"uri", origin + "/users/" + username},
      {"avatar", "https://social.example/avatars/original/missing.png"},
      {"avatar_static", "https://social.example/avatars/original/missing.png"},
      {"header", "https://social.example/headers/original/missing.png"},
      {"header_static", "https://social.example/headers/original/missing.png"},
      {"followers_count", 12},
      {"following_count", 7},
      {"statuses_count", 345},
      {"last_status_at", "2026-01-15"},
      {"hide_collections", nullptr},
      {"noindex", false},
      {"emojis", ojson::array()},
      {"roles", ojson::array()},
      {"fields", ojson::array()},
  };
  ojson media = {
      {"id", "113999000000000010"},
      {"type", "image"},
      {"url", "https://social.example/system/media_attachments/files/113/999/000/000/000/010/original/x.jpg"},
      {"preview_url", "https://social.example/system/media_attachments/files/113/999/000/000/000/010/small/x.jpg"},
      {"remote_url", nullptr},
      {"preview_remote_url", nullptr},
      {"text_url", nullptr},
      {"meta", {{"original", {{"width", 1600}, {"height", 900}, {"size", "1600x900"}, {"aspect", 1.7777777777777777}}}}},
      {"description", "A cup of coffee"},
      {"blurhash", "UFGRx8~q9FIU00xu%MRj_3ofWBt7-;of%MWB"},
  };
  return {
      {"id", "113999000000000001"},
      {"created_at", "2026-01-15T10:20:30.000Z"},
      {"in_reply_to_id", nullptr},
      {"in_reply_to_account_id", nullptr},
      {"sensitive", false},
      {"spoiler_text", ""},
      {"visibility", "public"},
      {"language", "en"},
      {"uri", origin + "/users/" + username + "/statuses/113999000000000001"},
      {"url", origin + "/@" + username + "/113999000000000001"},
      {"replies_count", 0},
      {"reblogs_count", 0},
      {"favourites_count", 0},
      {"quotes_count", 0},
      {"edited_at", nullptr},
      {"content", content},
      {"reblog", nullptr},
      {"application", {{"name", "Web"}, {"website", nullptr}}},
      {"account", account},
      {"media_attachments", ojson::array({media})},
      {"mentions", ojson::array()},
      {"tags", ojson::array({{{"name", "cafe"}, {"url", "https://social.example/tags/cafe"}}})},
      {"emojis", ojson::array()},
      {"quote", nullptr},
      {"card", nullptr},
      {"poll", nullptr},
  };
}

// Rails' JSON encoder escapes <, > and & in strings; do the same so that the
// server sees what Mastodon really sends (it re-serialises them raw).
std::string rails_escape(const std::string& json) {
  std::string out;
  out.reserve(json.size() + json.size() / 8);
  for (char c : json) {
    switch (c) {
      case '<': out += "\\u003c"; break;
      case '>': out += "\\u003e"; break;
      case '&': out += "\\u0026"; break;
      default: out += c;
    }
  }
  return out;
}

}  // namespace

bool known_event_name(const std::string& name) {
  return name == "update" || name == "status.update" || name == "delete";
}

bool is_status_event(const std::string& name) { return name == "update" || name == "status.update"; }

EventTemplate::EventTemplate(const std::string& marker_prefix, uint32_t target_bytes, bool remote,
                             const std::string& event, uint64_t run_seed)
    : event_(event), remote_(remote), run_seed_(run_seed) {
  if (!known_event_name(event)) throw std::logic_error("unknown event name " + event);
  const std::string marker = marker_prefix + marker_body_placeholder();
  if (event == "delete") {
    // Mastodon sends the deleted status id as a string payload; the server forwards
    // string payloads unchanged. The marker stands in for the id.
    text_ = ojson{{"event", "delete"}, {"payload", marker}}.dump();
    client_payload_ = marker;
  } else {
    const std::string head = "<p>Benchmark status " + marker + " ";
    auto status_for = [&](const std::string& filler) {
      ojson status = make_status(head + filler + "</p>", remote);
      if (event == "status.update") status["edited_at"] = "2026-01-15T10:25:00.000Z";
      return status;
    };
    auto render = [&](const std::string& filler) {
      ojson message = {{"event", event}, {"payload", status_for(filler)}};
      return rails_escape(message.dump());
    };
    const std::string bare = render("");
    std::string filler;
    if (bare.size() < target_bytes) {
      // Filler is plain ASCII (no escapes), so one character adds one byte.
      const size_t want = target_bytes - bare.size();
      const size_t lorem = std::strlen(kLorem);
      while (filler.size() < want) filler.append(kLorem, std::min(lorem, want - filler.size()));
    }
    text_ = render(filler);
    // What JSON.stringify(JSON.parse(payload)) gives: compact, keys in order, <>&
    // raw again. nlohmann's compact dump writes these values the same way.
    client_payload_ = status_for(filler).dump();
  }
  const size_t marker_at = text_.find(marker_prefix);
  client_marker_at_ = client_payload_.find(marker_prefix);
  if (marker_at == std::string::npos || client_marker_at_ == std::string::npos) {
    throw std::logic_error("event template lost its marker");
  }
  body_pos_ = marker_at + marker_prefix.size();
}

const std::string& EventTemplate::stamp(uint64_t sent_ns, uint32_t seq, uint32_t channel) {
  write_marker_body(text_.data() + body_pos_, run_seed_, MarkerFields{sent_ns, seq, channel});
  return text_;
}

std::vector<EventTemplate> make_event_templates(const std::string& marker_prefix, uint32_t payload_bytes,
                                                const std::vector<std::string>& mix, uint64_t run_seed) {
  std::vector<EventTemplate> out;
  for (bool remote : {false, true}) {
    for (const auto& name : mix) out.emplace_back(marker_prefix, payload_bytes, remote, name, run_seed);
  }
  return out;
}

VerifierSetup make_verifier_setup(const std::vector<EventTemplate>& templates, size_t mix_size,
                                  const std::string& marker_prefix, uint64_t run_seed, std::vector<bool> channel_remote) {
  VerifierSetup setup;
  setup.marker_prefix = marker_prefix;
  setup.run_seed = run_seed;
  setup.channel_remote = std::move(channel_remote);
  for (size_t k = 0; k < mix_size; ++k) {
    ExpectedEvent e;
    e.name = templates[k].event();
    e.status = is_status_event(e.name);
    for (int remote = 0; remote < 2; ++remote) {
      const EventTemplate& t = templates[static_cast<size_t>(remote) * mix_size + k];
      e.payload[remote] = t.client_payload();
      e.marker_at[remote] = t.client_marker_at();
    }
    setup.mix.push_back(std::move(e));
  }
  return setup;
}

RedisPublisher::RedisPublisher(const std::string& host, int port, const std::string& user,
                               const std::string& password, const std::string& ns)
    : host_(host), user_(user), password_(password), port_(port), prefix_(ns.empty() ? std::string() : ns + ":") {
  connect(timeval{5, 0});
}

void RedisPublisher::connect(timeval timeout) {
  ctx_ = redisConnectWithTimeout(host_.c_str(), port_, timeout);
  if (!ctx_) throw std::runtime_error("Redis: out of memory");
  if (ctx_->err) {
    std::string msg = "Redis " + host_ + ":" + std::to_string(port_) + ": " + ctx_->errstr;
    redisFree(ctx_);
    ctx_ = nullptr;
    throw RedisLost(msg);
  }
  redisSetTimeout(ctx_, timeval{5, 0});
  if (!password_.empty()) {
    redisReply* r = user_.empty()
                        ? static_cast<redisReply*>(redisCommand(ctx_, "AUTH %b", password_.data(), password_.size()))
                        : static_cast<redisReply*>(redisCommand(ctx_, "AUTH %b %b", user_.data(), user_.size(),
                                                                password_.data(), password_.size()));
    if (!r) check("AUTH");
    bool bad = r->type == REDIS_REPLY_ERROR;
    std::string err = bad ? std::string(r->str, r->len) : "";
    freeReplyObject(r);
    if (bad) throw std::runtime_error("Redis AUTH: " + err);
  }
  redisReply* r = static_cast<redisReply*>(redisCommand(ctx_, "PING"));
  if (!r) check("PING");
  // A restarting Redis answers "-LOADING ..." until its data set is loaded.
  bool loading = r->type == REDIS_REPLY_ERROR;
  freeReplyObject(r);
  if (loading) {
    redisFree(ctx_);
    ctx_ = nullptr;
    throw RedisLost("Redis is loading");
  }
}

bool RedisPublisher::reconnect() {
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  try {
    connect(timeval{0, 200'000});
    return true;
  } catch (const RedisLost&) {
    if (ctx_) redisFree(ctx_);
    ctx_ = nullptr;
    return false;
  }
}

RedisPublisher::~RedisPublisher() {
  if (ctx_) redisFree(ctx_);
}

void RedisPublisher::check(const char* what) {
  std::string msg = std::string("Redis ") + what + ": " + (ctx_ && ctx_->err ? ctx_->errstr : "no reply");
  // hiredis: the context is unusable after an I/O or protocol error.
  if (ctx_) redisFree(ctx_);
  ctx_ = nullptr;
  throw RedisLost(msg);
}

long long RedisPublisher::publish(const std::string& channel, const std::string& message) {
  if (!ctx_) throw RedisLost("Redis: not connected");
  const std::string name = prefix_ + channel;
  redisReply* r = static_cast<redisReply*>(
      redisCommand(ctx_, "PUBLISH %b %b", name.data(), name.size(), message.data(), message.size()));
  if (!r) check("PUBLISH");
  long long receivers = r->type == REDIS_REPLY_INTEGER ? r->integer : -1;
  std::string err = r->type == REDIS_REPLY_ERROR ? std::string(r->str, r->len) : "";
  freeReplyObject(r);
  if (!err.empty()) throw std::runtime_error("Redis PUBLISH: " + err);
  return receivers;
}

void RedisPublisher::append_publish(const std::string& channel, const std::string& message) {
  if (!ctx_) throw RedisLost("Redis: not connected");
  const std::string name = prefix_ + channel;
  if (redisAppendCommand(ctx_, "PUBLISH %b %b", name.data(), name.size(), message.data(), message.size()) != REDIS_OK) {
    check("PUBLISH");
  }
}

std::vector<long long> RedisPublisher::collect_replies(size_t count) {
  if (!ctx_) throw RedisLost("Redis: not connected");
  std::vector<long long> out;
  out.reserve(count);
  std::string err;
  for (size_t i = 0; i < count; ++i) {
    void* raw = nullptr;
    if (redisGetReply(ctx_, &raw) != REDIS_OK || !raw) check("PUBLISH");
    auto* r = static_cast<redisReply*>(raw);
    out.push_back(r->type == REDIS_REPLY_INTEGER ? r->integer : -1);
    if (r->type == REDIS_REPLY_ERROR && err.empty()) err.assign(r->str, r->len);
    freeReplyObject(r);
  }
  if (!err.empty()) throw std::runtime_error("Redis PUBLISH: " + err);
  return out;
}

std::vector<long long> RedisPublisher::numsub(const std::vector<std::string>& channels) {
  if (!ctx_) throw RedisLost("Redis: not connected");
  std::vector<const char*> argv{"PUBSUB", "NUMSUB"};
  std::vector<size_t> lens{6, 6};
  std::vector<std::string> names;
  names.reserve(channels.size());
  for (const auto& c : channels) names.push_back(prefix_ + c);
  for (const auto& n : names) {
    argv.push_back(n.data());
    lens.push_back(n.size());
  }
  redisReply* r = static_cast<redisReply*>(redisCommandArgv(ctx_, static_cast<int>(argv.size()), argv.data(), lens.data()));
  if (!r) check("PUBSUB NUMSUB");
  std::vector<long long> out(channels.size(), 0);
  if (r->type == REDIS_REPLY_ARRAY) {
    for (size_t i = 0; i + 1 < r->elements && i / 2 < out.size(); i += 2) {
      if (r->element[i + 1]->type == REDIS_REPLY_INTEGER) out[i / 2] = r->element[i + 1]->integer;
    }
  }
  freeReplyObject(r);
  return out;
}

}  // namespace sluice_bench
