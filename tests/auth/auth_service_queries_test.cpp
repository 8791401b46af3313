// CheckListOwnership (docs/protocol.md#list-ownership), GetFeedAccess
// (docs/protocol.md#feed-access-settings), GetRelations (docs/protocol.md#relations) and
// GetFilters (docs/protocol.md#keyword-filter-query, docs/protocol.md#filter-objects)
// through a real gRPC channel against a real PostgreSQL.
#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <future>
#include <map>
#include <pqxx/pqxx>

#include "tests/auth/auth_test_support.hpp"

namespace sluice {
namespace {

using auth_test::AuthHarness;
using auth_test::queries_sent;
using auth_test::shared_pg;
using auth_test::test_config;
using auth_test::unique_name;
using std::chrono::milliseconds;
using testing::TestAccount;

TestAccount account(const std::string& domain = "") {
  return testing::create_account(shared_pg(), unique_name("q"), "read", domain);
}

std::string id(int64_t value) { return std::to_string(value); }

// ---- list ownership ----

class ListOwnershipTest : public ::testing::Test {
 protected:
  ListOwnershipTest() : harness(test_config()) {}
  bool owned(const std::string& list_id, int64_t account_id) {
    bool result = true;
    auto status = harness.owned(list_id, account_id, &result);
    EXPECT_TRUE(status.ok()) << status.error_message();
    return result;
  }
  AuthHarness harness;
};

TEST_F(ListOwnershipTest, OwnedOthersAndMissing) {
  auto owner = account();
  auto other = account();
  std::string list = shared_pg().query_value("INSERT INTO lists (account_id, title) VALUES (" + id(owner.account_id) +
                                             ", 'friends') RETURNING id");
  EXPECT_TRUE(owned(list, owner.account_id));
  EXPECT_FALSE(owned(list, other.account_id));
  EXPECT_FALSE(owned(std::to_string(std::stoll(list) + 100000), owner.account_id));
}

TEST_F(ListOwnershipTest, EveryCheckIsAQuery) {
  auto owner = account();
  std::string list = shared_pg().query_value("INSERT INTO lists (account_id) VALUES (" + id(owner.account_id) +
                                             ") RETURNING id");
  const uint64_t before = queries_sent("list");
  EXPECT_TRUE(owned(list, owner.account_id));
  EXPECT_TRUE(owned(list, owner.account_id));
  EXPECT_EQ(queries_sent("list") - before, 2u);
  shared_pg().exec("DELETE FROM lists WHERE id = " + list);
  EXPECT_FALSE(owned(list, owner.account_id)) << "a deleted list is seen at once";
}

// docs/protocol.md#auth-overload: work that waited in the queue past
// SLUICE_AUTH_QUEUE_TIMEOUT_MS is refused without a query, list checks as token lookups.
TEST(QueueDeadline, ListChecksAndLookupsThatWaitedTooLongAreRefusedUnsent) {
  auth_test::ManualClock clock;
  auto config = test_config(/*pool_size=*/1);  // one worker: what follows the first waits
  config.cache.now = clock.function();
  config.cache.queue_timeout = milliseconds(5000);
  config.cache.token_negative_ttl = milliseconds(0);
  AuthHarness harness(config);
  auto owner = account();
  const std::string list = shared_pg().query_value("INSERT INTO lists (account_id) VALUES (" + id(owner.account_id) +
                                                   ") RETURNING id");
  AuthCache& cache = harness.tier().cache();
  auto answered = [](auto& promise) { return [&promise](const auto& answer) { promise.set_value(answer.error); }; };

  // The worker is held by a token lookup waiting for a lock.
  pqxx::connection locker(shared_pg().conninfo());
  pqxx::work lock(locker);
  lock.exec("LOCK TABLE oauth_access_tokens IN ACCESS EXCLUSIVE MODE");
  std::promise<std::exception_ptr> held, late_list, late_token, timely_list;
  cache.lookup_token(unique_name("held-"), answered(held));
  ASSERT_TRUE(auth_test::eventually([] {
    return shared_pg().query_value("SELECT count(*) FROM pg_stat_activity WHERE wait_event_type = 'Lock'") != "0";
  })) << "the first lookup never waited for the lock";
  const uint64_t lists_before = queries_sent("list"), tokens_before = queries_sent("token");
  cache.check_list_ownership(list, owner.account_id, answered(late_list));
  cache.lookup_token(unique_name("late-"), answered(late_token));
  clock.advance(milliseconds(5001));
  cache.check_list_ownership(list, owner.account_id, answered(timely_list));  // queued after the wait began
  lock.commit();

  EXPECT_EQ(held.get_future().get(), nullptr);
  for (auto* refused : {&late_list, &late_token}) {
    const std::exception_ptr error = refused->get_future().get();
    ASSERT_NE(error, nullptr);
    EXPECT_THROW(std::rethrow_exception(error), WorkRefused);
  }
  EXPECT_EQ(timely_list.get_future().get(), nullptr);
  EXPECT_EQ(queries_sent("list") - lists_before, 1u) << "only the list check queued in time reaches PostgreSQL";
  EXPECT_EQ(queries_sent("token") - tokens_before, 0u);
}

TEST_F(ListOwnershipTest, NonNumericIdsAreNotOwned) {
  auto owner = account();
  std::string list = shared_pg().query_value("INSERT INTO lists (account_id) VALUES (" + id(owner.account_id) +
                                             ") RETURNING id");
  for (const std::string& bad : {std::string("abc"), list + "abc", std::string(""), std::string("1.5"),
                                 std::string("99999999999999999999999"), std::string(" "), std::string("-"),
                                 list + "; DROP TABLE lists"}) {
    EXPECT_FALSE(owned(bad, owner.account_id)) << "'" << bad << "'";
  }
  // PostgreSQL's bigint input takes surrounding blanks and a sign, so the reference's
  // query finds these; so must we.
  EXPECT_TRUE(owned(" " + list + " ", owner.account_id));
  EXPECT_TRUE(owned("+" + list, owner.account_id));
  EXPECT_TRUE(owned("00" + list, owner.account_id));
  // The connection survives a failed query.
  EXPECT_TRUE(owned(list, owner.account_id));
}

// ---- feed access ----

class FeedAccessTest : public ::testing::Test {
 protected:
  static AuthConfig uncached() {
    auto config = test_config();
    config.cache.settings_ttl = milliseconds(0);
    return config;
  }
  FeedAccessTest() : harness(uncached()) { shared_pg().exec("DELETE FROM settings"); }
  void set(const std::string& var, const std::string& value_sql) {
    shared_pg().exec("INSERT INTO settings (var, value) VALUES ('" + var + "', " + value_sql +
                     ") ON CONFLICT (var) DO UPDATE SET value = EXCLUDED.value");
  }
  AuthHarness harness;
};

TEST_F(FeedAccessTest, MissingRowsMeanAccess) {
  auto live = harness.feed_access(v1::FEED_KIND_LIVE);
  EXPECT_TRUE(live.local_access());
  EXPECT_TRUE(live.remote_access());
  auto topic = harness.feed_access(v1::FEED_KIND_TOPIC);
  EXPECT_TRUE(topic.local_access());
  EXPECT_TRUE(topic.remote_access());
}

TEST_F(FeedAccessTest, OnlyTheExactDisabledValueRemovesAccess) {
  set("local_live_feed_access", "E'--- disabled\\n'");
  set("remote_live_feed_access", "E'--- authenticated\\n'");
  auto live = harness.feed_access(v1::FEED_KIND_LIVE);
  EXPECT_FALSE(live.local_access());
  EXPECT_TRUE(live.remote_access());

  set("remote_live_feed_access", "E'--- disabled\\n'");
  set("local_live_feed_access", "'--- disabled'");  // no trailing newline: not the value
  live = harness.feed_access(v1::FEED_KIND_LIVE);
  EXPECT_TRUE(live.local_access());
  EXPECT_FALSE(live.remote_access());

  set("local_live_feed_access", "NULL");
  set("remote_live_feed_access", "E'--- public\\n'");
  live = harness.feed_access(v1::FEED_KIND_LIVE);
  EXPECT_TRUE(live.local_access());
  EXPECT_TRUE(live.remote_access());
}

TEST_F(FeedAccessTest, TopicAndLiveAreSeparateSettings) {
  set("local_topic_feed_access", "E'--- disabled\\n'");
  set("remote_live_feed_access", "E'--- disabled\\n'");
  auto topic = harness.feed_access(v1::FEED_KIND_TOPIC);
  EXPECT_FALSE(topic.local_access());
  EXPECT_TRUE(topic.remote_access());
  auto live = harness.feed_access(v1::FEED_KIND_LIVE);
  EXPECT_TRUE(live.local_access());
  EXPECT_FALSE(live.remote_access());
}

TEST_F(FeedAccessTest, UnspecifiedKindIsInvalid) {
  grpc::Status status;
  harness.feed_access(v1::FEED_KIND_UNSPECIFIED, &status);
  EXPECT_EQ(status.error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// The default: every request reads the settings as they are (docs/protocol.md#feed-access-settings).
TEST(FeedAccessCacheTest, ByDefaultEveryRequestReadsTheSettings) {
  shared_pg().exec("DELETE FROM settings");
  auto config = test_config();
  ASSERT_EQ(config.cache.settings_ttl, milliseconds(0));
  AuthHarness harness(config);
  const uint64_t before = queries_sent("settings");
  EXPECT_TRUE(harness.feed_access(v1::FEED_KIND_LIVE).local_access());
  shared_pg().exec("INSERT INTO settings (var, value) VALUES ('local_live_feed_access', E'--- disabled\\n')");
  EXPECT_FALSE(harness.feed_access(v1::FEED_KIND_LIVE).local_access());
  EXPECT_EQ(queries_sent("settings") - before, 2u);
  shared_pg().exec("DELETE FROM settings");
}

// SLUICE_SETTINGS_CACHE_TTL_MS > 0, an operator's choice.
TEST(FeedAccessCacheTest, CachedForTheSettingsTtl) {
  shared_pg().exec("DELETE FROM settings");
  auth_test::ManualClock clock;
  auto config = test_config();
  config.cache.settings_ttl = milliseconds(5000);
  config.cache.now = clock.function();
  AuthHarness harness(config);
  const uint64_t before = queries_sent("settings");
  EXPECT_TRUE(harness.feed_access(v1::FEED_KIND_LIVE).local_access());
  shared_pg().exec("INSERT INTO settings (var, value) VALUES ('local_live_feed_access', E'--- disabled\\n')");
  clock.advance(milliseconds(4999));
  EXPECT_TRUE(harness.feed_access(v1::FEED_KIND_LIVE).local_access());
  EXPECT_EQ(queries_sent("settings") - before, 1u);
  clock.advance(milliseconds(1));
  EXPECT_FALSE(harness.feed_access(v1::FEED_KIND_LIVE).local_access());
  EXPECT_EQ(queries_sent("settings") - before, 2u);
  shared_pg().exec("DELETE FROM settings");
}

// ---- relations ----

std::vector<int64_t> sorted(const google::protobuf::RepeatedField<int64_t>& values) {
  std::vector<int64_t> out(values.begin(), values.end());
  std::sort(out.begin(), out.end());
  return out;
}

TEST(RelationsTest, BlocksMutesAndDomainBlocksOfOneViewer) {
  AuthHarness harness(test_config());
  auto viewer = account();
  auto blocked = account();
  auto blocker = account();
  auto muted = account();
  auto muted_expired = account();
  auto bystander = account();
  shared_pg().exec(
      "INSERT INTO blocks (account_id, target_account_id) VALUES (" + id(viewer.account_id) + ", " +
      id(blocked.account_id) + "), (" + id(blocker.account_id) + ", " + id(viewer.account_id) + "), (" +
      id(bystander.account_id) + ", " + id(blocked.account_id) + ");"
      "INSERT INTO mutes (account_id, target_account_id, hide_notifications, expires_at) VALUES (" +
      id(viewer.account_id) + ", " + id(muted.account_id) + ", false, NULL), (" + id(viewer.account_id) + ", " +
      id(muted_expired.account_id) + ", true, now() - interval '1 day'), (" + id(bystander.account_id) + ", " +
      id(viewer.account_id) + ", true, NULL);"
      "INSERT INTO account_domain_blocks (account_id, domain) VALUES (" + id(viewer.account_id) +
      ", 'Spam.Example'), (" + id(viewer.account_id) + ", 'other.example'), (" + id(bystander.account_id) +
      ", 'x.example')");
  auto reply = harness.relations(viewer.account_id);
  EXPECT_EQ(sorted(reply.blocking()), std::vector<int64_t>{blocked.account_id});
  EXPECT_EQ(sorted(reply.blocked_by()), std::vector<int64_t>{blocker.account_id});
  std::vector<int64_t> mutes{muted.account_id, muted_expired.account_id};
  std::sort(mutes.begin(), mutes.end());
  EXPECT_EQ(sorted(reply.muting()), mutes);
  std::vector<std::string> domains(reply.blocked_domains().begin(), reply.blocked_domains().end());
  std::sort(domains.begin(), domains.end());
  EXPECT_EQ(domains, (std::vector<std::string>{"Spam.Example", "other.example"})) << "as stored, case kept";

  auto nobody = harness.relations(bystander.account_id + 1000000);
  EXPECT_EQ(nobody.blocking_size() + nobody.blocked_by_size() + nobody.muting_size() + nobody.blocked_domains_size(),
            0);
}

TEST(RelationsTest, ZeroMaxAgeQueriesEveryTime) {
  AuthHarness harness(test_config());
  auto viewer = account();
  auto target = account();
  const uint64_t before = queries_sent("relations");
  EXPECT_EQ(harness.relations(viewer.account_id).blocking_size(), 0);
  shared_pg().exec("INSERT INTO blocks (account_id, target_account_id) VALUES (" + id(viewer.account_id) + ", " +
                   id(target.account_id) + ")");
  EXPECT_EQ(harness.relations(viewer.account_id).blocking_size(), 1);
  EXPECT_EQ(queries_sent("relations") - before, 2u);
}

TEST(RelationsTest, CachedWithinTheRequestsMaxAgeAndAgeReported) {
  auth_test::ManualClock clock;
  auto config = test_config();
  config.cache.now = clock.function();
  AuthHarness harness(config);
  auto viewer = account();
  auto target = account();
  const uint64_t before = queries_sent("relations");
  auto first = harness.relations(viewer.account_id, 5000);
  EXPECT_EQ(first.age_ms(), 0);
  shared_pg().exec("INSERT INTO mutes (account_id, target_account_id) VALUES (" + id(viewer.account_id) + ", " +
                   id(target.account_id) + ")");
  clock.advance(milliseconds(4000));
  auto cached = harness.relations(viewer.account_id, 5000);
  EXPECT_EQ(cached.muting_size(), 0);
  EXPECT_EQ(cached.age_ms(), 4000);
  EXPECT_EQ(queries_sent("relations") - before, 1u);
  // A gateway with a tighter bound gets a fresh answer from the same cache.
  auto tighter = harness.relations(viewer.account_id, 3000);
  EXPECT_EQ(tighter.muting_size(), 1);
  EXPECT_EQ(tighter.age_ms(), 0);
  EXPECT_EQ(queries_sent("relations") - before, 2u);
  // An older gateway that sends no bound gets the documented 5 s.
  clock.advance(milliseconds(5001));
  auto unset = harness.relations(viewer.account_id, std::nullopt);
  EXPECT_EQ(unset.age_ms(), 0);
  EXPECT_EQ(queries_sent("relations") - before, 3u);
  clock.advance(milliseconds(4000));
  EXPECT_EQ(harness.relations(viewer.account_id, std::nullopt).age_ms(), 4000);
  EXPECT_EQ(queries_sent("relations") - before, 3u);
}

TEST(RelationsTest, ABatchAnswersEveryViewerInTheOrderAsked) {
  AuthHarness harness(test_config());
  auto first = account();
  auto second = account();
  auto target = account();
  shared_pg().exec("INSERT INTO blocks (account_id, target_account_id) VALUES (" + id(first.account_id) + ", " +
                   id(target.account_id) + ");"
                   "INSERT INTO mutes (account_id, target_account_id) VALUES (" + id(second.account_id) + ", " +
                   id(target.account_id) + ")");
  const int64_t nobody = target.account_id + 1000000;
  const uint64_t before = queries_sent("relations");
  v1::RelationsBatchReply reply;
  ASSERT_TRUE(harness.relations_batch({second.account_id, nobody, first.account_id, second.account_id}, 0, &reply).ok());
  ASSERT_EQ(reply.entries_size(), 4);
  const std::vector<int64_t> asked{second.account_id, nobody, first.account_id, second.account_id};
  for (int i = 0; i < 4; ++i) {
    EXPECT_EQ(reply.entries(i).account_id(), asked[i]) << i;
    EXPECT_TRUE(reply.entries(i).ok()) << i;
  }
  const std::vector<int64_t> just_target{target.account_id};
  EXPECT_EQ(sorted(reply.entries(0).relations().muting()), just_target);
  EXPECT_EQ(reply.entries(0).relations().blocking_size(), 0);
  EXPECT_EQ(reply.entries(1).relations().muting_size() + reply.entries(1).relations().blocking_size(), 0);
  EXPECT_EQ(sorted(reply.entries(2).relations().blocking()), just_target);
  EXPECT_EQ(sorted(reply.entries(3).relations().muting()), just_target);
  // Max age 0 reads PostgreSQL anew, as GetRelations does, and the whole batch is one query.
  EXPECT_EQ(queries_sent("relations") - before, 1u);
}

TEST(RelationsTest, ABatchUsesTheCacheWithinItsMaxAge) {
  auth_test::ManualClock clock;
  auto config = test_config();
  config.cache.now = clock.function();
  AuthHarness harness(config);
  auto viewer = account();
  auto other = account();
  harness.relations(viewer.account_id, 5000);  // cached at age 0
  clock.advance(milliseconds(2000));
  const uint64_t before = queries_sent("relations");
  v1::RelationsBatchReply reply;
  ASSERT_TRUE(harness.relations_batch({viewer.account_id, other.account_id}, 2500, &reply).ok());
  ASSERT_EQ(reply.entries_size(), 2);
  EXPECT_EQ(reply.entries(0).relations().age_ms(), 2000) << "from the cache, its age reported";
  EXPECT_EQ(reply.entries(1).relations().age_ms(), 0);
  EXPECT_EQ(queries_sent("relations") - before, 1u) << "only the viewer not cached is queried";
}

TEST(RelationsTest, ABatchIsBoundedAndMayBeEmpty) {
  AuthHarness harness(test_config());
  v1::RelationsBatchReply reply;
  EXPECT_TRUE(harness.relations_batch({}, 0, &reply).ok());
  EXPECT_EQ(reply.entries_size(), 0);
  std::vector<int64_t> too_many(1001, 1);
  EXPECT_EQ(harness.relations_batch(too_many, 5000, &reply).error_code(), grpc::StatusCode::INVALID_ARGUMENT);
}

// ---- custom filters ----

struct FilterRow {
  std::string id;
  std::string keyword;
};

// Query (c) of docs/protocol.md#keyword-filter-query as written, run directly: the order the reference sees.
std::vector<FilterRow> reference_rows(int64_t account_id) {
  pqxx::connection connection(shared_pg().conninfo());
  pqxx::nontransaction tx(connection);
  auto rows = tx.exec(
      "SELECT filter.id AS id, filter.phrase AS title, filter.context AS context, filter.expires_at AS expires_at, "
      "filter.action AS filter_action, keyword.keyword AS keyword, keyword.whole_word AS whole_word "
      "FROM custom_filter_keywords keyword JOIN custom_filters filter ON keyword.custom_filter_id = filter.id "
      "WHERE filter.account_id = " + std::to_string(account_id) +
      " AND (filter.expires_at IS NULL OR filter.expires_at > NOW())");
  std::vector<FilterRow> out;
  for (const auto& row : rows) out.push_back({row["id"].c_str(), row["keyword"].c_str()});
  return out;
}

TEST(FiltersTest, GroupedInFirstSeenOrderWithEveryField) {
  auto config = test_config();
  config.cache.filters_ttl = milliseconds(0);
  AuthHarness harness(config);
  auto viewer = account();
  auto other = account();
  auto insert_filter = [&](int64_t owner, const std::string& phrase, const std::string& context,
                           const std::string& expires, int action) {
    return shared_pg().query_value("INSERT INTO custom_filters (account_id, phrase, context, expires_at, action) "
                                   "VALUES (" + id(owner) + ", '" + phrase + "', '" + context + "', " + expires +
                                   ", " + std::to_string(action) + ") RETURNING id");
  };
  auto keyword = [&](const std::string& filter, const std::string& word, bool whole) {
    shared_pg().exec("INSERT INTO custom_filter_keywords (custom_filter_id, keyword, whole_word) VALUES (" + filter +
                     ", '" + word + "', " + (whole ? "true" : "false") + ")");
  };
  std::string warn = insert_filter(viewer.account_id, "Spoilers", "{home,public}", "NULL", 0);
  std::string hide = insert_filter(viewer.account_id, "Politics", "{public}", "'2100-01-31 12:00:00.123456'", 1);
  std::string blur = insert_filter(viewer.account_id, "Blurred", "{notifications,thread}", "NULL", 2);
  std::string expired = insert_filter(viewer.account_id, "Old", "{home}", "now() - interval '1 minute'", 0);
  std::string foreign = insert_filter(other.account_id, "Theirs", "{home}", "NULL", 0);
  std::string no_keywords = insert_filter(viewer.account_id, "Empty", "{home}", "NULL", 0);
  (void)no_keywords;
  keyword(hide, "election", true);
  keyword(warn, "finale", false);
  keyword(hide, "vote", false);
  keyword(warn, "ending", true);
  keyword(blur, "cat", true);
  keyword(expired, "gone", true);
  keyword(foreign, "theirs", true);

  auto reply = harness.filters(viewer.account_id);
  // Expected grouping derived from the rows that query returns.
  std::vector<std::string> order;
  std::map<std::string, std::vector<std::string>> keywords;
  for (const auto& row : reference_rows(viewer.account_id)) {
    if (!keywords.count(row.id)) order.push_back(row.id);
    keywords[row.id].push_back(row.keyword);
  }
  ASSERT_EQ(order.size(), 3u) << "expired, foreign and keyword-less filters are left out";
  ASSERT_EQ(reply.filters_size(), 3);
  for (int i = 0; i < reply.filters_size(); ++i) {
    const auto& filter = reply.filters(i);
    EXPECT_EQ(filter.id(), order[static_cast<size_t>(i)]);
    std::vector<std::string> words;
    for (const auto& k : filter.keywords()) words.push_back(k.keyword());
    EXPECT_EQ(words, keywords[filter.id()]);
  }

  std::map<std::string, const v1::CustomFilter*> by_id;
  for (const auto& filter : reply.filters()) by_id[filter.id()] = &filter;
  ASSERT_TRUE(by_id.count(warn) && by_id.count(hide) && by_id.count(blur));
  const auto& w = *by_id[warn];
  EXPECT_EQ(w.title(), "Spoilers");
  EXPECT_EQ(std::vector<std::string>(w.context().begin(), w.context().end()),
            (std::vector<std::string>{"home", "public"}));
  EXPECT_FALSE(w.has_expires_at());
  EXPECT_EQ(w.expires_at_ms(), 0);
  EXPECT_EQ(w.action(), 0);
  ASSERT_EQ(w.keywords_size(), 2);
  EXPECT_EQ(w.keywords(0).keyword(), "finale");
  EXPECT_FALSE(w.keywords(0).whole_word());
  EXPECT_EQ(w.keywords(1).keyword(), "ending");
  EXPECT_TRUE(w.keywords(1).whole_word());

  const auto& h = *by_id[hide];
  EXPECT_EQ(h.title(), "Politics");
  EXPECT_TRUE(h.has_expires_at());
  EXPECT_EQ(h.expires_at_ms(), 4105080000123);  // 2100-01-31T12:00:00.123Z
  EXPECT_EQ(h.action(), 1);

  const auto& b = *by_id[blur];
  EXPECT_EQ(b.action(), 2) << "the raw action, even one the gateway omits";
  EXPECT_EQ(std::vector<std::string>(b.context().begin(), b.context().end()),
            (std::vector<std::string>{"notifications", "thread"}));
  EXPECT_EQ(std::to_string(std::stoll(b.id())), b.id()) << "decimal string";
}

TEST(FiltersTest, CachedUntilFiltersChanged) {
  auth_test::ManualClock clock;
  auto config = test_config();
  config.cache.now = clock.function();
  AuthHarness harness(config);
  auto viewer = account();
  const uint64_t before = queries_sent("filters");
  EXPECT_EQ(harness.filters(viewer.account_id).filters_size(), 0);
  std::string filter = shared_pg().query_value("INSERT INTO custom_filters (account_id, phrase) VALUES (" +
                                               id(viewer.account_id) + ", 'x') RETURNING id");
  shared_pg().exec("INSERT INTO custom_filter_keywords (custom_filter_id, keyword) VALUES (" + filter + ", 'x')");
  EXPECT_EQ(harness.filters(viewer.account_id).filters_size(), 0) << "cached";
  EXPECT_EQ(queries_sent("filters") - before, 1u);
  harness.tier().cache().forget_filters(viewer.account_id);
  EXPECT_EQ(harness.filters(viewer.account_id).filters_size(), 1);
  EXPECT_EQ(queries_sent("filters") - before, 2u);
  // And the TTL bounds it without a filters_changed.
  shared_pg().exec("DELETE FROM custom_filters WHERE id = " + filter);
  clock.advance(milliseconds(59999));
  EXPECT_EQ(harness.filters(viewer.account_id).filters_size(), 1);
  clock.advance(milliseconds(1));
  EXPECT_EQ(harness.filters(viewer.account_id).filters_size(), 0);
}

TEST(FiltersTest, ExpiryIsJudgedByPostgresNow) {
  auto config = test_config();
  config.cache.filters_ttl = milliseconds(0);
  AuthHarness harness(config);
  auto viewer = account();
  std::string soon = shared_pg().query_value(
      "INSERT INTO custom_filters (account_id, phrase, expires_at) VALUES (" + id(viewer.account_id) +
      ", 'soon', (now() AT TIME ZONE current_setting('TimeZone')) + interval '1 hour') RETURNING id");
  shared_pg().exec("INSERT INTO custom_filter_keywords (custom_filter_id, keyword) VALUES (" + soon + ", 'k')");
  EXPECT_EQ(harness.filters(viewer.account_id).filters_size(), 1);
  shared_pg().exec("UPDATE custom_filters SET expires_at = expires_at - interval '2 hours' WHERE id = " + soon);
  EXPECT_EQ(harness.filters(viewer.account_id).filters_size(), 0);
}

}  // namespace
}  // namespace sluice
