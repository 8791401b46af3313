// Randomized end-to-end replay of docs/protocol.md#event-processing (per-event processing on public and
// hashtag streams): many viewers with languages, roles, blocks, mutes, domain blocks,
// keyword filters and feed-access settings; thousands of realistic events published
// to Redis; everything every client receives compared with what a small evaluator,
// written here straight from docs/protocol.md (docs/protocol.md#which-events-are-forwarded,
// docs/protocol.md#filtered-streams, docs/protocol.md#keyword-filters, docs/protocol.md#feed-access-settings),
// says it must receive. The evaluator shares no code with the server.
#include <gtest/gtest.h>
#include <hiredis/hiredis.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <iostream>
#include <map>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <random>
#include <regex>
#include <set>
#include <sstream>
#include <thread>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

using Json = nlohmann::ordered_json;

class FilteringReplay : public ::testing::TestWithParam<Deployment> {};

// ---------------------------------------------------------------- the model

struct FilterRow {
  std::string id;
  std::string title;
  std::vector<std::string> context;
  std::optional<std::string> expires_iso;  // as the client must see it
  bool expired = false;                    // excluded by query (c)
  int action = 0;
  std::vector<std::pair<std::string, bool>> keywords;  // (keyword, whole_word) in row order
};

struct Viewer {
  TestAccount account;
  std::string username;
  std::optional<std::vector<std::string>> languages;  // nullopt: NULL chosen_languages
  bool bypass = false;                                 // role permissions & 0x100000
  std::set<long long> blocking, blocked_by, muting;
  std::set<std::string> domains;
  std::vector<FilterRow> filters;
};

struct Author {
  long long id;
  std::string username;
  std::string acct;
};

enum class FeedKind { live, topic };

struct Subscription {
  size_t client;
  size_t viewer;
  std::string channel;
  std::string echo;  // WebSocket `stream` value, compact JSON
  FeedKind kind;
};

struct ClientPlan {
  size_t viewer;
  bool websocket;
  std::string target;
  std::vector<std::string> subscribe_messages;  // extra WebSocket subscribes
};

struct Received {
  std::string stream;  // "" for SSE
  std::string event;
  std::string payload;
  bool operator<(const Received& o) const {
    return std::tie(stream, event, payload) < std::tie(o.stream, o.event, o.payload);
  }
  bool operator==(const Received& o) const {
    return stream == o.stream && event == o.event && payload == o.payload;
  }
};

// Settings rows (docs/protocol.md#feed-access-settings), global for the instance.
constexpr bool kLocalLiveAccess = false;    // E'--- disabled\n'
constexpr bool kRemoteLiveAccess = true;    // E'--- public\n'
constexpr bool kLocalTopicAccess = true;    // row with NULL value
constexpr bool kRemoteTopicAccess = false;  // E'--- disabled\n'

// ---------------------------------------------- docs/protocol.md#keyword-filters by hand

// HTML fragment to text for the markup this test generates: tags removed, the five
// entities it uses decoded, text kept as is.
std::string html_text(const std::string& html) {
  static const std::vector<std::pair<std::string, std::string>> entities = {
      {"&amp;", "&"}, {"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&#39;", "'"}};
  std::string out;
  for (size_t i = 0; i < html.size();) {
    if (html[i] == '<' && i + 1 < html.size() && (std::isalpha(static_cast<unsigned char>(html[i + 1])) || html[i + 1] == '/')) {
      size_t end = html.find('>', i);
      if (end != std::string::npos) {
        i = end + 1;
        continue;
      }
    }
    if (html[i] == '&') {
      bool decoded = false;
      for (const auto& [entity, text] : entities) {
        if (html.compare(i, entity.size(), entity) == 0) {
          out += text;
          i += entity.size();
          decoded = true;
          break;
        }
      }
      if (decoded) continue;
    }
    out.push_back(html[i++]);
  }
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t pos = s.find(from); pos != std::string::npos; pos = s.find(from, pos + to.size())) {
    s.replace(pos, from.size(), to);
  }
  return s;
}

// The searched text (docs/protocol.md#searched-text).
std::string searched_text(const Json& p) {
  std::vector<std::string> parts;
  const Json* spoiler = p.contains("spoiler_text") ? &p["spoiler_text"] : nullptr;
  parts.push_back(spoiler && spoiler->is_string() ? spoiler->get<std::string>() : "");
  parts.push_back(p.contains("content") && p["content"].is_string() ? p["content"].get<std::string>() : "");
  if (p.contains("poll") && p["poll"].is_object() && p["poll"].contains("options")) {
    for (const auto& option : p["poll"]["options"]) parts.push_back(option["title"].get<std::string>());
  }
  for (const auto& media : p["media_attachments"]) {
    parts.push_back(media["description"].is_string() ? media["description"].get<std::string>() : "");
  }
  std::string joined;
  for (size_t i = 0; i < parts.size(); ++i) joined += (i ? "\n\n" : "") + parts[i];
  static const std::regex br("<br\\s*/?>");
  joined = std::regex_replace(joined, br, "\n");
  joined = replace_all(joined, "</p><p>", "\n\n");
  return html_text(joined);
}

// Lowercases the non-ASCII capitals this test uses (each pair has equal UTF-8
// lengths, so offsets are kept); std::regex's icase handles ASCII.
std::string fold(std::string s) {
  static const std::vector<std::pair<std::string, std::string>> pairs = {
      {"\u00c9", "\u00e9"}, {"\u00cf", "\u00ef"}, {"\u03a3", "\u03c3"}, {"\u03c2", "\u03c3"},
      {"\u039f", "\u03bf"}, {"\u03a6", "\u03c6"}, {"\u038a", "\u03af"}, {"\u0391", "\u03b1"}};
  for (const auto& [upper, lower] : pairs) s = replace_all(s, upper, lower);
  return s;
}

