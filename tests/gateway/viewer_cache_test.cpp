// ViewerCache's staleness bound for relations (docs/protocol.md#relations), on the
// gateway's clock held still by the test: sets are used until the bound, fetched
// ahead once they are four fifths of it old (counting the age the auth tier reports
// for its own copy), and a status past the bound never uses them. The auth service
// is scripted and holds every relations call until the test releases it, so whether
// a fetch started is read from the client's calls in flight, not waited for.
#include <grpcpp/grpcpp.h>
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <atomic>
#include <memory>
#include <mutex>
#include <vector>

#include "common/broker_set.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/viewer_cache.hpp"
#include "sluice/v1/auth.grpc.pb.h"
#include "tests/support/process.hpp"

namespace sluice::gateway {
namespace {

using namespace std::chrono_literals;
namespace v1 = sluice::v1;

class HeldRelationsAuth final : public v1::Auth::CallbackService {
 public:
  std::atomic<int64_t> age_ms{0};          // what the next answers report as their age
  std::atomic<int64_t> last_max_age_ms{-1};

  grpc::ServerUnaryReactor* GetRelationsBatch(grpc::CallbackServerContext* context,
                                              const v1::RelationsBatchRequest* request,
                                              v1::RelationsBatchReply* reply) override {
    last_max_age_ms = request->max_age_ms();
    for (int64_t account : request->account_ids()) {
      auto* entry = reply->add_entries();
      entry->set_account_id(account);
      entry->set_ok(true);
      entry->mutable_relations()->add_blocking(account + 1000);
      entry->mutable_relations()->set_age_ms(age_ms);
    }
    std::lock_guard lock(mutex_);
    auto* reactor = context->DefaultReactor();
    if (closing_) {
      reactor->Finish(grpc::Status::OK);
    } else {
      held_.push_back(reactor);
    }
    return reactor;
  }

  std::atomic<bool> hold_filters{false};  // GetFilters waits for fail_filters()

  grpc::ServerUnaryReactor* GetFilters(grpc::CallbackServerContext* context, const v1::FiltersRequest*,
                                       v1::FiltersReply* reply) override {
    auto* filter = reply->add_filters();
    filter->set_id("1");
    filter->set_title("dragons");
    filter->add_keywords()->set_keyword("dragon");
    auto* reactor = context->DefaultReactor();
    std::lock_guard lock(mutex_);
    if (hold_filters && !closing_) {
      held_filters_.push_back(reactor);
    } else {
      reactor->Finish(grpc::Status::OK);
    }
    return reactor;
  }
  size_t held_filters() {
    std::lock_guard lock(mutex_);
    return held_filters_.size();
  }
  // The held filters lookups fail, as with PostgreSQL away.
  void fail_filters() {
    std::lock_guard lock(mutex_);
    for (auto* reactor : held_filters_) reactor->Finish(grpc::Status(grpc::StatusCode::UNAVAILABLE, "database away"));
    held_filters_.clear();
  }

  size_t held() {
    std::lock_guard lock(mutex_);
    return held_.size();
  }
  void release() {
    std::lock_guard lock(mutex_);
    for (auto* reactor : held_) reactor->Finish(grpc::Status::OK);
    held_.clear();
  }
  // At the end of a test: answers what is held and whatever arrives later at once.
  void close() {
    {
      std::lock_guard lock(mutex_);
      closing_ = true;
    }
    release();
    fail_filters();
  }

 private:
  bool closing_ = false;
  std::mutex mutex_;
  std::vector<grpc::ServerUnaryReactor*> held_;
  std::vector<grpc::ServerUnaryReactor*> held_filters_;
};

struct ManualClock {
  SteadyClock::time_point now = SteadyClock::time_point{} + 1h;
  NowFunction function() {
    return [this] { return now; };
  }
};

class ViewerCacheTest : public ::testing::Test {
 protected:
  static constexpr auto kBound = 1000ms;

  ViewerCacheTest() {
    grpc::ServerBuilder builder;
    builder.RegisterService(&service);
    server_ = builder.BuildAndStart();
    auth_ = std::make_unique<AuthClient>(server_->InProcessChannel(grpc::ChannelArguments()), "");
    // Never started: these tests need no broker.
    brokers_ = std::make_unique<BrokerSet>(BrokerSetOptions{}, [](const BrokerTarget&) { return BrokerStreamOpener{}; },
                                           "viewer-cache-test", [](BrokerLink::Events) {});
    context_ = std::make_unique<GatewayContext>(GatewayConfig{}, *auth_, *brokers_, clock.function());
    cache_ = std::make_unique<ViewerCache>(*context_, io_, kBound,
                                           [this](Client&, const std::string&, const GatewayEvent&,
                                                  const ViewerCache::Viewer&) { ++decided_later; },
                                           [this](const std::function<void()>& handler) {
                                             ++steps;
                                             handler();
                                           });
  }
  ~ViewerCacheTest() override {
    service.close();
    auth_->stop();
    server_->Shutdown(std::chrono::system_clock::now() + 5s);
    server_->Wait();
  }

