// Randomized end-to-end isolation of the instances of one tenants file
// (docs/hosting.md#tenants, issue 13): 20 Mastodon instances served by one Sluice,
// eleven sharing one Redis through REDIS_NAMESPACE (one of them without a namespace),
// five sharing a second, four with a Redis of their own, each with its own PostgreSQL
// database. Every instance reuses the same account ids, token strings, token ids,
// list ids and hashtag, with its own meaning for each: a token string names a
// different account in each instance, a list id a different owner, and blocks,
// mutes, keyword filters (with the same filter ids) and feed-access settings differ. Thousands of events go to every instance's channels; what each client
// receives, per stream and in order, is compared with what a small evaluator written
// here from docs/protocol.md says its own instance must send it. A leak of an event,
// token, relation, list or cache entry across instances shows as a foreign or missing
// event. Then a kill in one instance, per-tenant metrics, and unknown hosts.
#include <gtest/gtest.h>
#include <unistd.h>

#include <csignal>
#include <algorithm>
#include <fstream>
#include <functional>
#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <nlohmann/json.hpp>
#include <optional>
#include <pqxx/pqxx>
#include <random>
#include <set>
#include <thread>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

using Json = nlohmann::json;

constexpr int kTenants = 20;
constexpr int kViewers = 6;                  // accounts with a user and a token, per instance
constexpr long long kFirstId = 7'000'000;    // the same account, user, token and list ids everywhere
constexpr long long kRemoteAuthor = kFirstId + 50;  // an author without a user, on another domain
// Remote, never blocked or muted, so no instance's settings or relations drop its
// statuses: they end each stream.
constexpr long long kMarkerAuthor = kFirstId + 60;
constexpr int kEventsPerTenant = 250;
const std::string kTag = "isotag";

std::string tenant_name(int t) { return "iso" + std::to_string(t); }
std::string tenant_host(int t) { return tenant_name(t) + ".example"; }
// Token string j exists in every instance; in instance t it belongs to viewer (j + t) % kViewers.
std::string shared_token(int j) { return "iso-token-" + std::to_string(j); }
int viewer_of_token(int t, int j) { return (j + t) % kViewers; }
// A token that exists in instance t only.
std::string own_token(int t) { return "iso-own-token-" + std::to_string(t); }
// List id kFirstId + k exists in every instance; in instance t viewer (k + 2t) % kViewers owns it.
int list_owner(int t, int k) { return (k + 2 * t) % kViewers; }
int list_of_viewer(int t, int viewer) {
  for (int k = 0; k < kViewers; ++k) {
    if (list_owner(t, k) == viewer) return k;
  }
  return -1;
}

// Which Redis serves instance t, and under which namespace: 0–10 the suite's Redis
// (0 without a namespace), 11–15 a second Redis, 16–19 one Redis each.
int redis_index(int t) { return t <= 10 ? 0 : t <= 15 ? 1 : t - 14; }
std::string redis_namespace(int t) { return t == 0 || t >= 16 ? "" : "ns" + std::to_string(t); }
std::string redis_channel(int t, const std::string& channel) {
  std::string ns = redis_namespace(t);
  return ns.empty() ? channel : ns + ":" + channel;
}

// docs/protocol.md#feed-access-settings, per instance: iso1, iso4, … refuse local
// statuses on hashtag (topic) streams, iso2, iso5, … on public (live) streams, the others
// neither; a settings cache shared across instances would apply one's to another.
bool local_topic_disabled(int t) { return t % 3 == 1; }
bool local_live_disabled(int t) { return t % 3 == 2; }

// Keyword filters (docs/protocol.md#keyword-filters): in each instance most viewers have
// one, on a word of this list, with the same filter id (kFirstId + viewer) everywhere
// and a title naming the instance; statuses carry one of the words or none.
const std::vector<std::string> kWords = {"alpha", "bravo", "charlie", "delta"};
std::string filter_title(int t, int viewer) { return "f-" + tenant_name(t) + "-" + std::to_string(viewer); }

struct Instance {
  std::string database;
  std::set<std::pair<long long, long long>> blocks;  // (blocker, target)
  std::set<std::pair<long long, long long>> mutes;   // (muter, target)
  std::map<int, std::string> keyword;                // viewer → the word of its filter
};

// The servers and databases of the 20 instances, made once for both deployments.
struct Fleet {
  std::vector<std::unique_ptr<RedisServer>> own_redis;  // indexes 1..5 of redis_index
  std::vector<Instance> instances;

  RedisServer& redis(int t) { return redis_index(t) == 0 ? suite_redis() : *own_redis[redis_index(t) - 1]; }
};

std::string conninfo_of(const std::string& database) {
  return "host=127.0.0.1 port=" + std::to_string(suite_postgres().port()) + " user=postgres dbname=" + database;
}

void exec_in(const std::string& database, const std::string& sql) {
  pqxx::connection connection(conninfo_of(database));
  pqxx::nontransaction(connection).exec(sql);
}

long long account_id(int viewer) { return kFirstId + viewer; }

