// PgPool against a real PostgreSQL: lazy opening, the DB_POOL bound, bounded waits,
// the reference's gauges, and replacement of connections PostgreSQL has dropped.
#include "auth/pg_pool.hpp"

#include <gtest/gtest.h>

#include <future>
#include <thread>

#include "tests/auth/auth_test_support.hpp"

namespace sluice {
namespace {

using auth_test::eventually;

int64_t gauge(const char* name) { return metrics::Registry::global().gauge(name, "").value(); }

int64_t backend_count() {
  return std::stoll(auth_test::shared_pg().query_value(
      "SELECT count(*) FROM pg_stat_activity WHERE datname = 'mastodon_test' AND pid <> pg_backend_pid() "
      "AND backend_type = 'client backend' AND query NOT LIKE '%pg_stat_activity%' AND application_name = 'pool-test'"));
}

PgConfig pool_config(int size) {
  auto config = auth_test::pg_config(size);
  for (auto& [key, value] : config.params) {
    if (key == "application_name") value = "pool-test";
  }
  return config;
}

int select_one(pqxx::connection& connection) {
  pqxx::nontransaction tx(connection);
  return tx.exec("SELECT 1")[0][0].as<int>();
}

TEST(PgPoolTest, OpensLazilyAndReuses) {
  int prepared = 0;
  PgPool pool(pool_config(3), [&](pqxx::connection&) { ++prepared; });
  EXPECT_EQ(pool.total(), 0);
  EXPECT_EQ(pool.run(select_one), 1);
  EXPECT_EQ(pool.run(select_one), 1);
  EXPECT_EQ(pool.total(), 1);
  EXPECT_EQ(pool.idle(), 1);
  EXPECT_EQ(prepared, 1);
}

TEST(PgPoolTest, NeverMoreThanPoolSizeAndWaitIsBounded) {
  PgPool pool(pool_config(2), nullptr, std::chrono::milliseconds(300));
  const int64_t total_before = gauge("pg_pool_total_connections");
  const int64_t waiting_before = gauge("pg_pool_waiting_queries");
  std::promise<void> release;
  std::shared_future<void> released = release.get_future().share();
  std::atomic<int> holding{0};
  auto hold = [&] {
    pool.run([&](pqxx::connection& connection) {
      select_one(connection);
      ++holding;
      released.wait();
    });
  };
  std::thread a(hold), b(hold);
  ASSERT_TRUE(eventually([&] { return holding == 2; }));
  EXPECT_EQ(pool.total(), 2);
  EXPECT_EQ(gauge("pg_pool_total_connections") - total_before, 2);
  EXPECT_EQ(backend_count(), 2);

  // A third caller waits, is counted as waiting, and gives up after the bound.
  std::atomic<bool> failed{false};
  std::thread c([&] {
    try {
      pool.run(select_one);
    } catch (const DatabaseError&) {
      failed = true;
    }
  });
  EXPECT_TRUE(eventually([&] { return pool.waiting() == 1; }) || failed);
  c.join();
  EXPECT_TRUE(failed);
  EXPECT_EQ(pool.total(), 2);

  // A waiter is served as soon as a connection comes back.
  std::atomic<int> served{0};
  std::thread d([&] { served = pool.run(select_one); });
  ASSERT_TRUE(eventually([&] { return pool.waiting() == 1; }));
  EXPECT_EQ(gauge("pg_pool_waiting_queries") - waiting_before, 1);
  release.set_value();
  a.join();
  b.join();
  d.join();
  EXPECT_EQ(served, 1);
  EXPECT_EQ(pool.total(), 2);
  EXPECT_EQ(pool.idle(), 2);
  EXPECT_EQ(gauge("pg_pool_waiting_queries") - waiting_before, 0);
}

TEST(PgPoolTest, GaugesFollowThePool) {
  const int64_t total_before = gauge("pg_pool_total_connections");
  const int64_t idle_before = gauge("pg_pool_idle_connections");
  {
    PgPool pool(pool_config(2), nullptr);
    pool.run([&](pqxx::connection& connection) {
      EXPECT_EQ(gauge("pg_pool_total_connections") - total_before, 1);
      EXPECT_EQ(gauge("pg_pool_idle_connections") - idle_before, 0);
      return select_one(connection);
    });
    EXPECT_EQ(gauge("pg_pool_idle_connections") - idle_before, 1);
  }
  EXPECT_EQ(gauge("pg_pool_total_connections") - total_before, 0);
  EXPECT_EQ(gauge("pg_pool_idle_connections") - idle_before, 0);
  // The help strings are the reference's.
  const std::string text = metrics::Registry::global().render();
  EXPECT_NE(text.find("# HELP pg_pool_total_connections The total number of clients existing within the pool"),
            std::string::npos);
  EXPECT_NE(text.find("# HELP pg_pool_idle_connections The number of clients which are not checked out but are "
                      "currently idle in the pool"),
            std::string::npos);
  EXPECT_NE(text.find("# HELP pg_pool_waiting_queries The number of queued requests waiting on a client when all "
                      "clients are checked out"),
            std::string::npos);
}

TEST(PgPoolTest, TerminatedConnectionIsReplaced) {
  PgPool pool(pool_config(1), nullptr);
  int first_pid = pool.run([](pqxx::connection& connection) { return connection.backendpid(); });
  auth_test::shared_pg().exec("SELECT pg_terminate_backend(" + std::to_string(first_pid) + ")");
  ASSERT_TRUE(eventually([&] { return backend_count() == 0; }));
  // The idle connection is dead; the pool notices, drops it and answers on a new one.
  int second_pid = pool.run([](pqxx::connection& connection) {
    pqxx::nontransaction tx(connection);
    tx.exec("SELECT 1");
    return connection.backendpid();
  });
  EXPECT_NE(second_pid, first_pid);
  EXPECT_EQ(pool.total(), 1);
}

TEST(PgPoolTest, UnreachableServerIsDatabaseError) {
  auto config = pool_config(1);
  for (auto& [key, value] : config.params) {
    if (key == "port") value = std::to_string(testing::free_port());
  }
  PgPool pool(config, nullptr);
  EXPECT_THROW(pool.run(select_one), DatabaseError);
  EXPECT_EQ(pool.total(), 0);
}

// A closed pool is a stopping tier: its refusal says so (the gateway then asks another
// replica, or answers 503), not a database error.
TEST(PgPoolTest, ClosedPoolRefuses) {
  PgPool pool(pool_config(1), nullptr);
  EXPECT_FALSE(pool.closed());
  pool.close();
  EXPECT_TRUE(pool.closed());
  EXPECT_THROW(pool.run(select_one), ServiceStopping);
}

}  // namespace
}  // namespace sluice
