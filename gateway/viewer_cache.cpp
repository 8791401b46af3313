#include "gateway/viewer_cache.hpp"

#include "common/log.hpp"
#include "gateway/client.hpp"
#include "gateway/gateway_context.hpp"

namespace sluice::gateway {

ViewerCache::ViewerCache(GatewayContext& context, boost::asio::io_context& io,
                         std::chrono::milliseconds relations_max_staleness, DeliverDecided deliver_decided)
    : context_(context), io_(io), deliver_decided_(std::move(deliver_decided)), max_staleness_(relations_max_staleness) {}

void ViewerCache::retain(int64_t account) {
  Viewer& viewer = viewers_[account];
  if (viewer.subscriptions++ > 0) return;
  // Fetch ahead, so the first status does not wait.
  load_relations(account);
  load_filters(account, false);
}

void ViewerCache::release(int64_t account) {
  auto it = viewers_.find(account);
  if (it == viewers_.end()) return;
  if (--it->second.subscriptions > 0) return;
  // Keep the entry while fetches are in flight; their completion erases it.
  if (!it->second.relations_loading && !it->second.filters_loading) viewers_.erase(it);
}

void ViewerCache::filters_changed(int64_t account) {
  auto it = viewers_.find(account);
  if (it == viewers_.end()) return;
  it->second.filters_stale = true;
  // A fetch already running is repeated when it completes, as the filters are stale.
  if (!it->second.filters_loading) load_filters(account, true);
}

bool ViewerCache::relations_fresh(const Viewer& viewer, Clock::time_point arrived) const {
  if (!viewer.relations) return false;
  return viewer.relations_taken_at >= arrived - max_staleness_;
}

const ViewerCache::Viewer* ViewerCache::ready(int64_t account, Clock::time_point now) {
  auto it = viewers_.find(account);
  if (it == viewers_.end()) return nullptr;
  Viewer& viewer = it->second;
  // A filters fetch in flight was started by filters_changed (or before the first
  // filters): a status arriving now must wait for it, never use the filters it
  // replaces (docs/protocol.md#filter-cache).
  if (!viewer.waiting.empty() || !viewer.filters || viewer.filters_stale || viewer.filters_loading) return nullptr;
  // With a zero bound every status needs its own fetch, started after it arrived.
  if (max_staleness_.count() == 0 || !relations_fresh(viewer, now)) return nullptr;
  // Past half the bound, fetch ahead while statuses flow: the data never goes stale
  // under traffic, so statuses keep the shared fast path instead of waiting.
  if (!viewer.relations_loading && viewer.relations_taken_at < now - max_staleness_ / 2) load_relations(account);
  return &viewer;
}

void ViewerCache::defer(int64_t account, std::shared_ptr<Client> client, const std::string& echo_json,
                        std::shared_ptr<const GatewayEvent> event, Clock::time_point now) {
  Viewer& viewer = viewers_[account];
  viewer.waiting.push_back(Viewer::Waiting{std::move(client), echo_json, std::move(event), now});
  if (!viewer.relations_loading && !relations_fresh(viewer, now)) load_relations(account);
  if (!viewer.filters_loading && (!viewer.filters || viewer.filters_stale)) load_filters(account, viewer.filters_stale);
  drain(account);
}

void ViewerCache::load_relations(int64_t account) {
  viewers_[account].relations_loading = true;
  // Viewers that need their relations in the same turn of the worker's loop (every
  // viewer of a status, or every one past half the bound when a status arrives) go to
  // the auth tier together: one call per kMaxRelationsBatch viewers, not one each.
  relations_queue_.push_back(account);
  if (relations_queue_.size() == 1) asio::post(io_, [this] { send_relations_queue(); });
}

void ViewerCache::send_relations_queue() {
  std::vector<int64_t> queued;
  queued.swap(relations_queue_);
  // Taken before the calls leave, so the age it starts from is never younger than the data.
  const auto started = context_.now();
  auto& io = io_;
  for (size_t first = 0; first < queued.size(); first += AuthClient::kMaxRelationsBatch) {
    const size_t last = std::min(queued.size(), first + AuthClient::kMaxRelationsBatch);
    // The auth tier's copy may be half the bound old, so this one stays usable for the
    // other half (docs/protocol.md#relations); 0 (exact mode) asks PostgreSQL.
    context_.auth.relations_batch({queued.begin() + first, queued.begin() + last}, max_staleness_ / 2,
                                  [this, started, &io](std::vector<RelationsResult> results) {
                                    asio::post(io, [this, started, results = std::move(results)] {
                                      for (const auto& result : results) relations_arrived(result, started);
                                    });
                                  });
  }
}

void ViewerCache::relations_arrived(const RelationsResult& result, Clock::time_point started) {
  const int64_t account = result.account_id;
  auto it = viewers_.find(account);
  if (it == viewers_.end()) return;
  Viewer& viewer = it->second;
  viewer.relations_loading = false;
  if (result.status == LookupStatus::ok) {
    viewer.relations = Relations::from_reply(*result.relations);
    // Its age: the auth service may have answered from its own cache.
    viewer.relations_taken_at = started - std::chrono::milliseconds(result.relations->age_ms());
  } else if (viewer.relations) {
    // Stale if error (docs/protocol.md#relations): PostgreSQL is away, and this
    // viewer's last known sets stay in use for another bound, so live streams keep
    // delivering through an outage; the next status past half the bound tries again.
    viewer.relations_taken_at = started;
    log::debug("relations lookup failed; keeping the last known relations", {{"account_id", account}});
  } else {
    // Nothing known yet: as the reference, a failed query drops the statuses that needed it.
    log::warn("relations lookup failed; dropping waiting statuses", {{"account_id", account}});
    std::erase_if(viewer.waiting, [&](const Viewer::Waiting& w) { return w.arrived <= started; });
  }
  if (viewer.subscriptions == 0 && !viewer.filters_loading) {
    viewers_.erase(it);
    return;
  }
  drain(account);
}

void ViewerCache::load_filters(int64_t account, bool fresh) {
  Viewer& viewer = viewers_[account];
  viewer.filters_loading = true;
  viewer.filters_stale = false;
  auto& io = io_;
  auto started = context_.now();
  context_.auth.filters(account, fresh, [this, account, started, &io](
                                                     LookupStatus status,
                                                     std::shared_ptr<const sluice::v1::FiltersReply> reply) {
    asio::post(io, [this, account, started, status, reply] {
      auto it = viewers_.find(account);
      if (it == viewers_.end()) return;
      Viewer& viewer = it->second;
      viewer.filters_loading = false;
      if (status == LookupStatus::ok) {
        if (!viewer.filters_stale) viewer.filters = CompiledFilters::compile(*reply);
      } else if (viewer.filters) {
        // Stale if error, as for relations: the last known filters stay in use.
        log::debug("filters lookup failed; keeping the last known filters", {{"account_id", account}});
      } else {
        log::warn("filters lookup failed; dropping waiting statuses", {{"account_id", account}});
        std::erase_if(viewer.waiting, [&](const Viewer::Waiting& w) { return w.arrived <= started; });
      }
      if (viewer.subscriptions == 0 && !viewer.relations_loading) {
        viewers_.erase(it);
        return;
      }
      // A filters_changed arrived while this fetch was running: fetch again.
      if (viewer.filters_stale) load_filters(account, true);
      drain(account);
    });
  });
}

// Decides waiting statuses in arrival order, as far as the data allows.
void ViewerCache::drain(int64_t account) {
  auto it = viewers_.find(account);
  if (it == viewers_.end()) return;
  Viewer& viewer = it->second;
  while (!viewer.waiting.empty()) {
    auto& next = viewer.waiting.front();
    if (!viewer.filters || viewer.filters_stale || viewer.filters_loading) break;
    bool fresh = viewer.relations && (max_staleness_.count() == 0 ? viewer.relations_taken_at >= next.arrived
                                                                  : relations_fresh(viewer, next.arrived));
    if (!fresh) {
      if (!viewer.relations_loading) load_relations(account);
      break;
    }
    Viewer::Waiting waiting = std::move(next);
    viewer.waiting.pop_front();
    deliver_decided_(*waiting.client, waiting.echo_json, *waiting.event, viewer);
  }
}

}  // namespace sluice::gateway