Fleet& fleet() {
  static std::unique_ptr<Fleet> made;
  if (made) return *made;
  made = std::make_unique<Fleet>();
  for (int i = 0; i < 5; ++i) made->own_redis.push_back(std::make_unique<RedisServer>());
  std::mt19937 rng(20261204);
  auto chance = [&](double p) { return std::uniform_real_distribution<double>(0, 1)(rng) < p; };
  const std::string prefix = "iso_" + std::to_string(::getpid()) + "_";
  for (int t = 0; t < kTenants; ++t) {
    Instance instance;
    instance.database = prefix + std::to_string(t);
    exec_in("postgres", "CREATE DATABASE " + instance.database + " TEMPLATE " + suite_postgres().database());
    // Rows of other suites' tests may be in the copy; ids of this test's range are not.
    std::string sql = "DELETE FROM settings;";
    for (int v = 0; v < kViewers; ++v) {
      std::string id = std::to_string(account_id(v));
      sql += "INSERT INTO accounts (id, username) VALUES (" + id + ", 'viewer" + std::to_string(v) + "');";
      sql += "INSERT INTO users (id, email, account_id) VALUES (" + id + ", 'viewer" + std::to_string(v) +
             "@iso.test', " + id + ");";
    }
    sql += "INSERT INTO accounts (id, username, domain) VALUES (" + std::to_string(kRemoteAuthor) +
           ", 'far', 'remote.example');";
    sql += "INSERT INTO accounts (id, username, domain) VALUES (" + std::to_string(kMarkerAuthor) +
           ", 'marker', 'remote.example');";
    if (local_topic_disabled(t)) sql += "INSERT INTO settings (var, value) VALUES ('local_topic_feed_access', E'--- disabled\\n');";
    if (local_live_disabled(t)) sql += "INSERT INTO settings (var, value) VALUES ('local_live_feed_access', E'--- disabled\\n');";
    for (int j = 0; j < kViewers; ++j) {
      sql += "INSERT INTO oauth_access_tokens (id, token, scopes, resource_owner_id) VALUES (" +
             std::to_string(kFirstId + j) + ", '" + shared_token(j) + "', 'read', " +
             std::to_string(account_id(viewer_of_token(t, j))) + ");";
      sql += "INSERT INTO lists (id, account_id, title) VALUES (" + std::to_string(kFirstId + j) + ", " +
             std::to_string(account_id(list_owner(t, j))) + ", 'iso');";
    }
    sql += "INSERT INTO oauth_access_tokens (id, token, scopes, resource_owner_id) VALUES (" +
           std::to_string(kFirstId + 40) + ", '" + own_token(t) + "', 'read', " + std::to_string(account_id(0)) + ");";
    // Relations: each instance its own, so that a relations cache shared across
    // instances would filter by another instance's blocks.
    std::vector<long long> authors;
    for (int v = 0; v < kViewers; ++v) authors.push_back(account_id(v));
    authors.push_back(kRemoteAuthor);
    for (int v = 0; v < kViewers; ++v) {
      for (long long author : authors) {
        if (author == account_id(v)) continue;
        if (chance(0.2) && instance.blocks.insert({account_id(v), author}).second) {
          sql += "INSERT INTO blocks (account_id, target_account_id) VALUES (" + std::to_string(account_id(v)) + ", " +
                 std::to_string(author) + ");";
        } else if (chance(0.15) && instance.mutes.insert({account_id(v), author}).second) {
          sql += "INSERT INTO mutes (account_id, target_account_id) VALUES (" + std::to_string(account_id(v)) + ", " +
                 std::to_string(author) + ");";
        }
      }
    }
    for (int v = 0; v < kViewers; ++v) {
      if (!chance(0.7)) continue;
      const std::string word = kWords[std::uniform_int_distribution<size_t>(0, kWords.size() - 1)(rng)];
      instance.keyword[v] = word;
      const std::string id = std::to_string(kFirstId + v);
      // Context `home` only: the streaming server ignores a filter's context
      // (docs/protocol.md#filter-evaluation), so it applies on public and hashtag streams.
      sql += "INSERT INTO custom_filters (id, account_id, phrase, context, action) VALUES (" + id + ", " +
             std::to_string(account_id(v)) + ", '" + filter_title(t, v) + "', '{home}', 0);";
      sql += "INSERT INTO custom_filter_keywords (custom_filter_id, keyword, whole_word) VALUES (" + id + ", '" + word +
             "', true);";
    }
    exec_in(instance.database, sql);
    made->instances.push_back(std::move(instance));
  }
  return *made;
}

// The tenants file: instance `t` of the fleet under `names[t]` (by default iso<t>), for
// every t in `served` (by default all 20).
std::string tenants_json(Fleet& fleet, std::vector<int> served = {}, std::map<int, std::string> names = {}) {
  if (served.empty()) {
    for (int t = 0; t < kTenants; ++t) served.push_back(t);
  }
  Json tenants = Json::object();
  for (int t : served) {
    std::string name = names.count(t) ? names[t] : tenant_name(t);
    Json env = {{"REDIS_URL", fleet.redis(t).url()},
                {"DATABASE_URL", "postgres://postgres@127.0.0.1:" + std::to_string(suite_postgres().port()) + "/" +
                                     fleet.instances[t].database},
                {"DB_POOL", "2"}};
    if (!redis_namespace(t).empty()) env["REDIS_NAMESPACE"] = redis_namespace(t);
    tenants[name] = {{"hosts", {name + ".example", "www." + name + ".example"}}, {"env", env}};
  }
  return Json{{"tenants", tenants}}.dump(2);
}

// ------------------------------------------------ the evaluator (docs/protocol.md)

// One stream of one client: what it hears and how it is filtered.
struct Stream {
  std::string echo;  // the WebSocket `stream` value, compact JSON; "" for SSE
  std::vector<std::string> channels;
  bool filtered = false;  // public and hashtag streams (docs/protocol.md#filtered-streams)
};

