// docs/protocol.md#event-processing: per-client decisions on public and hashtag streams, made from
// memory (relations and filters fetched per viewer, not per status).
#include <gtest/gtest.h>

#include <nlohmann/json.hpp>

#include "tests/e2e/cluster.hpp"

namespace sluice::testing {
namespace {

class Filtering : public ::testing::TestWithParam<Deployment> {};

std::string status_json(const std::string& id, const std::string& author_id, const std::string& username,
                        const std::string& acct, const std::string& language = "\"en\"",
                        const std::string& mentions = "[]", const std::string& content = "<p>hello</p>",
                        const std::string& extra = "") {
  return R"({"id":")" + id + R"(","language":)" + language + R"(,"spoiler_text":"","content":")" + content +
         R"(","account":{"id":")" + author_id + R"(","username":")" + username + R"(","acct":")" + acct +
         R"("},"mentions":)" + mentions + R"(,"media_attachments":[],"poll":null)" + extra + "}";
}

std::string update(const std::string& status) { return R"({"event":"update","payload":)" + status + "}"; }

// Publishes `statuses` then a marker status every viewer may see; returns the ids of
// the statuses the client got before the marker. The marker is a status too because
// statuses may reach a client after later deletes, never after later statuses
// (docs/protocol.md#ordering-of-filtered-statuses).
std::vector<std::string> delivered_ids(SseClient& client, const std::string& channel,
                                       const std::vector<std::string>& statuses) {
  for (const auto& status : statuses) suite_redis().publish(channel, update(status));
  suite_redis().publish(channel, update(R"({"id":"marker","language":"en","content":"","account":{"id":"900099",)"
                                        R"("username":"marker","acct":"marker@marker.example"},"mentions":[],"media_attachments":[]})"));
  std::vector<std::string> ids;
  for (;;) {
    auto event = client.next_event(5s);
    if (!event) {
      ADD_FAILURE() << "marker never arrived";
      return ids;
    }
    auto id = nlohmann::json::parse(event->data)["id"].get<std::string>();
    if (id == "marker") return ids;
    ids.push_back(id);
  }
}

