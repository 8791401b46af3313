#include "auth/auth_queries.hpp"

#include <optional>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "auth/worker_pool.hpp"
#include "common/log.hpp"

namespace sluice {
namespace {

// docs/protocol.md#list-ownership; $1 is the raw list parameter as text.
constexpr const char* kListSql = "SELECT id, account_id FROM lists WHERE id = $1 AND account_id = $2 LIMIT 1";

// docs/protocol.md#feed-access-settings.
constexpr const char* kSettingsSql = "SELECT var, value FROM settings WHERE var IN ($1, $2)";

// docs/protocol.md#relations (a) and (b) turned around: instead of asking per event whether
// these accounts are related, fetch every relation of the viewers once, for a batch of
// viewers at a time ($1: their ids as a bigint[] literal); `viewer` says whose row it is.
// Mutes count whatever their expires_at and hide_notifications, as in the reference.
constexpr const char* kRelationsSql = R"(SELECT account_id AS viewer, 0 AS kind, target_account_id AS id,
       NULL::character varying AS domain
  FROM blocks WHERE account_id = ANY($1::bigint[])
UNION ALL
SELECT target_account_id, 1, account_id, NULL FROM blocks WHERE target_account_id = ANY($1::bigint[])
UNION ALL
SELECT account_id, 2, target_account_id, NULL FROM mutes WHERE account_id = ANY($1::bigint[])
UNION ALL
SELECT account_id, 3, NULL, domain FROM account_domain_blocks WHERE account_id = ANY($1::bigint[]))";

// docs/protocol.md#keyword-filter-query (c), with expires_at delivered as Unix milliseconds (the
// timestamp is stored in UTC without a zone, read as node-pg's Date would be on a
// UTC host; fractional milliseconds are cut as Date does).
constexpr const char* kFiltersSql = R"(SELECT filter.id AS id, filter.phrase AS title, filter.context AS context,
       floor(EXTRACT(EPOCH FROM filter.expires_at) * 1000)::bigint AS expires_at, filter.action AS filter_action,
       keyword.keyword AS keyword, keyword.whole_word AS whole_word
FROM custom_filter_keywords keyword
JOIN custom_filters filter ON keyword.custom_filter_id = filter.id
WHERE filter.account_id = $1
  AND (filter.expires_at IS NULL OR filter.expires_at > NOW()))";

constexpr std::string_view kDisabled = "--- disabled\n";

// A one-dimensional PostgreSQL text array; NULL elements are skipped (Rails never
// writes them).
std::vector<std::string> text_array(const pqxx::field& field) {
  std::vector<std::string> out;
  auto parser = field.as_array();
  for (;;) {
    auto [juncture, value] = parser.get_next();
    if (juncture == pqxx::array_parser::done) break;
    if (juncture == pqxx::array_parser::string_value) out.push_back(std::move(value));
  }
  return out;
}

// Characters that can appear in a bigint literal some PostgreSQL version accepts
// (digits, sign, blanks; 16+ adds 0x/0o/0b prefixes and '_' separators). Anything else
// makes `id = $1` fail, so it cannot be an owned list: no need to send it.
bool could_be_bigint(const std::string& text) {
  if (text.empty()) return false;
  for (char c : text) {
    bool ok = (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F') || c == 'x' ||
              c == 'X' || c == 'o' || c == 'O' || c == '_' || c == '+' || c == '-' || c == ' ' || c == '\t' ||
              c == '\n' || c == '\r' || c == '\v' || c == '\f';
    if (!ok) return false;
  }
  return true;
}

}  // namespace

std::vector<std::string> split_scopes(const std::string& scopes) {
  std::vector<std::string> out;
  size_t start = 0;
  for (;;) {
    size_t space = scopes.find(' ', start);
    if (space == std::string::npos) {
      out.push_back(scopes.substr(start));
      return out;
    }
    out.push_back(scopes.substr(start, space - start));
    start = space + 1;
  }
}

AuthQueries::AuthQueries(PgPool& pool)
    : pool_(pool),
      token_queries_(counter("token")),
      list_queries_(counter("list")),
      settings_queries_(counter("settings")),
      relations_queries_(counter("relations")),
      filters_queries_(counter("filters")) {}

metrics::Counter& AuthQueries::counter(const char* query) {
  return metrics::Registry::global().counter("sluice_auth_queries_total", "Queries sent to PostgreSQL by the auth tier",
                                             {{"query", query}});
}