struct ClientPlan {
  int tenant;
  int token;   // shared_token(token)
  int viewer;  // viewer_of_token(tenant, token)
  bool websocket;
  std::string target;
  std::vector<std::string> subscribes;  // WebSocket messages after the upgrade
  std::vector<Stream> streams;
};

// docs/protocol.md#relations: a status is dropped on filtered streams when the viewer
// blocks or mutes its author, or the author blocks the viewer (no mentions here).
bool relation_drops(const Instance& instance, long long viewer, long long author) {
  return instance.blocks.count({viewer, author}) || instance.mutes.count({viewer, author}) ||
         instance.blocks.count({author, viewer});
}

struct Published {
  int tenant;
  std::string channel;  // without namespace
  std::string event;
  std::string id;        // status id, or the deleted id, or the notification id
  long long author = 0;  // for statuses
  std::string word;      // for statuses: one of kWords in the content, or none
};

// What `stream` must receive of `message`: its label, or nothing.
std::optional<std::string> expected_delivery(const Instance& instance, const ClientPlan& client, const Stream& stream,
                                             const Published& message) {
  if (message.tenant != client.tenant) return std::nullopt;
  if (std::find(stream.channels.begin(), stream.channels.end(), message.channel) == stream.channels.end()) {
    return std::nullopt;
  }
  if (stream.filtered && message.event == "update") {
    // docs/protocol.md#feed-access-check: local means username == acct, here an author with a user.
    const bool local = message.author != kRemoteAuthor && message.author != kMarkerAuthor;
    const bool topic = message.channel.starts_with("timeline:hashtag:");
    if (local && (topic ? local_topic_disabled(client.tenant) : local_live_disabled(client.tenant))) return std::nullopt;
    if (relation_drops(instance, account_id(client.viewer), message.author)) return std::nullopt;
    // docs/protocol.md#filter-evaluation: `filtered` added, with the viewer's own filter
    // when its whole word is in the content.
    std::string filtered = message.event + " " + message.id + " filtered:";
    auto own = instance.keyword.find(client.viewer);
    if (own != instance.keyword.end() && !message.word.empty() && own->second == message.word) {
      filtered += std::to_string(kFirstId + client.viewer) + "/" + filter_title(client.tenant, client.viewer) + "/" +
                  message.word;
    }
    return filtered;
  }
  return message.event + " " + message.id;
}

// What a received event says, as the evaluator labels it: event name and id, with
// the payload's own instance checked.
std::string label_of(const std::string& event, const std::string& payload) {
  if (event == "delete") return "delete " + payload;
  auto json = Json::parse(payload, nullptr, false);
  if (json.is_discarded() || !json.is_object() || !json.contains("id") || !json["id"].is_string()) {
    return event + " unreadable " + payload.substr(0, 200);
  }
  std::string label = event + " " + json["id"].get<std::string>();
  if (json.contains("filtered")) {
    label += " filtered:";
    bool first = true;
    for (const auto& result : json["filtered"]) {
      if (!first) label += ",";
      first = false;
      auto text = [&](const Json::json_pointer& at) {
        if (!result.contains(at)) return std::string("?");
        return result[at].is_string() ? result[at].get<std::string>() : result[at].dump();
      };
      label += text("/filter/id"_json_pointer) + "/" + text("/filter/title"_json_pointer) + "/" +
               text("/keyword_matches/0"_json_pointer);
    }
  }
  return label;
}

Json status_payload(int t, const std::string& id, long long author, const std::string& word = "") {
  bool remote = author == kRemoteAuthor || author == kMarkerAuthor;
  std::string username = author == kMarkerAuthor ? "marker" : remote ? "far" : "viewer" + std::to_string(author - kFirstId);
  Json account = {{"id", std::to_string(author)},
                  {"username", username},
                  {"acct", remote ? username + "@remote.example" : username}};
  Json status = {{"id", id},
                 {"content", "<p>" + tenant_name(t) + " says " + id + (word.empty() ? "" : " " + word) + "</p>"},
                 {"language", "en"},
                 {"visibility", "public"},
                 {"account", account},
                 {"mentions", Json::array()},
                 {"media_attachments", Json::array()},
                 {"tags", Json::array({{{"name", kTag}}})}};
  return status;
}

// docs/protocol.md#messages-from-rails: an object payload for statuses and
// notifications, a string for `delete`.
std::string redis_message(const std::string& event, const Json& payload) {
  return Json{{"event", event}, {"payload", payload}}.dump();
}

class TenantIsolation : public ::testing::TestWithParam<Deployment> {};