std::string keyword_source(const std::vector<std::pair<std::string, bool>>& keywords) {
  std::string source;
  for (size_t i = 0; i < keywords.size(); ++i) {
    if (i) source += '|';
    std::string escaped;
    for (char c : fold(keywords[i].first)) {
      if (std::string_view(".*+?^${}()|[]\\").find(c) != std::string_view::npos) escaped += '\\';
      escaped += c;
    }
    auto word = [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '_'; };
    bool whole = keywords[i].second;
    if (whole && !escaped.empty() && word(escaped.front()) && static_cast<unsigned char>(escaped.front()) < 0x80)
      source += "\\b";
    source += escaped;
    if (whole && !escaped.empty() && word(escaped.back()) && static_cast<unsigned char>(escaped.back()) < 0x80)
      source += "\\b";
  }
  return source;
}

std::string filtered_array(const Viewer& viewer, const Json& p) {
  std::string text = searched_text(p);
  Json out = Json::array();
  if (text.empty()) return out.dump();
  std::string folded = fold(text);
  for (const auto& filter : viewer.filters) {
    if (filter.expired) continue;
    std::regex re(keyword_source(filter.keywords), std::regex::ECMAScript | std::regex::icase);
    std::smatch m;
    if (!std::regex_search(folded, m, re)) continue;
    Json f;
    f["id"] = filter.id;
    f["title"] = filter.title;
    f["context"] = filter.context;
    f["expires_at"] = filter.expires_iso ? Json(*filter.expires_iso) : Json(nullptr);
    if (filter.action == 0) f["filter_action"] = "warn";
    if (filter.action == 1) f["filter_action"] = "hide";
    Json entry;
    entry["filter"] = f;
    entry["keyword_matches"] = Json::array({text.substr(m.position(0), m.length(0))});
    entry["status_matches"] = nullptr;
    out.push_back(entry);
  }
  return out.dump();
}

bool numeric_id(const Json& id) {
  if (!id.is_string()) return id.is_number_integer();
  const auto& s = id.get_ref<const std::string&>();
  return !s.empty() && s.size() < 19 && std::all_of(s.begin(), s.end(), [](char c) { return c >= '0' && c <= '9'; });
}

long long id_value(const Json& id) { return id.is_string() ? std::stoll(id.get<std::string>()) : id.get<long long>(); }

// Why statuses were dropped or annotated, to show the run really covered each rule.
struct Coverage {
  size_t malformed = 0, feed_access = 0, language = 0, non_numeric = 0, relation = 0, domain = 0;
  size_t rails_filtered = 0, annotated_empty = 0, annotated_matches = 0;
};

// docs/protocol.md#filtered-streams for one subscription: nullopt = dropped, else the payload the client gets.
std::optional<std::string> evaluate_status(const Viewer& viewer, FeedKind kind, const Json& p, const std::string& raw,
                                           Coverage& coverage) {
  // docs/protocol.md#status-fields-used: a status without account, mentions or media_attachments is dropped.
  if (!p.contains("account") || !p["account"].is_object() || !p.contains("mentions") || !p["mentions"].is_array() ||
      !p.contains("media_attachments") || !p["media_attachments"].is_array()) {
    ++coverage.malformed;
    return std::nullopt;
  }
  const Json& account = p["account"];
  // Step 1: feed access.
  bool local = account["username"] == account["acct"];
  bool local_access = viewer.bypass || (kind == FeedKind::live ? kLocalLiveAccess : kLocalTopicAccess);
  bool remote_access = viewer.bypass || (kind == FeedKind::live ? kRemoteLiveAccess : kRemoteTopicAccess);
  if ((local && !local_access) || (!local && !remote_access)) {
    ++coverage.feed_access;
    return std::nullopt;
  }
  // Step 2: language.
  if (viewer.languages) {
    if (!p.contains("language") || !p["language"].is_string() ||
        std::find(viewer.languages->begin(), viewer.languages->end(), p["language"].get<std::string>()) ==
            viewer.languages->end()) {
      ++coverage.language;
      return std::nullopt;
    }
  }
  // Steps 3–4: relations; a non-numeric id fails the query, which drops.
  std::vector<Json> targets = {account["id"]};
  for (const auto& m : p["mentions"]) targets.push_back(m["id"]);
  for (const auto& t : targets) {
    if (!numeric_id(t)) {
      ++coverage.non_numeric;
      return std::nullopt;
    }
  }
  for (const auto& t : targets) {
    long long id = id_value(t);
    if (viewer.blocking.count(id) || viewer.muting.count(id)) {
      ++coverage.relation;
      return std::nullopt;
    }
  }
  if (viewer.blocked_by.count(id_value(account["id"]))) {
    ++coverage.relation;
    return std::nullopt;
  }
  std::string acct = account["acct"].get<std::string>();
  auto at = acct.find('@');
  if (at != std::string::npos && at + 1 < acct.size() && viewer.domains.count(acct.substr(at + 1))) {
    ++coverage.domain;
    return std::nullopt;
  }
  // Step 5: Rails already filtered.
  if (p.contains("filtered")) {
    ++coverage.rails_filtered;
    return raw;
  }
  // Step 6.
  std::string filtered = filtered_array(viewer, p);
  ++(filtered == "[]" ? coverage.annotated_empty : coverage.annotated_matches);
  return raw.substr(0, raw.size() - 1) + ",\"filtered\":" + filtered + "}";
}

// ---------------------------------------------------------------- helpers

std::string sql_text(const std::string& s) { return "'" + replace_all(s, "'", "''") + "'"; }

std::string sql_array(const std::vector<std::string>& items) {
  std::string out = "ARRAY[";
  for (size_t i = 0; i < items.size(); ++i) out += (i ? "," : "") + sql_text(items[i]);
  return out + "]::character varying[]";
}

// Rails writes `<`, `>` and `&` as \u003c, \u003e, \u0026 (they only occur in strings).
std::string rails_escape(const std::string& json) {
  std::string out;
  for (char c : json) {
    if (c == '<') out += "\\u003c";
    else if (c == '>') out += "\\u003e";
    else if (c == '&') out += "\\u0026";
    else out += c;
  }
  return out;
}