  // Runs what the auth replies posted to the worker's loop until the viewer is ready
  // now and every answered call has left the client's calls in flight.
  bool becomes_ready() {
    return sluice::testing::eventually([&] {
      io_.poll();
      return ready() && auth_->calls_in_flight() == 0;
    });
  }
  bool ready() { return viewer != nullptr && cache_->ready(*viewer, clock.now); }
  // What the worker's loop does after a status: the queued fetches leave.
  size_t fetches_started() {
    io_.poll();
    return auth_->calls_in_flight();
  }

  const ViewerId kViewer{"", 42};
  ViewerCache::Viewer* viewer = nullptr;  // what a subscription of kViewer holds
  HeldRelationsAuth service;
  ManualClock clock;
  int decided_later = 0;
  int steps = 0;  // reply handlers run as a step of the worker's write batch
  ViewerCache& cache() { return *cache_; }

 private:
  std::unique_ptr<grpc::Server> server_;
  std::unique_ptr<AuthClient> auth_;
  std::unique_ptr<BrokerSet> brokers_;
  std::unique_ptr<GatewayContext> context_;
  boost::asio::io_context io_;
  boost::asio::executor_work_guard<boost::asio::io_context::executor_type> work_ = boost::asio::make_work_guard(io_);
  std::unique_ptr<ViewerCache> cache_;
};

TEST_F(ViewerCacheTest, SetsAreFetchedAheadAtFourFifthsOfTheBoundAndNeverUsedPastIt) {
  viewer = cache().retain(kViewer);
  ASSERT_TRUE(sluice::testing::eventually([&] { return fetches_started() == 1 && service.held() == 1; }));
  // The gateway asks for a copy at most half the bound old.
  EXPECT_EQ(service.last_max_age_ms.load(), 500);
  service.release();
  ASSERT_TRUE(becomes_ready());

  clock.now += 799ms;
  ASSERT_TRUE(ready());
  EXPECT_EQ(fetches_started(), 0u) << "fetched before four fifths of the bound";

  clock.now += 2ms;  // 801 ms: used, and fetched ahead
  ASSERT_TRUE(ready());
  EXPECT_EQ(fetches_started(), 1u);
  ASSERT_TRUE(sluice::testing::eventually([&] { return service.held() == 1; }));

  clock.now += 200ms;  // 1,001 ms, the answer not in yet: past the bound, so not used
  EXPECT_FALSE(ready());
  service.release();
  // The new sets count from when their fetch started (801 ms): usable again now.
  ASSERT_TRUE(becomes_ready());
  EXPECT_EQ(decided_later, 0);
}

TEST_F(ViewerCacheTest, TheAgeTheAuthTierReportsCountsAgainstTheBound) {
  service.age_ms = 400;  // the auth tier answers from a copy 400 ms old
  viewer = cache().retain(kViewer);
  ASSERT_TRUE(sluice::testing::eventually([&] { return fetches_started() == 1 && service.held() == 1; }));
  service.release();
  ASSERT_TRUE(becomes_ready());

  clock.now += 399ms;  // the sets are 799 ms old
  ASSERT_TRUE(ready());
  EXPECT_EQ(fetches_started(), 0u);
  clock.now += 2ms;  // 801 ms old
  ASSERT_TRUE(ready());
  EXPECT_EQ(fetches_started(), 1u);
  clock.now += 200ms;  // 1,001 ms old, the answer not in yet
  EXPECT_FALSE(ready());
}

// A reply's handler may send every status that waited for it: it runs as one step of
// the worker's write batch, so those writes reach the kernel together.
TEST_F(ViewerCacheTest, EveryAuthReplyIsHandledAsOneWriteStep) {
  viewer = cache().retain(kViewer);
  ASSERT_TRUE(sluice::testing::eventually([&] { return fetches_started() == 1 && service.held() == 1; }));
  const int before_relations = steps;  // the filters, answered at once, may be in already
  service.release();
  ASSERT_TRUE(becomes_ready());
  EXPECT_EQ(steps, before_relations + 1) << "the relations reply was not handled as one step";
  EXPECT_EQ(steps, 2) << "one step per reply: filters and relations";
}

// Subscriptions keep the entry retain gave them (Subscription::viewer) and the fan-out
// uses it without a lookup, so it must stay put while other viewers come and go.
TEST_F(ViewerCacheTest, TheEntryASubscriptionHoldsStaysWhileOtherViewersComeAndGo) {
  viewer = cache().retain(kViewer);
  ASSERT_NE(viewer, nullptr);
  ASSERT_NE(viewer->id, nullptr);
  EXPECT_EQ(*viewer->id, kViewer);
  std::vector<ViewerId> others{ViewerId{"tenant-b", kViewer.account}};  // same id, other instance
  for (int64_t account = 1000; account < 3000; ++account) others.push_back(ViewerId{"", account});
  for (const auto& other : others) EXPECT_NE(cache().retain(other), viewer);  // the table grows and rehashes
  EXPECT_EQ(cache().retain(kViewer), viewer);  // a second subscription of the same viewer
  for (const auto& other : others) cache().release(other);
  // Their fetches answered, the others' entries are erased: had that moved this one,
  // ASan would report the reads below.
  service.close();
  ASSERT_TRUE(becomes_ready());
  EXPECT_EQ(*viewer->id, kViewer);
  EXPECT_EQ(viewer->subscriptions, 2);
  ASSERT_NE(viewer->relations, nullptr);
  EXPECT_EQ(viewer->relations->blocking, std::vector<int64_t>{kViewer.account + 1000});
  // The digests beside the pointers are theirs (CachedViewer::take_relations and
  // take_filters): the decision reads those first.
  v1::StatusFacts by_blocked;
  by_blocked.set_account_id_num(kViewer.account + 1000);
  EXPECT_TRUE(RelationsDigest::of(by_blocked).overlaps(viewer->relations_digest));
  EXPECT_TRUE(viewer->filters_digest.may_match(FilterSubject("a dragon")));
  EXPECT_FALSE(viewer->filters_digest.may_match(FilterSubject("a wyvern")));
  cache().release(kViewer);
  EXPECT_EQ(viewer->subscriptions, 1);
  EXPECT_TRUE(ready());
}

// A viewer's last subscription goes while its first fetch is still out, and a new one
// comes before the answer: the entry kept for the fetch is the one the new subscription
// holds, the fetch out serves it (no second one), and the answer must not erase it.
TEST_F(ViewerCacheTest, AnEntryKeptForAFetchServesTheNextSubscription) {
  viewer = cache().retain(kViewer);
  ASSERT_TRUE(sluice::testing::eventually([&] { return fetches_started() == 1 && service.held() == 1; }));
  cache().release(kViewer);  // no subscription left; the relations fetch is still out
  ViewerCache::Viewer* again = cache().retain(kViewer);
  EXPECT_EQ(again, viewer);
  EXPECT_EQ(again->subscriptions, 1);
  service.release();  // answers the one fetch held; a second one would stay held...
  // ...and keep a call in flight, which becomes_ready() waits to see at zero. It also
  // reads *viewer: ASan reports it if the answer erased the entry.
  ASSERT_TRUE(becomes_ready());
  EXPECT_EQ(*viewer->id, kViewer);
  EXPECT_EQ(viewer->subscriptions, 1);
  ASSERT_TRUE(viewer->relations);
}

// docs/protocol.md#keyword-filters: statuses waiting for a viewer's first filters are
// dropped when that lookup fails, those that came after it started included, as the
// reference drops a status whose filter query fails. Before, a status that came after
// the lookup started kept waiting (with its client) until another status came.
TEST_F(ViewerCacheTest, StatusesWaitingForTheFirstFiltersAreDroppedWhenTheLookupFails) {
  service.hold_filters = true;
  viewer = cache().retain(kViewer);
  ASSERT_TRUE(sluice::testing::eventually([&] {
    return fetches_started() == 2 && service.held() == 1 && service.held_filters() == 1;
  }));
  clock.now += 10ms;  // the status comes after the filters lookup started
  // Never delivered here (no filters yet), so no client or event is needed.
  cache().defer(kViewer, nullptr, "", nullptr, clock.now);
  ASSERT_EQ(viewer->waiting.size(), 1u);
  service.fail_filters();
  EXPECT_TRUE(sluice::testing::eventually([&] {
    fetches_started();
    return viewer->waiting.empty();
  })) << "the status still waits for filters that nobody fetches";
  EXPECT_EQ(decided_later, 0);
}

// Unless a filters_changed came while that lookup was out: the fetch it asks for starts
// at once and serves the statuses that came after the failed one started.
TEST_F(ViewerCacheTest, AFilterChangeDuringAFailedFirstLookupKeepsLaterStatusesForItsFetch) {
  service.hold_filters = true;
  viewer = cache().retain(kViewer);
  ASSERT_TRUE(sluice::testing::eventually([&] {
    return fetches_started() == 2 && service.held() == 1 && service.held_filters() == 1;
  }));
  clock.now += 10ms;
  cache().defer(kViewer, nullptr, "", nullptr, clock.now);
  cache().filters_changed(kViewer);
  service.fail_filters();
  // The failure handled: the fetch the change asked for is out and held in turn.
  ASSERT_TRUE(sluice::testing::eventually([&] {
    fetches_started();
    return service.held_filters() == 1;
  })) << "no second filters fetch";
  EXPECT_EQ(viewer->waiting.size(), 1u) << "the status the second fetch serves was dropped";
}

}  // namespace
}  // namespace sluice::gateway