TEST_P(TenantIsolation, EveryClientReceivesExactlyItsOwnInstancesEvents) {
  Fleet& fleet_ = fleet();
  TempDir dir;
  const std::string tenants_path = dir.path() + "/tenants.json";
  {
    std::ofstream out(tenants_path);
    out << tenants_json(fleet_);
  }
  std::mt19937 rng(GetParam() == Deployment::all_in_one ? 4121 : 4122);
  auto pick = [&](int n) { return std::uniform_int_distribution<int>(0, n - 1)(rng); };

  // Clients: per instance, six mixing SSE and WebSocket over every kind of stream,
  // the token strings taken in a different order per instance.
  std::vector<ClientPlan> plans;
  auto echo = [](std::vector<std::string> parts) { return Json(parts).dump(); };
  auto user_channels = [](int viewer) {
    std::string id = std::to_string(account_id(viewer));
    return std::vector<std::string>{"timeline:" + id, "timeline:" + id + ":notifications"};
  };
  for (int t = 0; t < kTenants; ++t) {
    for (int j = 0; j < kViewers; ++j) {
      ClientPlan c{t, j, viewer_of_token(t, j), false, "", {}, {}};
      const std::string list = std::to_string(kFirstId + list_of_viewer(t, c.viewer));
      const std::string token_query = "access_token=" + shared_token(j);
      switch ((j + t) % 6) {
        case 0:
          c.target = "/api/v1/streaming/user";
          c.streams.push_back({"", user_channels(c.viewer), false});
          break;
        case 1:
          c.target = "/api/v1/streaming/public";
          c.streams.push_back({"", {"timeline:public"}, true});
          break;
        case 2:
          c.websocket = true;
          c.target = "/api/v1/streaming?stream=hashtag&tag=" + kTag + "&" + token_query;
          c.streams.push_back({echo({"hashtag", kTag}), {"timeline:hashtag:" + kTag}, true});
          c.subscribes.push_back(R"({"type":"subscribe","stream":"list","list":")" + list + R"("})");
          c.streams.push_back({echo({"list", list}), {"timeline:list:" + list}, false});
          c.subscribes.push_back(R"({"type":"subscribe","stream":"user:notification"})");
          c.streams.push_back({echo({"user:notification"}),
                               {"timeline:" + std::to_string(account_id(c.viewer)) + ":notifications"}, false});
          break;
        case 3:
          c.target = "/api/v1/streaming/hashtag?tag=" + kTag;
          c.streams.push_back({"", {"timeline:hashtag:" + kTag}, true});
          break;
        case 4:
          c.websocket = true;
          c.target = "/api/v1/streaming?stream=public&" + token_query;
          c.streams.push_back({echo({"public"}), {"timeline:public"}, true});
          c.subscribes.push_back(R"({"type":"subscribe","stream":"user"})");
          c.streams.push_back({echo({"user"}), user_channels(c.viewer), false});
          break;
        case 5:
          c.target = "/api/v1/streaming/list?list=" + list;
          c.streams.push_back({"", {"timeline:list:" + list}, false});
          break;
      }
      plans.push_back(std::move(c));
    }
  }

  // Two gateway workers, whatever the machine: viewers with the same account id in
  // different instances then share a worker's caches, where a key without the
  // instance would mix them.
  Cluster cluster(GetParam(), {{"SLUICE_TENANTS_FILE", tenants_path}, {"SLUICE_GATEWAY_THREADS", "2"}});
  const size_t client_count = plans.size();
  std::vector<std::unique_ptr<SseClient>> sse(client_count);
  std::vector<std::unique_ptr<WsClient>> ws(client_count);
  for (size_t c = 0; c < client_count; ++c) {
    const auto& plan = plans[c];
    std::map<std::string, std::string> headers = {{"Host", tenant_host(plan.tenant)}};
    if (plan.websocket) {
      ws[c] = std::make_unique<WsClient>(cluster.port(), plan.target, headers);
      ASSERT_TRUE(ws[c]->upgraded()) << plan.target << ws[c]->response().head << cluster.logs();
      for (const auto& message : plan.subscribes) ws[c]->send_text(message);
    } else {
      headers["Authorization"] = "Bearer " + shared_token(plan.token);
      sse[c] = std::make_unique<SseClient>(cluster.port(), plan.target, headers);
      ASSERT_EQ(sse[c]->response().status, 200)
          << tenant_name(plan.tenant) << " " << plan.target << sse[c]->response().body << cluster.logs();
    }
  }

  // Readers: one thread per client, each received event labelled under its stream.
  std::mutex mutex;
  std::vector<std::map<std::string, std::vector<std::string>>> received(client_count);  // echo → labels
  std::vector<std::atomic<bool>> ended(client_count);
  std::atomic<bool> stop{false};
  std::vector<std::thread> readers;
  for (size_t c = 0; c < client_count; ++c) {
    readers.emplace_back([&, c] {
      while (!stop) {
        std::string stream, label;
        if (ws[c]) {
          auto text = ws[c]->next_text(200ms);
          if (!text) {
            if (ws[c]->connection().closed()) {
              ended[c] = true;
              return;
            }
            continue;
          }
          auto frame = Json::parse(*text, nullptr, false);
          if (frame.is_discarded() || !frame.is_object() || !frame.contains("event") || !frame["event"].is_string() ||
              !frame.contains("payload") || !frame["payload"].is_string()) {
            stream = "unexpected frames";
            label = *text;
          } else {
            stream = frame["stream"].dump();
            label = label_of(frame["event"].get<std::string>(), frame["payload"].get<std::string>());
          }
        } else {
          auto event = sse[c]->next_event(200ms);
          if (!event) {
            if (sse[c]->ended()) {
              ended[c] = true;
              return;
            }
            continue;
          }
          label = label_of(event->event, event->data);
        }
        std::lock_guard<std::mutex> lock(mutex);
        received[c][stream].push_back(std::move(label));
      }
    });
  }
  struct JoinReaders {
    std::atomic<bool>& stop;
    std::vector<std::thread>& readers;
    ~JoinReaders() {
      stop = true;
      for (auto& t : readers) t.join();
    }
  } join_readers{stop, readers};
  auto received_copy = [&](size_t c) {
    std::lock_guard<std::mutex> lock(mutex);
    return received[c];
  };
  // A probe names its instance: only a stream's own instance's probes are left out of
  // the comparison, so a probe that leaked across instances shows there.
  auto probe_prefix = [](int t) { return "delete probe " + tenant_name(t) + " "; };
  // Publishes a status of client c's instance on its first stream's first channel and
  // waits until it is the last thing that stream received: the positive marker that
  // whatever happened before (a kill, a reload) has been applied to c.
  auto still_hears = [&](size_t c, const std::string& id) {
    const int t = plans[c].tenant;
    const Stream& stream = plans[c].streams.front();
    fleet_.redis(t).publish(redis_channel(t, stream.channels.front()),
                            redis_message("update", status_payload(t, id, kMarkerAuthor)));
    return eventually(
        [&] {
          auto got = received_copy(c);
          const auto& labels = got[stream.echo];
          const std::string want = "update " + id;
          return !labels.empty() && (labels.back() == want || labels.back().starts_with(want + " "));
        },
        10s);
  };

  // Barrier: every stream of every client has heard a probe on each of its channels
  // (a WebSocket subscribe has no acknowledgement). Probes repeat until they arrive
  // and are left out of the comparison below.
  auto unprobed = [&] {
    std::set<std::pair<int, std::string>> missing;  // (tenant, channel)
    for (size_t c = 0; c < client_count; ++c) {
      auto got = received_copy(c);
      for (const auto& stream : plans[c].streams) {
        for (const auto& channel : stream.channels) {
          const std::string probe = probe_prefix(plans[c].tenant) + channel + " ";
          const auto& labels = got[stream.echo];
          if (std::none_of(labels.begin(), labels.end(), [&](const std::string& l) { return l.starts_with(probe); })) {
            missing.insert({plans[c].tenant, channel});
          }
        }
      }
    }
    return missing;
  };
  bool live = false;
  for (int round = 0; round < 30 && !live; ++round) {
    for (const auto& [t, channel] : unprobed()) {
      fleet_.redis(t).publish(redis_channel(t, channel),
                              redis_message("delete", "probe " + tenant_name(t) + " " + channel + " " +
                                                          std::to_string(round)));
    }
    live = eventually([&] { return unprobed().empty(); }, 1s);
  }
  ASSERT_TRUE(live) << "some subscriptions never became live" << cluster.logs();

  // The events: per instance, statuses, deletions and notifications on the channels
  // its clients hear and on some nobody hears, each id naming its instance.
  std::vector<Published> published;
  std::vector<long long> authors;
  for (int v = 0; v < kViewers; ++v) authors.push_back(account_id(v));
  authors.push_back(kRemoteAuthor);
  for (int n = 0; n < kEventsPerTenant; ++n) {
    for (int t = 0; t < kTenants; ++t) {
      Published p;
      p.tenant = t;
      p.id = std::to_string((t + 1) * 1'000'000 + n);
      int kind = pick(10);
      int viewer = pick(kViewers);
      if (kind < 3) {
        p.channel = "timeline:public";
      } else if (kind < 5) {
        p.channel = "timeline:hashtag:" + kTag;
      } else if (kind < 7) {
        p.channel = "timeline:" + std::to_string(account_id(viewer));
      } else if (kind < 8) {
        p.channel = "timeline:" + std::to_string(account_id(viewer)) + ":notifications";
      } else if (kind < 9) {
        p.channel = "timeline:list:" + std::to_string(kFirstId + pick(kViewers));
      } else {
        p.channel = "timeline:hashtag:nobody" + std::to_string(t);  // heard by no client
      }
      Json payload;
      if (p.channel.ends_with(":notifications")) {
        p.event = "notification";
        payload = Json{{"id", p.id}, {"type", "mention"}};
      } else if (pick(6) == 0) {
        p.event = "delete";
        payload = p.id;
      } else {
        p.event = "update";
        p.author = authors[static_cast<size_t>(pick(static_cast<int>(authors.size())))];
        if (pick(2) == 0) p.word = kWords[static_cast<size_t>(pick(static_cast<int>(kWords.size())))];
        payload = status_payload(t, p.id, p.author, p.word);
      }
      fleet_.redis(t).publish(redis_channel(t, p.channel), redis_message(p.event, payload));
      published.push_back(std::move(p));
    }
  }

  // The expected sequences, per client and stream, in publish order.
  std::vector<std::map<std::string, std::vector<std::string>>> expected(client_count);
  for (const auto& message : published) {
    for (size_t c = 0; c < client_count; ++c) {
      if (plans[c].tenant != message.tenant) continue;
      for (const auto& stream : plans[c].streams) {
        if (auto label = expected_delivery(fleet_.instances[message.tenant], plans[c], stream, message)) {
          expected[c][stream.echo].push_back(*label);
        }
      }
    }
  }
  // Wait for everything expected (or time out), then end every stream with a marker
  // status of its own instance, published after everything else: nothing published
  // before can arrive after it, so what came before it is all a stream will get.
  auto without_probes = [&](std::vector<std::string> labels, int tenant) {
    std::erase_if(labels, [&](const std::string& l) { return l.starts_with(probe_prefix(tenant)); });
    return labels;
  };
  auto all_arrived = [&](const std::function<size_t(size_t, const Stream&)>& wanted) {
    for (size_t c = 0; c < client_count; ++c) {
      auto got = received_copy(c);
      for (const auto& stream : plans[c].streams) {
        if (without_probes(got[stream.echo], plans[c].tenant).size() < wanted(c, stream)) return false;
      }
    }
    return true;
  };
  eventually([&] { return all_arrived([&](size_t c, const Stream& s) { return expected[c][s.echo].size(); }); }, 60s);
  for (int t = 0; t < kTenants; ++t) {
    std::set<std::string> channels;
    for (const auto& plan : plans) {
      if (plan.tenant != t) continue;
      for (const auto& stream : plan.streams) channels.insert(stream.channels.begin(), stream.channels.end());
    }
    int n = 0;
    for (const auto& channel : channels) {
      Published marker{t, channel, "update", std::to_string((t + 1) * 1'000'000 + 900'000 + n++), kMarkerAuthor, ""};
      fleet_.redis(t).publish(redis_channel(t, channel),
                              redis_message("update", status_payload(t, marker.id, kMarkerAuthor)));
      for (size_t c = 0; c < client_count; ++c) {
        for (const auto& stream : plans[c].streams) {
          if (auto label = expected_delivery(fleet_.instances[t], plans[c], stream, marker)) {
            expected[c][stream.echo].push_back(*label);
          }
        }
      }
    }
  }
  // On a timeout the comparison below says which streams lack what.
  EXPECT_TRUE(eventually(
      [&] { return all_arrived([&](size_t c, const Stream& s) { return expected[c][s.echo].size(); }); }, 60s))
      << "streams did not receive every expected event and marker within 60 s";

  size_t deliveries = 0, dropped_by_relations = 0, dropped_by_settings = 0;
  std::vector<uint64_t> received_per_tenant(kTenants, 0);
  for (size_t c = 0; c < client_count; ++c) {
    auto got = received_copy(c);
    for (const auto& [echo, labels] : got) {
      received_per_tenant[plans[c].tenant] += labels.size();
      bool known = std::any_of(plans[c].streams.begin(), plans[c].streams.end(),
                               [&](const Stream& s) { return s.echo == echo; });
      EXPECT_TRUE(known) << tenant_name(plans[c].tenant) << " client " << c << " received on stream " << echo << ": "
                         << labels.front();
    }
    for (const auto& stream : plans[c].streams) {
      auto labels = without_probes(got[stream.echo], plans[c].tenant);
      deliveries += labels.size();
      // On filtered streams a status may wait for its viewer's data while a `delete`
      // does not (docs/protocol.md#relations): statuses keep their order among
      // themselves, and so does everything else.
      for (bool statuses : {true, false}) {
        if (!stream.filtered && !statuses) continue;
        auto part = [&](std::vector<std::string> all) {
          if (stream.filtered) {
            std::erase_if(all, [&](const std::string& l) { return l.starts_with("update ") != statuses; });
          }
          return all;
        };
        auto got_part = part(labels), expected_part = part(expected[c][stream.echo]);
        EXPECT_EQ(got_part, expected_part) << tenant_name(plans[c].tenant) << " client " << c << " ("
                                           << plans[c].target << ") stream '" << stream.echo
                                           << "': " << describe_difference(got_part, expected_part);
      }
    }
  }
  for (const auto& message : published) {
    if (message.event != "update") continue;
    for (size_t c = 0; c < client_count; ++c) {
      for (const auto& stream : plans[c].streams) {
        if (plans[c].tenant != message.tenant || !stream.filtered ||
            !std::count(stream.channels.begin(), stream.channels.end(), message.channel)) {
          continue;
        }
        if (!expected_delivery(fleet_.instances[message.tenant], plans[c], stream, message)) {
          const bool by_relations =
              relation_drops(fleet_.instances[message.tenant], account_id(plans[c].viewer), message.author);
          ++(by_relations ? dropped_by_relations : dropped_by_settings);
        }
      }
    }
  }
  // The data exercises what it claims to: many deliveries, and relations that drop.
  EXPECT_GT(deliveries, 3000u);
  EXPECT_GT(dropped_by_relations, 100u);
  EXPECT_GT(dropped_by_settings, 100u);
  size_t filter_matches = 0;
  for (const auto& streams : expected) {
    for (const auto& [echo, labels] : streams) {
      filter_matches += std::count_if(labels.begin(), labels.end(),
                                      [](const std::string& l) { return l.find(" filtered:") != std::string::npos && !l.ends_with(" filtered:"); });
    }
  }
  EXPECT_GT(filter_matches, 60u);
  std::cout << "[ isolation ] " << published.size() << " events to " << kTenants << " instances, " << deliveries
            << " deliveries checked, " << dropped_by_relations << " dropped by an instance's own relations and " << dropped_by_settings
            << " more by its own feed-access settings; " << filter_matches
            << " statuses matched a viewer's own keyword filter\n";

  // docs/hosting.md#observability: each instance's series count its own clients and
  // exactly the messages its clients received (probes included).
  auto metrics = http_request(cluster.port(), "GET", "/metrics").body;
  for (int t = 0; t < kTenants; ++t) {
    int sse_clients = 0, ws_clients = 0;
    for (const auto& plan : plans) {
      if (plan.tenant == t) ++(plan.websocket ? ws_clients : sse_clients);
    }
    const std::string name = tenant_name(t);
    EXPECT_NE(metrics.find("sluice_tenant_connected_clients{tenant=\"" + name + "\",type=\"eventsource\"} " +
                           std::to_string(sse_clients) + "\n"),
              std::string::npos)
        << name;
    EXPECT_NE(metrics.find("sluice_tenant_connected_clients{tenant=\"" + name + "\",type=\"websocket\"} " +
                           std::to_string(ws_clients) + "\n"),
              std::string::npos)
        << name;
    uint64_t sent = 0;
    for (const char* type : {"eventsource", "websocket"}) {
      const std::string series = "sluice_tenant_messages_sent_total{tenant=\"" + name + "\",type=\"" + type + "\"} ";
      auto at = metrics.find(series);
      if (at != std::string::npos) sent += std::stoull(metrics.substr(at + series.size()));
    }
    EXPECT_EQ(sent, received_per_tenant[t]) << name << "'s messages_sent series";
  }

  // A kill names a token id of its own instance: instances 3 and 4 share a Redis (and
  // so one ordered subscriber connection) and the same token ids; the kill in 3 ends
  // 3's client and leaves 4's, which still receives an event published after it.
  {
    auto client_of = [&](int t, int j) {
      for (size_t c = 0; c < client_count; ++c) {
        if (plans[c].tenant == t && plans[c].token == j) return c;
      }
      return client_count;
    };
    const int j = 0;
    size_t killed = client_of(3, j), kept = client_of(4, j);
    ASSERT_LT(killed, client_count);
    ASSERT_LT(kept, client_count);
    fleet_.redis(3).publish(redis_channel(3, "timeline:access_token:" + std::to_string(kFirstId + j)),
                            R"({"event":"kill"})");
    EXPECT_TRUE(still_hears(kept, std::to_string(5 * 1'000'000 + 999'999)))
        << "iso4's client with the same token id did not receive the event published after iso3's kill";
    EXPECT_TRUE(eventually([&] { return ended[killed].load(); }, 10s)) << "the kill did not end iso3's client";
    EXPECT_FALSE(ended[kept].load()) << "iso3's kill ended iso4's client";
  }

  // The same for an account kill (`timeline:system:<id>`): iso5 and iso6 share a Redis;
  // the account of iso5's token 1 exists in iso6 too, with a client of its own there.
  {
    const int t = 5, other = 6;
    const int viewer = viewer_of_token(t, 1);
    size_t killed = client_count, kept = client_count;
    for (size_t c = 0; c < client_count; ++c) {
      if (plans[c].viewer == viewer && plans[c].tenant == t) killed = c;
      if (plans[c].viewer == viewer && plans[c].tenant == other) kept = c;
    }
    ASSERT_LT(killed, client_count);
    ASSERT_LT(kept, client_count);
    fleet_.redis(t).publish(redis_channel(t, "timeline:system:" + std::to_string(account_id(viewer))),
                            R"({"event":"kill"})");
    EXPECT_TRUE(still_hears(kept, std::to_string((other + 1) * 1'000'000 + 999'997)))
        << "iso6's client of the same account id did not receive the event published after iso5's kill";
    EXPECT_TRUE(eventually([&] { return ended[killed].load(); }, 10s)) << "the account kill did not end iso5's client";
    EXPECT_FALSE(ended[kept].load()) << "iso5's account kill ended iso6's client";
  }

  // Tokens and lists are looked up in the request's own instance only.
  {
    SseClient own(cluster.port(), "/api/v1/streaming/user",
                  {{"Host", tenant_host(7)}, {"Authorization", "Bearer " + own_token(7)}});
    EXPECT_EQ(own.response().status, 200) << own.response().body;
    auto foreign = http_request(cluster.port(), "GET", "/api/v1/streaming/user",
                                {{"Host", tenant_host(8)}, {"Authorization", "Bearer " + own_token(7)}});
    EXPECT_EQ(foreign.status, 401) << foreign.body;
    EXPECT_EQ(foreign.body, R"({"error":"Invalid access token"})");
    // List k is owned by a different viewer in each instance: the owner in 9 is not in 10.
    const int k = 0;
    int viewer9 = list_owner(9, k);
    int token = -1;
    for (int j = 0; j < kViewers; ++j) {
      if (viewer_of_token(10, j) == viewer9) token = j;
    }
    ASSERT_NE(list_owner(10, k), viewer9);
    auto list = http_request(cluster.port(), "GET", "/api/v1/streaming/list?list=" + std::to_string(kFirstId + k),
                             {{"Host", tenant_host(10)}, {"Authorization", "Bearer " + shared_token(token)}});
    EXPECT_EQ(list.status, 401) << list.body;
    EXPECT_EQ(list.body, R"({"error":"Not authorized to stream this list"})");
  }

  // docs/hosting.md#routing: a Host no instance serves is refused before any lookup,
  // and counted; health and metrics answer whatever the Host.
  {
    auto counted = [&] {
      auto text = http_request(cluster.port(), "GET", "/metrics", {{"Host", "nobody.example"}}).body;
      const std::string series = "\nsluice_unknown_host_requests_total ";
      auto at = text.find(series);
      return at == std::string::npos ? -1LL : std::stoll(text.substr(at + series.size()));
    };
    long long before = counted();
    ASSERT_GE(before, 0);
    auto unknown = http_request(cluster.port(), "GET", "/api/v1/streaming/user",
                                {{"Host", "nobody.example"}, {"Authorization", "Bearer " + shared_token(0)}});
    EXPECT_EQ(unknown.status, 404);
    EXPECT_EQ(unknown.header("content-type"), "application/json");
    EXPECT_EQ(unknown.body, R"({"error":"No Mastodon instance is served at this host"})");
    WsClient upgrade(cluster.port(), "/api/v1/streaming?stream=user&access_token=" + shared_token(0),
                     {{"Host", "nobody.example"}});
    EXPECT_EQ(upgrade.response().status, 404);
    EXPECT_EQ(upgrade.response().header("x-error-message"), "No Mastodon instance is served at this host");
    SseClient www(cluster.port(), "/api/v1/streaming/user",
                  {{"Host", "WWW." + tenant_host(12) + ":443"}, {"Authorization", "Bearer " + own_token(12)}});
    EXPECT_EQ(www.response().status, 200) << "a tenant's second host, in capitals and with a port";
    EXPECT_EQ(counted(), before + 2);
    EXPECT_EQ(http_request(cluster.port(), "GET", "/api/v1/streaming/health", {{"Host", "nobody.example"}}).status, 200);
  }

  // docs/hosting.md#observability: the gateway's request lines name their instance.
  {
    const std::string logs = cluster.full_logs();
    EXPECT_NE(logs.find(R"("msg":"request completed")"), std::string::npos);
    bool named = false;
    for (size_t at = logs.find(R"("msg":"request completed")"); at != std::string::npos && !named;
         at = logs.find(R"("msg":"request completed")", at + 1)) {
      size_t begin = logs.rfind('\n', at), end = logs.find('\n', at);
      std::string line = logs.substr(begin == std::string::npos ? 0 : begin, end - begin);
      named = line.find(R"("path":"/api/v1/streaming/list?list=)") != std::string::npos &&
              line.find(R"("tenant":"iso10")") != std::string::npos;
    }
    EXPECT_TRUE(named) << "no request line of iso10's list request names its tenant";
  }

  // docs/hosting.md#reloading: a reload that removes iso19 and adds iso20 (iso19's
  // Redis and database under a new name), without a restart. iso19's clients are told
  // to go away and its Host is unknown from then on; iso20 is served, its events
  // reach its clients; iso18 (another instance with a Redis of its own) notices nothing.
  {
    std::vector<int> served;
    for (int t = 0; t < kTenants; ++t) served.push_back(t);
    {
      std::ofstream out(tenants_path);
      out << tenants_json(fleet_, served, {{19, "iso20"}});
    }
    cluster.signal_gateway(SIGHUP);
    if (GetParam() == Deployment::split) {
      cluster.signal_tier("broker", SIGHUP);
      cluster.signal_tier("auth", SIGHUP);
    }
    for (size_t c = 0; c < client_count; ++c) {
      if (plans[c].tenant != 19) continue;
      EXPECT_TRUE(eventually([&] { return ended[c].load(); }, 10s)) << "iso19 client " << c << " still open";
    }
    EXPECT_TRUE(eventually(
        [&] {
          return http_request(cluster.port(), "GET", "/api/v1/streaming/user",
                              {{"Host", tenant_host(19)}, {"Authorization", "Bearer " + shared_token(0)}})
                     .status == 404;
        },
        10s))
        << "iso19's Host still served after the reload";

    // iso20: the same database, so the same tokens; a new stream of it hears its events.
    // Each tier reads the file on its own: until auth has, a lookup for iso20 is
    // answered 503 with Retry-After, and the client retries.
    std::unique_ptr<SseClient> opened;
    ASSERT_TRUE(eventually(
        [&] {
          opened = std::make_unique<SseClient>(cluster.port(), "/api/v1/streaming/user",
                                               std::map<std::string, std::string>{
                                                   {"Host", "iso20.example"}, {"Authorization", "Bearer " + shared_token(0)}});
          int status = opened->response().status;
          EXPECT_TRUE(status == 200 || status == 503) << status << " " << opened->response().body;
          return status == 200;
        },
        10s))
        << opened->response().body << cluster.logs();
    SseClient& fresh = *opened;
    const std::string channel = "timeline:" + std::to_string(account_id(viewer_of_token(19, 0)));
    // Until the broker has read the file too, iso20's subscription waits there: publish
    // again until one arrives; every event fresh receives must be one of these.
    bool heard = false;
    std::set<std::string> sent;
    for (int round = 0; round < 20 && !heard; ++round) {
      std::string id = std::to_string(20 * 1'000'000 + round);
      sent.insert("update " + id);
      fleet_.redis(19).publish(redis_channel(19, channel), redis_message("update", status_payload(19, id, kMarkerAuthor)));
      while (auto event = fresh.next_event(1s)) {
        std::string label = label_of(event->event, event->data);
        EXPECT_TRUE(sent.count(label)) << "iso20's stream received " << label;
        heard = true;
      }
    }
    EXPECT_TRUE(heard) << "iso20's stream never heard its instance's events" << cluster.logs();

    size_t kept = client_count;
    for (size_t c = 0; c < client_count; ++c) {
      if (plans[c].tenant == 18 && !plans[c].streams.front().filtered) kept = c;
    }
    ASSERT_LT(kept, client_count);
    EXPECT_TRUE(still_hears(kept, std::to_string(19 * 1'000'000 + 999'998)))
        << "iso18's client missed an event after the reload";
    EXPECT_FALSE(ended[kept].load()) << "the reload ended iso18's client";
  }
}

INSTANTIATE_TEST_SUITE_P(Deployments, TenantIsolation, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