std::string url_encode(const std::string& s) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.') {
      out += static_cast<char>(c);
    } else {
      char buf[4];
      std::snprintf(buf, sizeof buf, "%%%02X", c);
      out += buf;
    }
  }
  return out;
}

class Publisher {
 public:
  Publisher() : context_(redisConnect("127.0.0.1", suite_redis().port())) {}
  ~Publisher() {
    if (context_) redisFree(context_);
  }
  bool ok() const { return context_ && !context_->err; }
  void publish(const std::string& channel, const std::string& message) {
    auto* reply = static_cast<redisReply*>(redisCommand(context_, "PUBLISH %b %b", channel.data(), channel.size(),
                                                        message.data(), message.size()));
    if (reply) freeReplyObject(reply);
    ++messages_;
  }
  size_t messages() const { return messages_; }

 private:
  redisContext* context_;
  size_t messages_ = 0;
};

// ---------------------------------------------------------------- the test

TEST_P(FilteringReplay, RandomizedEventsMatchTheContractForEveryClient) {
  static int run = 0;
  const std::string tag = "r" + std::to_string(::getpid()) + "x" + std::to_string(++run);
  std::mt19937 rng(GetParam() == Deployment::all_in_one ? 20260131 : 20260201);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  auto pick = [&](const auto& items) -> const auto& {
    return items[std::uniform_int_distribution<size_t>(0, items.size() - 1)(rng)];
  };
  auto& pg = suite_postgres();

  // Settings (docs/protocol.md#feed-access-settings): global rows, read at subscribe time.
  pg.exec("DELETE FROM settings; INSERT INTO settings (var, value) VALUES "
          "('local_live_feed_access', E'--- disabled\\n'), ('remote_live_feed_access', E'--- public\\n'), "
          "('local_topic_feed_access', NULL), ('remote_topic_feed_access', E'--- disabled\\n')");
  std::string bypass_role = pg.query_value("INSERT INTO user_roles (name, permissions) VALUES ('replay-mod', " +
                                           std::to_string(0x100000 | 0x1) + ") RETURNING id");
  std::string plain_role = pg.query_value(
      "INSERT INTO user_roles (name, permissions) VALUES ('replay-plain', " + std::to_string(0x1 | 0x400) + ") RETURNING id");

  // Authors without users: local and remote, with domains that differ only by case.
  std::vector<Author> authors;
  const std::vector<std::string> remote_domains = {"remote.example", "Other.example", "third.example",
                                                   "other.example"};
  for (int k = 0; k < 16; ++k) {
    std::string username = "au" + tag + "_" + std::to_string(k);
    std::string domain = k < 8 ? "" : remote_domains[k % remote_domains.size()];
    long long id = std::stoll(pg.query_value("INSERT INTO accounts (username, domain) VALUES (" + sql_text(username) +
                                             ", " + (domain.empty() ? "NULL" : sql_text(domain)) + ") RETURNING id"));
    authors.push_back({id, username, domain.empty() ? username : username + "@" + domain});
  }

  // Viewers.
  constexpr size_t kViewers = 24;
  std::vector<Viewer> viewers(kViewers);
  const std::vector<std::optional<std::vector<std::string>>> language_choices = {
      std::nullopt, std::vector<std::string>{"en"}, std::vector<std::string>{"en", "de"}, std::vector<std::string>{}};
  for (size_t i = 0; i < kViewers; ++i) {
    Viewer& v = viewers[i];
    v.account = create_account(pg, "replay" + tag + "v" + std::to_string(i));
    v.username = pg.query_value("SELECT username FROM accounts WHERE id = " + std::to_string(v.account.account_id));
    v.languages = language_choices[i % language_choices.size()];
    std::string languages_sql = "NULL";
    if (v.languages) languages_sql = v.languages->empty() ? "'{}'" : sql_array(*v.languages);
    v.bypass = i % 3 == 0;
    std::string role = v.bypass ? bypass_role : (i % 3 == 1 && i % 2 == 0 ? plain_role : "NULL");
    pg.exec("UPDATE users SET chosen_languages = " + languages_sql + ", role_id = " + role +
            " WHERE id = " + std::to_string(v.account.user_id));
    authors.push_back({v.account.account_id, v.username, v.username});
  }

  // Relations.
  for (size_t i = 0; i < kViewers; ++i) {
    Viewer& v = viewers[i];
    long long me = v.account.account_id;
    std::string sql;
    int blocks = std::uniform_int_distribution<int>(0, 2)(rng);
    for (int b = 0; b < blocks; ++b) {
      long long target = pick(authors).id;
      if (target == me || !v.blocking.insert(target).second) continue;
      sql += "INSERT INTO blocks (account_id, target_account_id) VALUES (" + std::to_string(me) + "," +
             std::to_string(target) + ");";
    }
    if (chance(0.4)) {
      long long blocker = pick(authors).id;
      bool exists = false;
      for (size_t j = 0; j < kViewers; ++j) {
        if (viewers[j].account.account_id == blocker && viewers[j].blocking.count(me)) exists = true;
      }
      if (blocker != me && !exists && v.blocked_by.insert(blocker).second) {
        sql += "INSERT INTO blocks (account_id, target_account_id) VALUES (" + std::to_string(blocker) + "," +
               std::to_string(me) + ");";
        for (size_t j = 0; j < kViewers; ++j) {
          if (viewers[j].account.account_id == blocker) viewers[j].blocking.insert(me);
        }
      }
    }
    int mutes = std::uniform_int_distribution<int>(0, 2)(rng);
    for (int m = 0; m < mutes; ++m) {
      long long target = pick(authors).id;
      if (target == me || !v.muting.insert(target).second) continue;
      static const std::vector<std::string> expiries = {"NULL", "now() - interval '1 day'", "now() + interval '30 days'"};
      sql += "INSERT INTO mutes (account_id, target_account_id, hide_notifications, expires_at) VALUES (" +
             std::to_string(me) + "," + std::to_string(target) + "," + (chance(0.5) ? "true" : "false") + "," +
             pick(expiries) + ");";
    }
    if (chance(0.5)) {
      static const std::vector<std::string> domains = {"remote.example", "other.example", "third.example",
                                                       "REMOTE.EXAMPLE"};
      std::string domain = pick(domains);
      v.domains.insert(domain);
      sql += "INSERT INTO account_domain_blocks (account_id, domain) VALUES (" + std::to_string(me) + "," +
             sql_text(domain) + ");";
    }
    if (!sql.empty()) pg.exec(sql);
  }
  // A viewer blocked by another viewer counts there too: keep both sides in sync.
  for (auto& v : viewers) {
    for (auto& w : viewers) {
      if (w.blocking.count(v.account.account_id)) v.blocked_by.insert(w.account.account_id);
    }
  }

  // Keyword filters.
  struct PoolKeyword {
    std::string keyword;
    bool whole_word;
  };
  const std::vector<PoolKeyword> keyword_pool = {
      {"coffee", true}, {"tea", false}, {"c++", false}, {"na\u00efve", true}, {"\u00c9CLAIR", false},
      {"\u03c3\u03bf\u03c6\u03af\u03b1", false}, {"a.b", false}, {"(x)", true}, {"foo|bar", false},
      {"dragon", true}, {"#caf\u00e9", true}, {"spoil", true}, {"end.", true}, {"x*y", false}, {"&", false},
      {"<3", false}, {"\"quoted\"", true}, {"'apos'", false}, {"Hello", true}, {"wor", false}};
  const std::vector<std::string> titles = {"Spoilers", "Caf\u00e9 \"talk\"", "\u03c3\u03bf\u03c6\u03af\u03b1 \u2615",
                                           "plain", "Tab\there", "</script>"};
  const std::vector<std::vector<std::string>> contexts = {
      {"home"}, {"public"}, {"notifications", "thread"}, {}, {"home", "public", "thread"}};
  for (size_t i = 0; i < kViewers; ++i) {
    Viewer& v = viewers[i];
    int count = i == 7 ? 2 : std::uniform_int_distribution<int>(0, 3)(rng);
    for (int f = 0; f < count; ++f) {
      FilterRow row;
      row.title = pick(titles);
      row.context = pick(contexts);
      row.action = std::uniform_int_distribution<int>(0, 2)(rng);
      std::string expires_sql = "NULL";
      double roll = std::uniform_real_distribution<double>(0, 1)(rng);
      if (roll < 0.15) {
        expires_sql = "'2031-05-06 07:08:09.123'";
        row.expires_iso = "2031-05-06T07:08:09.123Z";
      } else if (roll < 0.3) {
        expires_sql = "now() - interval '1 day'";
        row.expired = true;
      }
      row.id = pg.query_value("INSERT INTO custom_filters (account_id, phrase, context, action, expires_at) VALUES (" +
                              std::to_string(v.account.account_id) + "," + sql_text(row.title) + "," +
                              (row.context.empty() ? "'{}'" : sql_array(row.context)) + "," +
                              std::to_string(row.action) + "," + expires_sql + ") RETURNING id");
      int keywords = std::uniform_int_distribution<int>(1, 3)(rng);
      std::string sql;
      for (int k = 0; k < keywords; ++k) {
        PoolKeyword kw = pick(keyword_pool);
        if (i == 7 && f == 1 && k == 0) kw = {"", false};  // one empty keyword: matches at position 0
        bool whole = kw.whole_word != chance(0.25);
        row.keywords.emplace_back(kw.keyword, whole);
        sql += "INSERT INTO custom_filter_keywords (custom_filter_id, keyword, whole_word) VALUES (" + row.id + "," +
               sql_text(kw.keyword) + "," + (whole ? "true" : "false") + ");";
      }
      pg.exec(sql);
      v.filters.push_back(row);
    }
  }

  // Clients and subscriptions.
  std::vector<ClientPlan> plans;
  std::vector<Subscription> subscriptions;
  auto echo = [](std::vector<std::string> parts) { return Json(parts).dump(); };
  for (size_t i = 0; i < kViewers; ++i) {
    const std::string& token = viewers[i].account.token;
    size_t c = plans.size();
    switch (i % 6) {
      case 0:
        plans.push_back({i, false, "/api/v1/streaming/public", {}});
        subscriptions.push_back({c, i, "timeline:public", "", FeedKind::live});
        break;
      case 1:
        plans.push_back({i, false, "/api/v1/streaming/public/local", {}});
        subscriptions.push_back({c, i, "timeline:public:local", "", FeedKind::live});
        break;
      case 2:
        plans.push_back({i, false, "/api/v1/streaming/public/remote", {}});
        subscriptions.push_back({c, i, "timeline:public:remote", "", FeedKind::live});
        break;
      case 3:
        plans.push_back({i, false, "/api/v1/streaming/hashtag?tag=cafe", {}});
        subscriptions.push_back({c, i, "timeline:hashtag:cafe", "", FeedKind::topic});
        break;
      case 4:
        plans.push_back({i, true, "/api/v1/streaming?stream=public&access_token=" + token,
                         {R"({"type":"subscribe","stream":"hashtag","tag":"Caf\u00e9"})",
                          R"({"type":"subscribe","stream":"public:remote:media"})"}});
        subscriptions.push_back({c, i, "timeline:public", echo({"public"}), FeedKind::live});
        subscriptions.push_back({c, i, "timeline:hashtag:cafe", echo({"hashtag", "Caf\u00e9"}), FeedKind::topic});
        subscriptions.push_back({c, i, "timeline:public:remote:media", echo({"public:remote:media"}), FeedKind::live});
        break;
      case 5:
        plans.push_back({i, true, "/api/v1/streaming?stream=public:local&access_token=" + token,
                         {R"({"type":"subscribe","stream":"hashtag:local","tag":"Dragon"})",
                          R"({"type":"subscribe","stream":"public:media"})"}});
        subscriptions.push_back({c, i, "timeline:public:local", echo({"public:local"}), FeedKind::live});
        subscriptions.push_back({c, i, "timeline:hashtag:dragon:local", echo({"hashtag:local", "Dragon"}), FeedKind::topic});
        subscriptions.push_back({c, i, "timeline:public:media", echo({"public:media"}), FeedKind::live});
        break;
    }
    if (i % 8 == 0) {
      subscriptions.push_back({plans.size(), i, "timeline:public", "", FeedKind::live});
      plans.push_back({i, false, "/api/v1/streaming/public", {}});
    } else if (i % 8 == 4) {
      subscriptions.push_back({plans.size(), i, "timeline:hashtag:cafe:local", "", FeedKind::topic});
      plans.push_back({i, false, "/api/v1/streaming/hashtag/local?tag=" + url_encode("#Caf\u00e9"), {}});
    }
  }
  std::map<std::string, std::vector<size_t>> by_channel;
  for (size_t s = 0; s < subscriptions.size(); ++s) by_channel[subscriptions[s].channel].push_back(s);

  Cluster cluster(GetParam(), {{"SLUICE_SETTINGS_CACHE_TTL_MS", "0"}});
  const size_t client_count = plans.size();
  std::vector<std::unique_ptr<SseClient>> sse(client_count);
  std::vector<std::unique_ptr<WsClient>> ws(client_count);
  for (size_t c = 0; c < client_count; ++c) {
    const auto& plan = plans[c];
    if (plan.websocket) {
      ws[c] = std::make_unique<WsClient>(cluster.port(), plan.target);
      ASSERT_TRUE(ws[c]->upgraded()) << ws[c]->response().head << cluster.logs();
      for (const auto& message : plan.subscribe_messages) ws[c]->send_text(message);
    } else {
      sse[c] = std::make_unique<SseClient>(cluster.port(), plan.target, bearer(viewers[plan.viewer].account.token));
      ASSERT_EQ(sse[c]->response().status, 200) << plan.target << sse[c]->response().body << cluster.logs();
    }
  }

  // Readers: one thread per client, recording raw events.
  std::mutex mutex;
  std::vector<std::vector<Received>> received(client_count);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (size_t c = 0; c < client_count; ++c) {
    readers.emplace_back([&, c] {
      while (!stop) {
        Received r;
        if (ws[c]) {
          auto text = ws[c]->next_text(200ms);
          if (!text) {
            if (ws[c]->connection().closed()) std::this_thread::sleep_for(50ms);
            continue;
          }
          auto frame = Json::parse(*text, nullptr, false);
          if (frame.is_discarded() || !frame.is_object()) {
            r.event = "unparsable-frame";
            r.payload = *text;
          } else if (frame.contains("error")) {
            r.event = "error-frame";
            r.payload = *text;
          } else {
            r.stream = frame["stream"].dump();
            r.event = frame["event"].is_string() ? frame["event"].get<std::string>() : frame["event"].dump();
            r.payload = frame["payload"].is_string() ? frame["payload"].get<std::string>() : "NOT A STRING " + frame["payload"].dump();
          }
        } else {
          auto event = sse[c]->next_event(200ms);
          if (!event) {
            if (sse[c]->ended()) std::this_thread::sleep_for(50ms);
            continue;
          }
          r.event = event->event;
          r.payload = event->data;
        }
        std::lock_guard<std::mutex> lock(mutex);
        received[c].push_back(std::move(r));
      }
    });
  }
  auto finish = [&] {
    stop = true;
    for (auto& t : readers) t.join();
  };

  Publisher publisher;
  ASSERT_TRUE(publisher.ok());

  // Barrier: every subscription (WebSocket subscribes have no acknowledgement) has
  // received a probe delete on its channel.
  for (const auto& [channel, subs] : by_channel) ASSERT_TRUE(wait_numsub(channel, 1)) << channel << cluster.logs();
  {
    bool all = false;
    for (int round = 0; round < 20 && !all; ++round) {
      std::set<std::string> missing_channels;
      {
        std::lock_guard<std::mutex> lock(mutex);
        for (const auto& s : subscriptions) {
          bool got = false;
          for (const auto& r : received[s.client]) {
            if (r.event == "delete" && r.payload.rfind("probe:" + s.channel + ":", 0) == 0 && r.stream == (s.echo.empty() ? "" : s.echo)) got = true;
          }
          if (!got) missing_channels.insert(s.channel);
        }
      }
      all = missing_channels.empty();
      if (all) break;
      for (const auto& channel : missing_channels) {
        publisher.publish(channel, R"({"event":"delete","payload":"probe:)" + channel + ":" + std::to_string(round) + "\"}");
      }
      std::this_thread::sleep_for(500ms);
    }
    if (!all) {
      finish();
      FAIL() << "subscriptions never became live" << cluster.logs();
    }
    std::this_thread::sleep_for(500ms);
    std::lock_guard<std::mutex> lock(mutex);
    for (auto& list : received) list.clear();
  }

  // Generation vocabulary.
  const std::vector<std::string> words = {
      "hello", "world", "the", "and", "coffee", "Coffee", "COFFEE!", "coffees", "_coffee", "tea", "steam", "TEA",
      "C++", "c+", "na\u00efve", "NA\u00cfVE", "na\u00efvely", "\u00e9clair", "\u00c9clair", "\u00c9CLAIRS",
      "\u03c3\u03bf\u03c6\u03af\u03b1", "\u03a3\u039f\u03a6\u038a\u0391", "\u03c3\u03bf\u03c6\u03af\u03b1\u03c2",
      "a.b", "axb", "A.B", "(x)", "(X)", "x)", "foo|bar", "FOO|BAR", "foo", "bar", "dragon", "Dragons", "DRAGON.",
      "spoiler", "spoil!", "end.", "weekend.", "x*y", "XXY", "&amp;", "&lt;3", "&quot;quoted&quot;", "&#39;apos&#39;",
      "caf\u00e9", "Stra\u00dfe", "#tea", "HELLO", "Hello_", "sword", "WOR"};
  const std::vector<std::string> markup = {
      "<br>", "<br/>", "<br />", "</p><p>", "<strong>coffee</strong>", "<em>te</em>a",
      "<a href=\"https://social.example/tags/caf%C3%A9\" class=\"mention hashtag\" rel=\"tag\">#<span>Caf\u00e9</span></a>",
      "<span class=\"h-card\" translate=\"no\"><a href=\"https://remote.example/@carol\" class=\"u-url mention\">@<span>carol</span></a></span>"};
  auto sentence = [&](int max_words, bool html) {
    std::string s;
    int n = std::uniform_int_distribution<int>(0, max_words)(rng);
    for (int w = 0; w < n; ++w) {
      if (w) s += ' ';
      s += html && chance(0.15) ? pick(markup) : pick(words);
    }
    return s;
  };
  const std::vector<Json> languages = {Json("en"), Json("en"), Json("de"), Json("fr"), Json(nullptr)};

  // Expected deliveries: per client, (stream, event, message index, filtered suffix).
  struct Expected {
    std::string stream;
    size_t message;
    std::optional<std::string> payload;  // nullopt: the message's raw payload
  };
  std::vector<std::string> raw_payloads;
  std::vector<std::string> event_names;
  std::vector<std::vector<Expected>> expected(client_count);
  Coverage coverage;

  auto publish = [&](const std::vector<std::string>& channels, const std::string& event, const Json& payload) {
    std::string raw = payload.is_string() ? payload.get<std::string>() : payload.dump();
    size_t index = raw_payloads.size();
    raw_payloads.push_back(raw);
    event_names.push_back(event);
    Json message;
    message["event"] = event;
    message["payload"] = payload;
    if (chance(0.3)) message["queued_at"] = 1769860800000LL;
    std::string text = rails_escape(message.dump());
    for (const auto& channel : channels) {
      publisher.publish(channel, text);
      auto it = by_channel.find(channel);
      if (it == by_channel.end()) continue;
      for (size_t s : it->second) {
        const Subscription& sub = subscriptions[s];
        if ((event == "update" || event == "status.update") && payload.is_object()) {
          auto out = evaluate_status(viewers[sub.viewer], sub.kind, payload, raw, coverage);
          if (!out) continue;
          expected[sub.client].push_back({sub.echo, index, *out == raw ? std::nullopt : std::optional(*out)});
        } else {
          expected[sub.client].push_back({sub.echo, index, std::nullopt});
        }
      }
    }
  };

  struct Published {
    std::string id;
    std::vector<std::string> channels;
    Json payload;
  };
  std::vector<Published> statuses;
  long long next_id = 114000000000000000LL;
  size_t logical_events = 0, updates = 0, edits = 0, deletes = 0, prefiltered = 0, malformed = 0;
  const size_t kEvents = 10500;
  auto started = std::chrono::steady_clock::now();
  for (size_t e = 0; e < kEvents; ++e) {
    double roll = std::uniform_real_distribution<double>(0, 1)(rng);
    if (roll < 0.12 && !statuses.empty()) {
      const Published& old = pick(statuses);
      publish(old.channels, "delete", Json(old.id));
      ++deletes;
    } else {
      bool edit = roll < 0.22 && !statuses.empty();
      Json p;
      const Author& author = pick(authors);
      bool local = author.acct == author.username;
      std::string id = edit ? pick(statuses).id : std::to_string(++next_id);
      p["id"] = id;
      p["created_at"] = "2026-01-15T10:20:30.000Z";
      p["in_reply_to_id"] = nullptr;
      p["sensitive"] = chance(0.2);
      p["spoiler_text"] = chance(0.1) ? Json(nullptr) : chance(0.7) ? Json("") : Json(sentence(4, false));
      p["visibility"] = "public";
      p["language"] = pick(languages);
      p["uri"] = "https://social.example/users/" + author.username + "/statuses/" + id;
      p["replies_count"] = 0;
      p["favourites_count"] = std::uniform_int_distribution<int>(0, 99)(rng);
      p["edited_at"] = edit ? Json("2026-01-15T11:00:00.000Z") : Json(nullptr);
      p["content"] = "<p>" + sentence(14, true) + "</p>";
      p["reblog"] = nullptr;
      Json account;
      account["id"] = std::to_string(author.id);
      account["username"] = author.username;
      account["acct"] = author.acct;
      account["display_name"] = "Author \u2603";
      account["url"] = "https://social.example/@" + author.username;
      p["account"] = account;
      Json media = Json::array();
      if (chance(0.25)) {
        int n = std::uniform_int_distribution<int>(1, 2)(rng);
        for (int m = 0; m < n; ++m) {
          Json attachment;
          attachment["id"] = std::to_string(next_id) + std::to_string(m);
          attachment["type"] = "image";
          attachment["url"] = "https://social.example/media/" + std::to_string(m) + ".jpg";
          attachment["description"] = chance(0.3) ? Json(nullptr) : Json(sentence(5, false));
          media.push_back(attachment);
        }
      }
      p["media_attachments"] = media;
      Json mentions = Json::array();
      int mention_count = chance(0.6) ? 0 : std::uniform_int_distribution<int>(1, 3)(rng);
      for (int m = 0; m < mention_count; ++m) {
        const Author& target = pick(authors);
        mentions.push_back(Json{{"id", std::to_string(target.id)}, {"username", target.username},
                                {"url", "https://social.example/@" + target.username}, {"acct", target.acct}});
      }
      p["mentions"] = mentions;
      std::vector<std::string> tags;
      if (chance(0.35)) tags.push_back("cafe");
      if (chance(0.25)) tags.push_back("dragon");
      Json tag_json = Json::array();
      for (const auto& t : tags) tag_json.push_back(Json{{"name", t}, {"url", "https://social.example/tags/" + t}});
      p["tags"] = tag_json;
      p["emojis"] = Json::array();
      if (chance(0.15)) {
        Json poll;
        poll["id"] = std::to_string(next_id);
        poll["expired"] = false;
        if (chance(0.9)) {
          Json options = Json::array();
          int n = std::uniform_int_distribution<int>(2, 4)(rng);
          for (int o = 0; o < n; ++o) options.push_back(Json{{"title", sentence(3, false)}, {"votes_count", o}});
          poll["options"] = options;
        }
        p["poll"] = poll;
      } else {
        p["poll"] = nullptr;
      }
      // Rare shapes: Rails-filtered payloads, malformed ones.
      double odd = std::uniform_real_distribution<double>(0, 1)(rng);
      if (odd < 0.025) {
        p["filtered"] = chance(0.5) ? Json::array()
                                    : Json::parse(R"([{"filter":{"id":"9","title":"rails"},"keyword_matches":["x"],"status_matches":null}])");
        ++prefiltered;
      } else if (odd < 0.035) {
        switch (std::uniform_int_distribution<int>(0, 4)(rng)) {
          case 0: p.erase("account"); break;
          case 1: p.erase("mentions"); break;
          case 2: p.erase("media_attachments"); break;
          case 3: p["account"]["id"] = "not-a-number"; break;
          default:
            p["mentions"].push_back(Json{{"id", "12abc"}, {"username", "x"}, {"url", "https://x"}, {"acct", "x@y"}});
        }
        ++malformed;
      }
      std::vector<std::string> channels = {"timeline:public", local ? "timeline:public:local" : "timeline:public:remote"};
      if (!media.empty()) {
        channels.push_back("timeline:public:media");
        channels.push_back(local ? "timeline:public:local:media" : "timeline:public:remote:media");
      }
      for (const auto& t : tags) {
        channels.push_back("timeline:hashtag:" + t);
        if (local) channels.push_back("timeline:hashtag:" + t + ":local");
      }
      publish(channels, edit ? "status.update" : "update", p);
      edit ? ++edits : ++updates;
      if (!edit) statuses.push_back({id, channels, p});
    }
    ++logical_events;
    // About 350 events per second.
    if (e % 35 == 34) {
      auto due = started + std::chrono::milliseconds(static_cast<long long>((e + 1) * 1000 / 350));
      std::this_thread::sleep_until(due);
    }
  }
  auto publish_seconds =
      std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - started).count() / 1000.0;

  // The end, by positive markers rather than a quiet spell. On every channel: statuses
  // in each language a viewer may choose, from a local and a remote author no viewer has
  // a relation with, without text a filter could match; then a delete. A client gets a
  // subscription's statuses in order and its deletes as they come, so once it has every
  // marker the model gives it, nothing published earlier can still be on its way, and a
  // late duplicate or stray would have come before them. The exception: a viewer the
  // model gives no status at all (an empty language choice) has only the delete marker,
  // which a status still waiting for that viewer's data could follow.
  size_t expected_total = 0;
  for (const auto& list : expected) expected_total += list.size();
  const size_t first_marker = raw_payloads.size();
  long long marker_id = 990000000000000000LL;
  for (const auto& [channel, subs] : by_channel) {
    for (bool local : {true, false}) {
      for (const Json& language : languages) {
        const std::string id = std::to_string(++marker_id);
        const std::string username = local ? "marker" : "marker_remote";
        Json account = {{"id", local ? "990000001" : "990000002"}, {"username", username},
                        {"acct", local ? username : username + "@quiet.example"}, {"display_name", ""},
                        {"url", "https://social.example/@" + username}};
        Json p = {{"id", id}, {"created_at", "2026-01-15T10:20:30.000Z"}, {"in_reply_to_id", nullptr},
                  {"sensitive", false}, {"spoiler_text", ""}, {"visibility", "public"}, {"language", language},
                  {"uri", "https://social.example/statuses/" + id}, {"content", ""}, {"reblog", nullptr},
                  {"account", account}, {"media_attachments", Json::array()}, {"mentions", Json::array()},
                  {"tags", Json::array()}, {"emojis", Json::array()}, {"poll", nullptr}};
        publish({channel}, "update", p);
      }
    }
    publish({channel}, "delete", Json("marker:" + channel));
  }
  // What each client must still see of the markers, as "stream\nevent\npayload".
  std::vector<std::multiset<std::string>> markers_due(client_count);
  for (size_t c = 0; c < client_count; ++c) {
    for (const auto& e : expected[c]) {
      if (e.message < first_marker) continue;
      markers_due[c].insert(e.stream + "\n" + event_names[e.message] + "\n" + (e.payload ? *e.payload : raw_payloads[e.message]));
    }
  }
  std::vector<size_t> scanned(client_count, 0);
  const bool markers_in = eventually(
      [&] {
        std::lock_guard<std::mutex> lock(mutex);
        bool all = true;
        for (size_t c = 0; c < client_count; ++c) {
          for (; scanned[c] < received[c].size(); ++scanned[c]) {
            const Received& r = received[c][scanned[c]];
            auto due = markers_due[c].find(r.stream + "\n" + r.event + "\n" + r.payload);
            if (due != markers_due[c].end()) markers_due[c].erase(due);
          }
          all = all && markers_due[c].empty();
        }
        return all;
      },
      180s);
  if (!markers_in) {
    finish();
    FAIL() << "the end markers never all arrived" << cluster.logs();
  }
  finish();

  // Comparison, per client, statuses and other events as separate ordered lists.
  size_t compared = 0, mismatched_clients = 0, mismatch_entries = 0;
  std::ostringstream report;
  auto brief = [](const Received& r) {
    std::string payload = r.payload.size() > 900 ? r.payload.substr(0, 900) + "…" : r.payload;
    return "[" + r.event + "] stream=" + (r.stream.empty() ? "-" : r.stream) + " payload=" + payload;
  };
  auto status_id = [](const Received& r) -> std::string {
    auto j = Json::parse(r.payload, nullptr, false);
    if (j.is_object() && j.contains("id") && j["id"].is_string()) return j["id"].get<std::string>();
    return "?";
  };
  for (size_t c = 0; c < client_count; ++c) {
    std::vector<Received> want_status, want_other, got_status, got_other;
    for (const auto& e : expected[c]) {
      Received r{e.stream, event_names[e.message], e.payload ? *e.payload : raw_payloads[e.message]};
      bool status = r.event == "update" || r.event == "status.update";
      (status ? want_status : want_other).push_back(std::move(r));
    }
    for (auto& r : received[c]) {
      if (r.event == "delete" && r.payload.rfind("probe:", 0) == 0) continue;
      bool status = r.event == "update" || r.event == "status.update";
      (status ? got_status : got_other).push_back(r);
    }
    compared += want_status.size() + want_other.size();
    const auto& plan = plans[c];
    std::string who = "client " + std::to_string(c) + " (viewer " + std::to_string(plan.viewer) + " account " +
                      std::to_string(viewers[plan.viewer].account.account_id) + ", " +
                      (plan.websocket ? "WS " : "SSE ") + plan.target.substr(0, plan.target.find("access_token")) + ")";
    bool bad = false;
    for (int cls = 0; cls < 2; ++cls) {
      auto& want = cls == 0 ? want_status : want_other;
      auto& got = cls == 0 ? got_status : got_other;
      if (want == got) continue;
      bad = true;
      std::multiset<Received> w(want.begin(), want.end()), g(got.begin(), got.end());
      if (w == g) {
        report << who << ": " << (cls == 0 ? "statuses" : "other events") << " arrived in a different order\n";
        ++mismatch_entries;
        continue;
      }
      std::vector<Received> missing, extra;
      std::set_difference(w.begin(), w.end(), g.begin(), g.end(), std::back_inserter(missing));
      std::set_difference(g.begin(), g.end(), w.begin(), w.end(), std::back_inserter(extra));
      mismatch_entries += missing.size() + extra.size();
      report << who << ": " << (cls == 0 ? "statuses" : "other events") << " expected " << want.size() << " got "
             << got.size() << ", " << missing.size() << " missing, " << extra.size() << " unexpected\n";
      int shown = 0;
      std::set<size_t> paired;
      for (const auto& m : missing) {
        if (shown++ >= 4) break;
        std::string id = cls == 0 ? status_id(m) : m.payload;
        const Received* partner = nullptr;
        for (size_t x = 0; x < extra.size(); ++x) {
          if (!paired.count(x) && extra[x].event == m.event && extra[x].stream == m.stream &&
              (cls == 0 ? status_id(extra[x]) == id : false)) {
            partner = &extra[x];
            paired.insert(x);
            break;
          }
        }
        if (partner) {
          // Same status, different payload: show where they part.
          size_t common = 0;
          while (common < m.payload.size() && common < partner->payload.size() &&
                 m.payload[common] == partner->payload[common]) {
            ++common;
          }
          size_t from = common > 80 ? common - 80 : 0;
          report << "  status " << id << " [" << m.event << "] stream=" << (m.stream.empty() ? "-" : m.stream)
                 << " differs at byte " << common << "\n    expected …" << m.payload.substr(from, 700)
                 << "\n         got …" << partner->payload.substr(from, 700) << "\n";
        } else {
          report << "  missing " << brief(m) << "\n";
        }
      }
      shown = 0;
      for (size_t x = 0; x < extra.size(); ++x) {
        if (paired.count(x)) continue;
        if (shown++ >= 3) break;
        report << "  unexpected " << brief(extra[x]) << "\n";
      }
    }
    if (bad) ++mismatched_clients;
  }
  std::cout << "[replay] " << (GetParam() == Deployment::all_in_one ? "all-in-one" : "split") << ": "
            << logical_events << " events (" << updates << " update, " << edits << " status.update, " << deletes
            << " delete, " << prefiltered << " pre-filtered, " << malformed << " malformed) as "
            << publisher.messages() << " Redis messages in " << publish_seconds << " s; " << client_count
            << " clients, " << subscriptions.size() << " subscriptions; " << compared
            << " deliveries compared; " << mismatched_clients << " clients differ, " << mismatch_entries
            << " differing entries\n[replay] dropped: " << coverage.malformed << " malformed, " << coverage.feed_access
            << " feed access, " << coverage.language << " language, " << coverage.non_numeric << " non-numeric id, "
            << coverage.relation << " block/mute, " << coverage.domain << " domain block; delivered: "
            << coverage.rails_filtered << " Rails-filtered as is, " << coverage.annotated_empty << " with filtered [], "
            << coverage.annotated_matches << " with keyword matches\n";
  // (The number of events published is fixed by the loop above: printed, not asserted.)
  EXPECT_GT(expected_total, 20000u);
  // Every rule must have been exercised for the comparison to mean something.
  EXPECT_GT(coverage.malformed, 0u);
  EXPECT_GT(coverage.feed_access, 0u);
  EXPECT_GT(coverage.language, 0u);
  EXPECT_GT(coverage.non_numeric, 0u);
  EXPECT_GT(coverage.relation, 0u);
  EXPECT_GT(coverage.domain, 0u);
  EXPECT_GT(coverage.rails_filtered, 0u);
  EXPECT_GT(coverage.annotated_matches, 1000u);
  EXPECT_EQ(mismatched_clients, 0u) << report.str().substr(0, 60000);

  pg.exec("DELETE FROM settings");
}

INSTANTIATE_TEST_SUITE_P(Deployments, FilteringReplay,
                         ::testing::Values(Deployment::all_in_one, Deployment::split), deployment_name);

}  // namespace
}  // namespace sluice::testing