TEST_P(Filtering, LanguagesFollowChosenLanguages) {
  Cluster cluster(GetParam());
  auto english = create_account(suite_postgres(), "lang_en");
  auto none = create_account(suite_postgres(), "lang_none");
  suite_postgres().exec("UPDATE users SET chosen_languages = '{en}' WHERE id = " + std::to_string(english.user_id));
  suite_postgres().exec("UPDATE users SET chosen_languages = '{}' WHERE id = " + std::to_string(none.user_id));
  SseClient en(cluster.port(), "/api/v1/streaming/public", bearer(english.token));
  SseClient nothing(cluster.port(), "/api/v1/streaming/public", bearer(none.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  std::vector<std::string> statuses = {status_json("1", "900001", "a", "a", "\"en\""),
                                       status_json("2", "900001", "a", "a", "\"de\""),
                                       status_json("3", "900001", "a", "a", "null")};
  EXPECT_EQ(delivered_ids(en, "timeline:public", statuses), (std::vector<std::string>{"1"}));
  // An empty list drops every status, so this viewer sees only the delete.
  suite_redis().publish("timeline:public", R"({"event":"delete","payload":"after"})");
  auto event = nothing.next_event();
  ASSERT_TRUE(event);
  EXPECT_EQ(event->event, "delete");
}

// docs/protocol.md#relations: the reference drops a status whose relations query fails;
// Sluice keeps a viewer's last known relations and filters in use while PostgreSQL is
// away, so live streams keep their statuses and blocks still apply.
TEST_P(Filtering, StatusesFlowWithTheLastKnownRelationsWhileTheDatabaseIsDown) {
  // A zero bound: every status asks PostgreSQL, so every one below meets the outage.
  Cluster cluster(GetParam(), {{"SLUICE_RELATIONS_MAX_STALENESS_MS", "0"}, {"LOG_LEVEL", "debug"}});
  auto viewer = create_account(suite_postgres(), "outage_viewer");
  auto blocked = create_account(suite_postgres(), "outage_blocked");
  suite_postgres().exec("INSERT INTO blocks (account_id, target_account_id) VALUES (" +
                        std::to_string(viewer.account_id) + "," + std::to_string(blocked.account_id) + ")");
  SseClient sse(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  const std::string blocked_id = std::to_string(blocked.account_id);
  // Loaded while the database answers.
  EXPECT_EQ(delivered_ids(sse, "timeline:public", {status_json("before", "900001", "a", "a")}),
            (std::vector<std::string>{"before"}));

  suite_postgres().stop();
  auto during = delivered_ids(sse, "timeline:public",
                              {status_json("during1", "900001", "a", "a"),
                               status_json("hidden", blocked_id, "outage_blocked", "outage_blocked"),
                               status_json("during2", "900002", "b", "b")});
  suite_postgres().start();
  EXPECT_EQ(during, (std::vector<std::string>{"during1", "during2"})) << cluster.logs();
  EXPECT_NE(cluster.full_logs().find("relations lookup failed; keeping the last known relations"), std::string::npos)
      << "the outage was never met: this test would prove nothing";
}

// docs/protocol.md#relations, the other side of stale if error: with nothing known of a
// viewer yet, a failed relations lookup drops the statuses that waited for it, as the
// reference drops a status whose query fails; they are not sent later, once a lookup works.
TEST_P(Filtering, StatusesThatWaitedForRelationsThatNeverLoadedAreDropped) {
  Cluster cluster(GetParam(), {{"SLUICE_RELATIONS_MAX_STALENESS_MS", "0"}});
  auto viewer = create_account(suite_postgres(), "never_loaded_viewer");
  // The relations query reads `blocks`: without it every relations lookup fails, while
  // the token lookup does not need it.
  struct BlocksAway {
    BlocksAway() { suite_postgres().exec("ALTER TABLE blocks RENAME TO blocks_away"); }
    ~BlocksAway() { back(); }
    void back() {
      if (away) suite_postgres().exec("ALTER TABLE blocks_away RENAME TO blocks");
      away = false;
    }
    bool away = true;
  } blocks_away;
  const std::string failed = "relations lookup failed; dropping waiting statuses";
  auto failures = [&] {
    const std::string logs = cluster.full_logs();
    size_t count = 0;
    for (size_t at = logs.find(failed); at != std::string::npos; at = logs.find(failed, at + 1)) ++count;
    return count;
  };
  SseClient sse(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_EQ(sse.response().status, 200);
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  // The subscription's own fetch fails first (nothing waits for it yet).
  ASSERT_TRUE(eventually([&] { return failures() >= 1; })) << cluster.logs();
  const size_t before = failures();
  suite_redis().publish("timeline:public", update(status_json("dropped", "900001", "a", "a")));
  // The status's own fetch failed: it is dropped now, not kept for later.
  ASSERT_TRUE(eventually([&] { return failures() > before; })) << cluster.logs();
  blocks_away.back();
  EXPECT_EQ(delivered_ids(sse, "timeline:public", {status_json("after", "900001", "a", "a")}),
            (std::vector<std::string>{"after"}));
}

TEST_P(Filtering, FeedAccessSettingsAndViewFeeds) {
  Cluster cluster(GetParam(), {{"SLUICE_SETTINGS_CACHE_TTL_MS", "0"}});
  suite_postgres().exec(
      "DELETE FROM settings; INSERT INTO settings (var, value) VALUES ('local_live_feed_access', E'--- disabled\\n'), "
      "('remote_live_feed_access', E'--- public\\n')");
  auto viewer = create_account(suite_postgres(), "feed_viewer");
  auto moderator = create_account(suite_postgres(), "feed_moderator");
  std::string role = suite_postgres().query_value("INSERT INTO user_roles (name, permissions) VALUES ('mod', " +
                                                  std::to_string(0x100000 | 0x1) + ") RETURNING id");
  suite_postgres().exec("UPDATE users SET role_id = " + role + " WHERE id = " + std::to_string(moderator.user_id));
  SseClient plain(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  SseClient privileged(cluster.port(), "/api/v1/streaming/public", bearer(moderator.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  std::vector<std::string> statuses = {status_json("10", "900002", "loc", "loc"),
                                       status_json("11", "900003", "rem", "rem@remote.example")};
  EXPECT_EQ(delivered_ids(plain, "timeline:public", statuses), (std::vector<std::string>{"11"}));
  EXPECT_EQ(delivered_ids(privileged, "timeline:public", {}), (std::vector<std::string>{"10", "11"}));
  suite_postgres().exec("DELETE FROM settings");
}

// docs/protocol.md#feed-access-settings: with the default settings every subscribe
// reads the settings as they are then; an admin who turns a feed off or on is obeyed by
// the next subscription (no cache in between, unlike SLUICE_SETTINGS_CACHE_TTL_MS > 0).
TEST_P(Filtering, FeedAccessChangeIsSeenByTheNextSubscribe) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "feed_change_viewer");
  std::vector<std::string> statuses = {status_json("20", "900002", "loc", "loc"),
                                       status_json("21", "900003", "rem", "rem@remote.example")};
  suite_postgres().exec(
      "DELETE FROM settings; INSERT INTO settings (var, value) VALUES ('local_live_feed_access', E'--- disabled\\n')");
  {
    SseClient before(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
    ASSERT_TRUE(wait_numsub("timeline:public", 1));
    EXPECT_EQ(delivered_ids(before, "timeline:public", statuses), (std::vector<std::string>{"21"}));
  }
  ASSERT_TRUE(wait_numsub("timeline:public", 0));
  suite_postgres().exec("UPDATE settings SET value = E'--- public\\n' WHERE var = 'local_live_feed_access'");
  SseClient after(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  EXPECT_EQ(delivered_ids(after, "timeline:public", statuses), (std::vector<std::string>{"20", "21"}));
  suite_postgres().exec("DELETE FROM settings");
}

TEST_P(Filtering, BlocksMutesAndDomainBlocks) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "relations_viewer");
  auto blocked = create_account(suite_postgres(), "blocked_author");
  auto muted = create_account(suite_postgres(), "muted_author");
  auto blocker = create_account(suite_postgres(), "blocking_author");
  auto mentioned = create_account(suite_postgres(), "blocked_mention");
  auto fine = create_account(suite_postgres(), "fine_author");
  std::string v = std::to_string(viewer.account_id);
  suite_postgres().exec(
      "INSERT INTO blocks (account_id, target_account_id) VALUES (" + v + "," + std::to_string(blocked.account_id) +
      "), (" + v + "," + std::to_string(mentioned.account_id) + "), (" + std::to_string(blocker.account_id) + "," + v +
      "); INSERT INTO mutes (account_id, target_account_id, hide_notifications, expires_at) VALUES (" + v + "," +
      std::to_string(muted.account_id) + ", false, now() - interval '1 day');"
      "INSERT INTO account_domain_blocks (account_id, domain) VALUES (" + v + ", 'bad.example')");
  SseClient client(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  auto id = [](const TestAccount& a) { return std::to_string(a.account_id); };
  std::string mention_of_blocked = R"([{"id":")" + id(mentioned) + R"(","username":"m","acct":"m"}])";
  std::vector<std::string> statuses = {
      status_json("20", id(blocked), "b", "b"),
      status_json("21", id(muted), "m", "m"),
      status_json("22", id(blocker), "x", "x"),
      status_json("23", id(fine), "f", "f", "\"en\"", mention_of_blocked),
      status_json("24", id(fine), "f", "f@bad.example"),
      status_json("25", id(fine), "f", "f@BAD.example"),  // domains compare case-sensitively
      status_json("26", id(fine), "f", "f"),
  };
  EXPECT_EQ(delivered_ids(client, "timeline:public", statuses), (std::vector<std::string>{"25", "26"}));
}

TEST_P(Filtering, KeywordFiltersAnnotatePerClient) {
  Cluster cluster(GetParam());
  auto filtering = create_account(suite_postgres(), "kw_viewer");
  auto other = create_account(suite_postgres(), "kw_other");
  std::string filter_id = suite_postgres().query_value(
      "INSERT INTO custom_filters (account_id, phrase, context, action) VALUES (" +
      std::to_string(filtering.account_id) + ", 'Spoilers', '{home}', 1) RETURNING id");
  suite_postgres().exec("INSERT INTO custom_filter_keywords (custom_filter_id, keyword, whole_word) VALUES (" +
                        filter_id + ", 'café', true)");
  SseClient annotated(cluster.port(), "/api/v1/streaming/hashtag?tag=kw", bearer(filtering.token));
  WsClient ws(cluster.port(), "/api/v1/streaming?stream=hashtag&tag=kw&access_token=" + filtering.token);
  SseClient plain(cluster.port(), "/api/v1/streaming/hashtag?tag=kw", bearer(other.token));
  ASSERT_TRUE(wait_numsub("timeline:hashtag:kw", 1));
  ws_settle(ws);  // the WebSocket subscription has no acknowledgement
  std::string status = status_json("30", "900010", "a", "a", "\"en\"", "[]", "<p>Un CAFÉ &amp; tea</p>");
  suite_redis().publish("timeline:hashtag:kw", update(status));
  std::string expected_filtered =
      R"([{"filter":{"id":")" + filter_id +
      R"(","title":"Spoilers","context":["home"],"expires_at":null,"filter_action":"hide"},"keyword_matches":["CAFÉ"],"status_matches":null}])";
  std::string base = status.substr(0, status.size() - 1);
  auto got = annotated.next_event();
  ASSERT_TRUE(got);
  EXPECT_EQ(got->data, base + R"(,"filtered":)" + expected_filtered + "}");
  auto frame = ws.next_text();
  ASSERT_TRUE(frame);
  EXPECT_EQ(nlohmann::json::parse(*frame)["payload"], base + R"(,"filtered":)" + expected_filtered + "}");
  auto unfiltered = plain.next_event();
  ASSERT_TRUE(unfiltered);
  EXPECT_EQ(unfiltered->data, base + R"(,"filtered":[]})");

  // Each status is evaluated on its own: the next one, which matches nothing, takes
  // nothing of the last one's matches (the per-viewer result is kept per event).
  std::string tea = status_json("32", "900010", "a", "a", "\"en\"", "[]", "<p>Only tea</p>");
  suite_redis().publish("timeline:hashtag:kw", update(tea));
  std::string tea_filtered = tea.substr(0, tea.size() - 1) + R"(,"filtered":[]})";
  auto tea_sse = annotated.next_event();
  ASSERT_TRUE(tea_sse);
  EXPECT_EQ(tea_sse->data, tea_filtered);
  auto tea_ws = ws.next_text();
  ASSERT_TRUE(tea_ws);
  EXPECT_EQ(nlohmann::json::parse(*tea_ws)["payload"], tea_filtered);
  auto tea_plain = plain.next_event();
  ASSERT_TRUE(tea_plain);
  EXPECT_EQ(tea_plain->data, tea_filtered);

  // A status that already has `filtered` passes unchanged (docs/protocol.md#drop-pass-or-annotate).
  std::string prefiltered = status_json("31", "900010", "a", "a", "\"en\"", "[]", "café", R"(,"filtered":[1])");
  suite_redis().publish("timeline:hashtag:kw", update(prefiltered));
  auto unchanged = annotated.next_event();
  ASSERT_TRUE(unchanged);
  EXPECT_EQ(unchanged->data, prefiltered);
}

TEST_P(Filtering, FiltersChangedMakesTheNextStatusUseFreshFilters) {
  Cluster cluster(GetParam());
  auto viewer = create_account(suite_postgres(), "fc_viewer");
  SseClient client(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  // A second connection of the same account: one filters_changed refreshes both.
  SseClient second(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  std::string status = status_json("40", "900011", "a", "a", "\"en\"", "[]", "<p>breaking news</p>");
  suite_redis().publish("timeline:public", update(status));
  auto before = client.next_event();
  ASSERT_TRUE(before);
  ASSERT_TRUE(second.next_event());
  EXPECT_NE(before->data.find(R"("filtered":[]})"), std::string::npos);

  std::string filter_id = suite_postgres().query_value(
      "INSERT INTO custom_filters (account_id, phrase, context, action) VALUES (" +
      std::to_string(viewer.account_id) + ", 'News', '{public}', 0) RETURNING id");
  suite_postgres().exec("INSERT INTO custom_filter_keywords (custom_filter_id, keyword, whole_word) VALUES (" +
                        filter_id + ", 'news', false)");
  // No pause: the status published after filters_changed must already use the new
  // filters (both reach the gateway in publish order; it fetches fresh filters first).
  suite_redis().publish("timeline:system:" + std::to_string(viewer.account_id), R"({"event":"filters_changed"})");
  suite_redis().publish("timeline:public", update(status));
  auto after = client.next_event();
  ASSERT_TRUE(after);
  EXPECT_NE(after->data.find(R"("keyword_matches":["news"])"), std::string::npos) << after->data;
  EXPECT_NE(after->data.find(R"("filter_action":"warn")"), std::string::npos) << after->data;
  auto after_second = second.next_event();
  ASSERT_TRUE(after_second);
  EXPECT_EQ(after_second->data, after->data);
}

// The bound of SLUICE_RELATIONS_MAX_STALENESS_MS, both ways: a block starts and
// stops counting within it.
TEST_P(Filtering, RelationChangesTakeEffectWithinTheStalenessBound) {
  Cluster cluster(GetParam(), {{"SLUICE_RELATIONS_MAX_STALENESS_MS", "1000"}});
  auto viewer = create_account(suite_postgres(), "stale_viewer");
  auto author = create_account(suite_postgres(), "stale_author");
  SseClient client(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  std::string a = std::to_string(author.account_id);
  EXPECT_EQ(delivered_ids(client, "timeline:public", {status_json("50", a, "s", "s")}),
            (std::vector<std::string>{"50"}));
  suite_postgres().exec("INSERT INTO blocks (account_id, target_account_id) VALUES (" +
                        std::to_string(viewer.account_id) + "," + a + ")");
  std::this_thread::sleep_for(1300ms);
  EXPECT_EQ(delivered_ids(client, "timeline:public", {status_json("51", a, "s", "s")}),
            (std::vector<std::string>{}));
  suite_postgres().exec("DELETE FROM blocks WHERE account_id = " + std::to_string(viewer.account_id));
  std::this_thread::sleep_for(1300ms);
  EXPECT_EQ(delivered_ids(client, "timeline:public", {status_json("52", a, "s", "s")}),
            (std::vector<std::string>{"52"}));
}

TEST_P(Filtering, ZeroBoundSeesEveryChangeAtOnceLikeTheReference) {
  Cluster cluster(GetParam(), {{"SLUICE_RELATIONS_MAX_STALENESS_MS", "0"}});
  auto viewer = create_account(suite_postgres(), "zero_viewer");
  auto author = create_account(suite_postgres(), "zero_author");
  SseClient client(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token));
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  std::string a = std::to_string(author.account_id);
  EXPECT_EQ(delivered_ids(client, "timeline:public", {status_json("60", a, "z", "z")}),
            (std::vector<std::string>{"60"}));
  suite_postgres().exec("INSERT INTO mutes (account_id, target_account_id) VALUES (" +
                        std::to_string(viewer.account_id) + "," + a + ")");
  EXPECT_EQ(delivered_ids(client, "timeline:public", {status_json("61", a, "z", "z")}),
            (std::vector<std::string>{}));
  suite_postgres().exec("DELETE FROM mutes WHERE account_id = " + std::to_string(viewer.account_id));
  EXPECT_EQ(delivered_ids(client, "timeline:public", {status_json("62", a, "z", "z")}),
            (std::vector<std::string>{"62"}));
}

TEST(FilteringCost, NoDatabaseQueryPerStatusPerClient) {
  Cluster cluster(Deployment::all_in_one);
  const int kClients = 20, kStatuses = 100;
  auto series = [](const char* query) { return std::string("sluice_auth_queries_total{query=\"") + query + "\"}"; };
  const double relations_at_start = metric(cluster.port(), series("relations"));
  const double filters_at_start = metric(cluster.port(), series("filters"));
  std::vector<TestAccount> viewers;
  std::vector<std::unique_ptr<SseClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    viewers.push_back(create_account(suite_postgres(), "cost_viewer"));
    clients.push_back(std::make_unique<SseClient>(cluster.port(), "/api/v1/streaming/public", bearer(viewers.back().token)));
  }
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  // Each viewer's relations and filters are loaded once its first status needs them:
  // one status every client receives marks the end of those loads.
  suite_redis().publish("timeline:public", update(status_json("999", "900020", "c", "c")));
  for (auto& client : clients) ASSERT_TRUE(client->next_event());
  double relations_before = metric(cluster.port(), series("relations"));
  double filters_before = metric(cluster.port(), series("filters"));
  // The counters move on this path (the loads for the connections and their first
  // status): their standing still below is the finding.
  ASSERT_GE(relations_before - relations_at_start, 1) << "no relations query counted";
  ASSERT_GE(filters_before - filters_at_start, 1) << "no filters query counted";
  for (int i = 0; i < kStatuses; ++i) {
    suite_redis().publish("timeline:public", update(status_json(std::to_string(1000 + i), "900020", "c", "c")));
  }
  for (auto& client : clients) {
    for (int i = 0; i < kStatuses; ++i) ASSERT_TRUE(client->next_event()) << "status " << i;
  }
  double relations = metric(cluster.port(), series("relations")) - relations_before;
  double filters = metric(cluster.port(), series("filters")) - filters_before;
  // The reference would have run kClients × kStatuses = 2,000 relation queries.
  EXPECT_LE(relations, kClients) << "relations queries grew with statuses";
  EXPECT_EQ(filters, 0);
  RecordProperty("relations_queries_per_1000_deliveries", std::to_string(relations * 1000.0 / (kClients * kStatuses)));
}

// Exact mode (a zero bound): every status on a filtered stream waits for its viewers'
// relations and is sent from the handler of the auth tier's reply, outside the fan-out
// of the event. Those writes go through the worker's write batch as the fan-out's do
// (gateway/write_batch.hpp): one reply for several viewers is one system call per worker.
TEST_P(Filtering, StatusesThatWaitedForTheirViewersAreWrittenThroughTheBatch) {
  // Heartbeats (written in batched steps too) far off, so only the statuses count.
  Cluster cluster(GetParam(), {{"SLUICE_RELATIONS_MAX_STALENESS_MS", "0"}, {"SLUICE_SSE_HEARTBEAT_SECONDS", "3600"}});
  if (cluster.full_logs().find("batched through io_uring") == std::string::npos) {
    ASSERT_NE(cluster.full_logs().find("socket writes one system call each"), std::string::npos) << cluster.logs();
    GTEST_SKIP() << "io_uring refused on this machine: there is no batch to write through";
  }
  constexpr int kClients = 8, kStatuses = 5;
  std::vector<std::unique_ptr<SseClient>> clients;
  for (int i = 0; i < kClients; ++i) {
    auto viewer = create_account(suite_postgres(), "batch_viewer");
    clients.push_back(std::make_unique<SseClient>(cluster.port(), "/api/v1/streaming/public", bearer(viewer.token)));
    ASSERT_EQ(clients.back()->response().status, 200);
  }
  ASSERT_TRUE(wait_numsub("timeline:public", 1));
  const double writes_before = metric(cluster.port(), "sluice_gateway_batched_writes_total");
  const double calls_before = metric(cluster.port(), "sluice_gateway_write_submissions_total");
  for (int i = 0; i < kStatuses; ++i) {
    suite_redis().publish("timeline:public", update(status_json(std::to_string(2000 + i), "900030", "b", "b")));
  }
  for (int c = 0; c < kClients; ++c) {
    for (int i = 0; i < kStatuses; ++i) {
      auto event = clients[c]->next_event(5s);
      ASSERT_TRUE(event) << "client " << c << ", status " << i;
      EXPECT_EQ(nlohmann::json::parse(event->data)["id"], std::to_string(2000 + i)) << "client " << c;
    }
  }
  const double writes = metric(cluster.port(), "sluice_gateway_batched_writes_total") - writes_before;
  const double calls = metric(cluster.port(), "sluice_gateway_write_submissions_total") - calls_before;
  // Every client got every status, each at least in one write of the batch (several of
  // one client's statuses may share a write).
  EXPECT_GE(writes, kClients) << "waiting statuses were written one system call each";
  EXPECT_LT(calls, writes) << "no system call carried more than one write";
}

INSTANTIATE_TEST_SUITE_P(Deployments, Filtering, ::testing::Values(Deployment::all_in_one, Deployment::split),
                         deployment_name);

}  // namespace
}  // namespace sluice::testing