void AuthQueries::detect_schema(pqxx::connection& connection) {
  MastodonSchema detected = MastodonSchema::detect(connection);
  std::lock_guard lock(schema_mutex_);
  detected_at_ = std::chrono::steady_clock::now();
  const bool changed = !schema_ || detected.describe() != schema_->describe();
  schema_ = std::move(detected);
  token_sql_ = token_query_sql(*schema_);
  if (!changed) return;
  if (schema_->serves_token_lookups()) {
    log::info(schema_->describe());
  } else {
    log::error(schema_->describe());
  }
}

std::string AuthQueries::token_sql() const {
  std::lock_guard lock(schema_mutex_);
  return token_sql_;
}

template <class Statement>
auto AuthQueries::run(Statement&& statement) {
  try {
    try {
      return pool_.run([&](pqxx::connection& connection) {
        pqxx::nontransaction tx(connection);
        return statement(tx);
      });
    } catch (const pqxx::sql_error& e) {
      throw DatabaseError(e.what());
    }
  } catch (const DatabaseError&) {
    // Cancelled or cut off by the pool's close: this replica is stopping, and the lookup
    // belongs on another one (503 at worst), not a database error (500).
    if (pool_.closed()) throw service_stopping();
    throw;
  }
}

v1::TokenReply AuthQueries::token(const std::string& token) {
  // libpq sends a text parameter up to its first NUL byte, so `<token>%00junk` would be
  // looked up as `<token>`. node-postgres sends it whole, PostgreSQL refuses the byte
  // (22021), and the reference answers 500: the same error here, without the query.
  if (token.find('\0') != std::string::npos) {
    throw UnqueryableTokenError("invalid byte sequence for encoding \"UTF8\": 0x00");
  }
  const pqxx::result rows = run([&](pqxx::nontransaction& tx) {
    token_queries_.inc();
    return tx.exec_params(token_sql(), token);
  });
  v1::TokenReply reply;
  if (rows.empty()) return reply;
  const auto& row = rows[0];
  if (row["scopes"].is_null()) throw NullScopesError("oauth_access_tokens.scopes is NULL");
  reply.set_found(true);
  reply.set_access_token_id(row["id"].as<int64_t>());
  reply.set_user_id(row["resource_owner_id"].as<int64_t>());
  reply.set_account_id(row["account_id"].as<int64_t>());
  for (auto& scope : split_scopes(row["scopes"].as<std::string>())) reply.add_scopes(std::move(scope));
  // NULL: no language filter. Any array, even an empty one, is a filter (docs/protocol.md#language-check).
  if (!row["chosen_languages"].is_null()) {
    reply.set_has_chosen_languages(true);
    for (auto& language : text_array(row["chosen_languages"])) reply.add_chosen_languages(std::move(language));
  }
  reply.set_permissions(row["permissions"].as<int64_t>());
  return reply;
}

bool AuthQueries::list_owned(const std::string& list_id, int64_t account_id) {
  if (!could_be_bigint(list_id)) return false;
  return run([&](pqxx::nontransaction& tx) {
    list_queries_.inc();
    try {
      return !tx.exec_params(kListSql, list_id, account_id).empty();
    } catch (const pqxx::data_exception&) {
      // invalid_text_representation / numeric_value_out_of_range: the reference's query
      // fails the same way and the list counts as not owned.
      return false;
    }
  });
}

v1::FeedAccessReply AuthQueries::feed_access(v1::FeedKind kind) {
  const bool topic = kind == v1::FEED_KIND_TOPIC;
  const std::string local_var = topic ? "local_topic_feed_access" : "local_live_feed_access";
  const std::string remote_var = topic ? "remote_topic_feed_access" : "remote_live_feed_access";
  const pqxx::result rows = run([&](pqxx::nontransaction& tx) {
    // Releases before 4.4 have no feed-access settings and their servers never read
    // any (docs/mastodon-releases.md): every feed is open, no query. Asked on the
    // connection, for the first one is what detects the release.
    if (!schema().has_feed_access_settings) return pqxx::result();
    settings_queries_.inc();
    return tx.exec_params(kSettingsSql, local_var, remote_var);
  });
  v1::FeedAccessReply reply;
  reply.set_local_access(true);
  reply.set_remote_access(true);
  for (const auto& row : rows) {
    bool access = row["value"].is_null() || row["value"].as<std::string>() != kDisabled;
    const std::string var = row["var"].as<std::string>();
    if (var == local_var) reply.set_local_access(access);
    if (var == remote_var) reply.set_remote_access(access);
  }
  return reply;
}

