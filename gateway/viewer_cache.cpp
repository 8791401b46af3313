#include "gateway/viewer_cache.hpp"

#include <algorithm>

#include "common/log.hpp"
#include "gateway/client.hpp"
#include "gateway/gateway_context.hpp"

namespace sluice::gateway {

ViewerCache::ViewerCache(GatewayContext& context, boost::asio::io_context& io,
                         std::chrono::milliseconds relations_max_staleness, DeliverDecided deliver_decided,
                         RunStep run_step)
    : context_(context),
      io_(io),
      deliver_decided_(std::move(deliver_decided)),
      run_step_(std::move(run_step)),
      max_staleness_(relations_max_staleness) {}

ViewerCache::Viewer& ViewerCache::entry(const ViewerId& id) {
  auto it = viewers_.try_emplace(id).first;
  it->second.id = &it->first;
  return it->second;
}

ViewerCache::Viewer* ViewerCache::retain(const ViewerId& id) {
  // An unordered_map's elements stay where they are through inserts and rehashing:
  // only erasing this one, after its last release, moves anything a subscription holds.
  Viewer& viewer = entry(id);
  if (viewer.subscriptions++ > 0) return &viewer;
  // Fetch ahead, so the first status does not wait; an entry kept for a fetch still
  // out (its last subscription went meanwhile) takes that fetch's answer instead.
  if (!viewer.relations_loading) load_relations(id);
  if (!viewer.filters_loading) load_filters(id, false);
  return &viewer;
}

void ViewerCache::release(const ViewerId& id) {
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  if (--it->second.subscriptions > 0) return;
  // Keep the entry while fetches are in flight; their completion erases it.
  if (!it->second.relations_loading && !it->second.filters_loading) viewers_.erase(it);
}

void ViewerCache::filters_changed(const ViewerId& id) {
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  it->second.filters_stale = true;
  // A fetch already running is repeated when it completes, as the filters are stale.
  if (!it->second.filters_loading) load_filters(id, true);
}

std::chrono::milliseconds ViewerCache::refresh_age() const {
  // docs/protocol.md#relations: sets are fetched again at four fifths of the bound. The
  // auth tier's copy may be half the bound old (max_age_ms below), so an answer is
  // usable for at least three tenths of it; when the copy comes fresh from PostgreSQL,
  // as it does for a viewer this gateway alone holds, it lasts four fifths instead of
  // the half that refreshing at half the bound gave: 37.5 % fewer queries. The last
  // fifth (1 s at the default 5 s) is the time an answer has before a status waits.
  return max_staleness_ * 4 / 5;
}

bool ViewerCache::relations_fresh(const Viewer& viewer, Clock::time_point arrived) const {
  if (!viewer.relations) return false;
  return viewer.relations_taken_at >= arrived - max_staleness_;
}

bool ViewerCache::ready(Viewer& viewer, Clock::time_point now) {
  // A filters fetch in flight was started by filters_changed (or before the first
  // filters): a status arriving now must wait for it, never use the filters it
  // replaces (docs/protocol.md#filter-cache).
  if (!viewer.waiting.empty() || !viewer.filters || viewer.filters_stale || viewer.filters_loading) return false;
  // With a zero bound every status needs its own fetch, started after it arrived.
  if (max_staleness_.count() == 0 || !relations_fresh(viewer, now)) return false;
  // Past the refresh age, fetch ahead while statuses flow: the data never goes stale
  // under traffic, so statuses keep the shared fast path instead of waiting.
  if (!viewer.relations_loading && viewer.relations_taken_at < now - refresh_age()) load_relations(*viewer.id);
  return true;
}

void ViewerCache::defer(const ViewerId& id, std::shared_ptr<Client> client, const std::string& echo_json,
                        std::shared_ptr<const GatewayEvent> event, Clock::time_point now) {
  Viewer& viewer = entry(id);
  viewer.waiting.push_back(Viewer::Waiting{std::move(client), echo_json, std::move(event), now});
  if (!viewer.relations_loading && !relations_fresh(viewer, now)) load_relations(id);
  if (!viewer.filters_loading && (!viewer.filters || viewer.filters_stale)) load_filters(id, viewer.filters_stale);
  drain(id);
}

void ViewerCache::load_relations(const ViewerId& id) {
  entry(id).relations_loading = true;
  // Viewers that need their relations in the same turn of the worker's loop (every
  // viewer of a status, or every one past the refresh age when a status arrives) go to
  // the auth tier together: one call per kMaxRelationsBatch viewers, not one each.
  relations_queue_.push_back(id);
  if (relations_queue_.size() == 1) asio::post(io_, [this] { send_relations_queue(); });
}

void ViewerCache::send_relations_queue() {
  std::vector<ViewerId> queued;
  queued.swap(relations_queue_);
  // A batch asks one instance (docs/hosting.md#tenants): group the queue by tenant,
  // keeping each tenant's order.
  std::stable_sort(queued.begin(), queued.end(), [](const ViewerId& a, const ViewerId& b) { return a.tenant < b.tenant; });
  // Taken before the calls leave, so the age it starts from is never younger than the data.
  const auto started = context_.now();
  auto& io = io_;
  size_t first = 0;
  while (first < queued.size()) {
    const std::string& tenant = queued[first].tenant;
    size_t last = first;
    std::vector<int64_t> accounts;
    while (last < queued.size() && accounts.size() < AuthClient::kMaxRelationsBatch && queued[last].tenant == tenant) {
      accounts.push_back(queued[last++].account);
    }
    // The auth tier's copy may be half the bound old, so this one stays usable for the
    // other half (docs/protocol.md#relations); 0 (exact mode) asks PostgreSQL.
    context_.auth.relations_batch(tenant, std::move(accounts), max_staleness_ / 2,
                                  [this, tenant, started, &io](std::vector<RelationsResult> results) {
                                    asio::post(io, [this, tenant, started, results = std::move(results)] {
                                      run_step_([&] {
                                        for (const auto& result : results) relations_arrived(tenant, result, started);
                                      });
                                    });
                                  });
    first = last;
  }
}

void ViewerCache::relations_arrived(const std::string& tenant, const RelationsResult& result,
                                    Clock::time_point started) {
  const ViewerId id{tenant, result.account_id};
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  Viewer& viewer = it->second;
  viewer.relations_loading = false;
  if (result.status == LookupStatus::ok) {
    viewer.take_relations(Relations::from_reply(*result.relations));
    // Its age: the auth service may have answered from its own cache.
    viewer.relations_taken_at = started - std::chrono::milliseconds(result.relations->age_ms());
  } else {
    // The last known sets stay in use for another bound; the next status past the
    // refresh age tries again.
    if (viewer.relations) viewer.relations_taken_at = started;
    lookup_failed(id, viewer, "relations", viewer.relations != nullptr, started);
  }
  if (forget_if_unused(id, viewer)) return;
  drain(id);
}

void ViewerCache::lookup_failed(const ViewerId& id, Viewer& viewer, std::string_view what, bool known,
                                Clock::time_point started) {
  const auto fields = log::for_tenant(id.tenant, {{"account_id", id.account}});
  if (known) {
    log::debug(std::string(what) + " lookup failed; keeping the last known " + std::string(what), fields);
    return;
  }
  log::warn(std::string(what) + " lookup failed; dropping waiting statuses", fields);
  std::erase_if(viewer.waiting, [&](const Viewer::Waiting& w) { return w.arrived <= started; });
}

bool ViewerCache::forget_if_unused(const ViewerId& id, const Viewer& viewer) {
  if (viewer.subscriptions > 0 || viewer.relations_loading || viewer.filters_loading) return false;
  viewers_.erase(id);
  return true;
}

void ViewerCache::load_filters(const ViewerId& id, bool fresh) {
  Viewer& viewer = entry(id);
  viewer.filters_loading = true;
  viewer.filters_stale = false;
  auto& io = io_;
  auto started = context_.now();
  context_.auth.filters(id.tenant, id.account, fresh, [this, id, started, &io](
                                                     LookupStatus status,
                                                     std::shared_ptr<const sluice::v1::FiltersReply> reply) {
    asio::post(io, [this, id, started, status, reply] {
      run_step_([&] { filters_arrived(id, status, reply.get(), started); });
    });
  });
}

void ViewerCache::filters_arrived(const ViewerId& id, LookupStatus status, const sluice::v1::FiltersReply* reply,
                                  Clock::time_point started) {
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  Viewer& viewer = it->second;
  viewer.filters_loading = false;
  if (status == LookupStatus::ok) {
    if (!viewer.filters_stale) viewer.take_filters(CompiledFilters::compile(*reply));
  } else {
    // With no filters known, every waiting status goes, those that came after this
    // lookup started too: unlike relations, nothing would fetch filters for them until
    // the viewer's next status. Unless a filters_changed asked for another fetch, which
    // starts below and serves those.
    lookup_failed(id, viewer, "filters", viewer.filters != nullptr, viewer.filters_stale ? started : context_.now());
  }
  if (forget_if_unused(id, viewer)) return;
  // A filters_changed arrived while this fetch was running: fetch again.
  if (viewer.filters_stale) load_filters(id, true);
  drain(id);
}

// Decides waiting statuses in arrival order, as far as the data allows.
void ViewerCache::drain(const ViewerId& id) {
  auto it = viewers_.find(id);
  if (it == viewers_.end()) return;
  Viewer& viewer = it->second;
  while (!viewer.waiting.empty()) {
    auto& next = viewer.waiting.front();
    if (!viewer.filters || viewer.filters_stale || viewer.filters_loading) break;
    bool fresh = viewer.relations && (max_staleness_.count() == 0 ? viewer.relations_taken_at >= next.arrived
                                                                  : relations_fresh(viewer, next.arrived));
    if (!fresh) {
      if (!viewer.relations_loading) load_relations(id);
      break;
    }
    Viewer::Waiting waiting = std::move(next);
    viewer.waiting.pop_front();
    deliver_decided_(*waiting.client, waiting.echo_json, *waiting.event, viewer);
  }
}

}  // namespace sluice::gateway
