// The auth tier's worker threads (auth/worker_pool.hpp): one lane per instance of a
// tenants file, turns across lanes, and a lane at its limit leaving threads to others.
#include <gtest/gtest.h>

#include <atomic>
#include <mutex>
#include <string>
#include <vector>

#include "auth/auth_service.hpp"
#include "auth/worker_pool.hpp"
#include "common/grpc_channel.hpp"
#include "tests/support/process.hpp"

namespace sluice {
namespace {

using testing::eventually;

TEST(WorkerPool, TheDefaultLaneRunsInTheOrderSubmitted) {
  std::mutex mutex;
  std::vector<int> order;
  {
    WorkerPool pool(1);
    for (int i = 0; i < 6; ++i) {
      ASSERT_TRUE(pool.submit([&, i] {
        std::lock_guard lock(mutex);
        order.push_back(i);
      }));
    }
    pool.stop();  // runs what is queued first
  }
  EXPECT_EQ(order, (std::vector<int>{0, 1, 2, 3, 4, 5}));
}

TEST(WorkerPool, ALaneAtItsLimitLeavesTheOtherThreadsToOtherLanes) {
  WorkerPool pool(2);
  int a_key = 0, b_key = 0;
  const WorkerPool::Lane a{&a_key, 1}, b{&b_key, 1};
  std::atomic<bool> release{false}, b_done{false};
  std::atomic<int> a_started{0};
  // Three lookups of an instance whose database hangs.
  for (int i = 0; i < 3; ++i) {
    ASSERT_TRUE(pool.submit(
        [&] {
          ++a_started;
          EXPECT_TRUE(eventually([&] { return release.load(); }, std::chrono::seconds(30)));
        },
        a));
  }
  ASSERT_TRUE(eventually([&] { return a_started.load() == 1; }));
  ASSERT_TRUE(pool.submit([&] { b_done = true; }, b));
  EXPECT_TRUE(eventually([&] { return b_done.load(); })) << "the other instance waited for the hung one";
  EXPECT_EQ(a_started.load(), 1) << "more of the hung instance's work ran than its limit";
  release = true;
  pool.stop();
  EXPECT_EQ(a_started.load(), 3);
}

// A full queue is load (RESOURCE_EXHAUSTED: the gateway answers 503 with Retry-After);
// a stopping pool is a replica going away (UNAVAILABLE: the gateway's retry policy asks
// another replica). Before, both were RESOURCE_EXHAUSTED and a rolling restart answered 503s.
TEST(WorkerPool, ARefusalSaysWhetherThePoolIsFullOrStopping) {
  WorkerPool pool(1, /*max_queued=*/1);
  std::atomic<bool> release{false}, started{false};
  ASSERT_TRUE(pool.submit([&] {
    started = true;
    EXPECT_TRUE(eventually([&] { return release.load(); }, std::chrono::seconds(30)));
  }));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  ASSERT_TRUE(pool.submit([] {}));
  ASSERT_FALSE(pool.submit([] {})) << "the queue of one should be full";
  grpc::Status busy = status_for_error(pool.refusal(), "");
  EXPECT_EQ(busy.error_code(), grpc::StatusCode::RESOURCE_EXHAUSTED) << busy.error_message();
  release = true;
  pool.stop();
  ASSERT_FALSE(pool.submit([] {}));
  grpc::Status stopping = status_for_error(pool.refusal(), "");
  EXPECT_EQ(stopping.error_code(), grpc::StatusCode::UNAVAILABLE) << stopping.error_message();
  EXPECT_EQ(stopping.error_message(), kAuthStoppingMessage) << "the gateway tells it apart by this message";
}

TEST(WorkerPool, LanesTakeTurns) {
  WorkerPool pool(1);
  int a_key = 0, b_key = 0;
  std::mutex mutex;
  std::string order;
  std::atomic<bool> release{false}, started{false};
  auto task = [&](char name) {
    return [&, name] {
      started = true;
      if (order.empty()) {
        EXPECT_TRUE(eventually([&] { return release.load(); }));
      }
      std::lock_guard lock(mutex);
      order += name;
    };
  };
  ASSERT_TRUE(pool.submit(task('a'), {&a_key, 0}));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  for (int i = 0; i < 2; ++i) ASSERT_TRUE(pool.submit(task('a'), {&a_key, 0}));
  for (int i = 0; i < 3; ++i) ASSERT_TRUE(pool.submit(task('b'), {&b_key, 0}));
  release = true;
  pool.stop();
  // a's second task had its turn before b arrived; from then on they alternate.
  EXPECT_EQ(order, "aabab" "b");
}

TEST(WorkerPool, ABoundedQueueRefusesBeyondIt) {
  WorkerPool pool(1, /*max_queued=*/2);
  std::atomic<bool> release{false}, started{false};
  ASSERT_TRUE(pool.submit([&] {
    started = true;
    EXPECT_TRUE(eventually([&] { return release.load(); }));
  }));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  int other_key = 0;
  EXPECT_TRUE(pool.submit([] {}));
  EXPECT_TRUE(pool.submit([] {}, {&other_key, 1}));
  EXPECT_FALSE(pool.submit([] {})) << "the bound counts every lane's queued work";
  release = true;
  pool.stop();
  EXPECT_FALSE(pool.submit([] {})) << "a stopped pool takes nothing";
}

// One instance whose database hangs fills its own queue, not the others': its lookups are
// refused at its bound while another instance's still queue and run.
TEST(WorkerPool, AHungLaneFillsOnlyItsOwnQueue) {
  WorkerPool pool(2);
  int a_key = 0, b_key = 0;
  const WorkerPool::Lane a{&a_key, 1, 3}, b{&b_key, 1, 3};
  std::atomic<bool> release{false};
  std::atomic<int> a_started{0}, b_done{0};
  auto hang = [&] {
    ++a_started;
    EXPECT_TRUE(eventually([&] { return release.load(); }, std::chrono::seconds(30)));
  };
  ASSERT_TRUE(pool.submit(hang, a));
  ASSERT_TRUE(eventually([&] { return a_started.load() == 1; }));
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(pool.submit(hang, a)) << i;
  EXPECT_FALSE(pool.submit(hang, a)) << "the hung lane queued past its bound";
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(pool.submit([&] { ++b_done; }, b)) << i;
  EXPECT_TRUE(eventually([&] { return b_done.load() == 3; })) << "the other instance's lookups did not run";
  release = true;
  pool.stop();
  EXPECT_EQ(a_started.load(), 4);
}

// An instance's own setting cannot take it past the tier's bound per instance (a tenant
// with SLUICE_AUTH_QUEUE_MAX=0 or above the tier's would fill the tier's queue again).
TEST(WorkerPool, ALaneIsNeverBoundAboveThePoolsBoundPerLane) {
  WorkerPool pool(1, /*max_queued=*/0, /*lane_max_queued=*/2);
  int unbounded_key = 0, larger_key = 0;
  std::atomic<bool> release{false}, started{false};
  ASSERT_TRUE(pool.submit([&] {
    started = true;
    EXPECT_TRUE(eventually([&] { return release.load(); }));
  }));
  ASSERT_TRUE(eventually([&] { return started.load(); }));
  for (const WorkerPool::Lane lane : {WorkerPool::Lane{&unbounded_key, 1, 0}, WorkerPool::Lane{&larger_key, 1, 100}}) {
    EXPECT_TRUE(pool.submit([] {}, lane));
    EXPECT_TRUE(pool.submit([] {}, lane));
    EXPECT_FALSE(pool.submit([] {}, lane)) << "a lane queued past the pool's bound per lane";
  }
  release = true;
  pool.stop();
}

}  // namespace
}  // namespace sluice