std::vector<v1::RelationsReply> AuthQueries::relations(const std::vector<int64_t>& account_ids) {
  std::vector<v1::RelationsReply> replies(account_ids.size());
  if (account_ids.empty()) return replies;
  // Where each viewer's answer goes (a viewer asked twice gets it twice).
  std::unordered_map<int64_t, std::vector<size_t>> slots;
  std::string array = "{";
  for (size_t i = 0; i < account_ids.size(); ++i) {
    slots[account_ids[i]].push_back(i);
    if (i > 0) array += ',';
    array += std::to_string(account_ids[i]);
  }
  array += '}';
  const pqxx::result rows = run([&](pqxx::nontransaction& tx) {
    relations_queries_.inc();
    return tx.exec_params(kRelationsSql, array);
  });
  for (const auto& row : rows) {
    auto viewer = slots.find(row[0].as<int64_t>());
    if (viewer == slots.end()) continue;
    for (size_t slot : viewer->second) {
      v1::RelationsReply& reply = replies[slot];
      switch (row[1].as<int>()) {
        // Before 4.4 these columns may be NULL (docs/mastodon-releases.md): such a row
        // relates nothing, as it matches nothing in the reference's queries.
        case 0:
          if (!row[2].is_null()) reply.add_blocking(row[2].as<int64_t>());
          break;
        case 1:
          if (!row[2].is_null()) reply.add_blocked_by(row[2].as<int64_t>());
          break;
        case 2:
          if (!row[2].is_null()) reply.add_muting(row[2].as<int64_t>());
          break;
        case 3:
          if (!row[3].is_null()) reply.add_blocked_domains(row[3].as<std::string>());
          break;
      }
    }
  }
  return replies;
}

v1::FiltersReply AuthQueries::filters(int64_t account_id) {
  const pqxx::result rows = run([&](pqxx::nontransaction& tx) {
    filters_queries_.inc();
    return tx.exec_params(kFiltersSql, account_id);
  });
  // docs/protocol.md#filter-objects: one filter per id in first-seen row order, its keywords in row order.
  v1::FiltersReply reply;
  std::unordered_map<std::string, int> index_of;
  for (const auto& row : rows) {
    std::string id = row["id"].as<std::string>();
    auto [it, inserted] = index_of.emplace(id, reply.filters_size());
    v1::CustomFilter* filter;
    if (inserted) {
      filter = reply.add_filters();
      filter->set_id(id);
      filter->set_title(row["title"].as<std::string>());
      for (auto& context : text_array(row["context"])) filter->add_context(std::move(context));
      if (!row["expires_at"].is_null()) {
        filter->set_has_expires_at(true);
        filter->set_expires_at_ms(row["expires_at"].as<int64_t>());
      }
      filter->set_action(row["filter_action"].as<int32_t>());
    } else {
      filter = reply.mutable_filters(it->second);
    }
    auto* keyword = filter->add_keywords();
    keyword->set_keyword(row["keyword"].as<std::string>());
    keyword->set_whole_word(row["whole_word"].as<bool>());
  }
  return reply;
}

MastodonSchema AuthQueries::schema() const {
  std::lock_guard lock(schema_mutex_);
  return schema_.value_or(MastodonSchema{});
}

void AuthQueries::ping() {
  run([](pqxx::nontransaction& tx) { tx.exec("SELECT 1"); });
  // A pool under steady load may keep its connections for good, so no new one looks
  // again: the probe does, at once while what was found fails every token lookup (not
  // ready until migrations or grants come), else once a minute (an upgrade in place).
  constexpr auto kLookAgainEvery = std::chrono::minutes(1);
  bool look_again;
  {
    std::lock_guard lock(schema_mutex_);
    look_again = !schema_ || !schema_->serves_token_lookups() ||
                 std::chrono::steady_clock::now() - detected_at_ >= kLookAgainEvery;
  }
  if (!look_again) return;
  pool_.run([this](pqxx::connection& connection) { detect_schema(connection); });
  const MastodonSchema known = schema();
  if (!known.serves_token_lookups()) throw DatabaseError(known.describe());
}

}  // namespace sluice
