#pragma once
// What per-client filtering (docs/protocol.md#relations, docs/protocol.md#keyword-filters)
// needs to know about each viewer
// account with a filtered subscription on this worker: its relations and its
// keyword filters, fetched from the auth service and kept in memory, so that no
// status costs a database query per client. Relations are at most
// SLUICE_RELATIONS_MAX_STALENESS_MS old when used (0: fetched for every status,
// like the reference); filters are kept until `filters_changed` (like the
// reference's per-connection cache). A status that arrives while the data it
// needs is being fetched waits, in order, for that fetch.
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "gateway/auth_client.hpp"
#include "gateway/gateway_event.hpp"
#include "gateway/status_decision.hpp"
#include "gateway/status_filter.hpp"

namespace sluice::gateway {

class Client;
class GatewayContext;

// A viewer: an account of one instance (docs/hosting.md#tenants). Account ids repeat
// across instances, so the instance is part of the key and of every lookup.
struct ViewerId {
  std::string tenant;
  int64_t account = 0;
  static ViewerId of(const AuthInfo& auth) { return {auth.tenant, auth.account_id}; }
  bool operator==(const ViewerId&) const = default;
};
struct ViewerIdHash {
  size_t operator()(const ViewerId& id) const {
    return std::hash<int64_t>()(id.account) ^ (std::hash<std::string>()(id.tenant) * 0x9e3779b97f4a7c15ULL);
  }
};

// One viewer's entry in a worker's ViewerCache. Subscriptions hold a pointer to it
// (Subscription::viewer), valid while they are retained.
struct CachedViewer {
  using Clock = std::chrono::steady_clock;
  const ViewerId* id = nullptr;  // its key in the cache
  std::shared_ptr<const Relations> relations;  // set by take_relations, with its digest
  Clock::time_point relations_taken_at{};
  std::shared_ptr<const CompiledFilters> filters;  // set by take_filters, with its digest
  // The digests of both, here rather than behind the pointers: the fan-out prefetches
  // this entry, so the decision reads them without a cache miss of their own, and
  // most statuses need nothing more of the viewer (StatusViewer).
  RelationsDigest relations_digest;
  KeywordDigest filters_digest;
  bool relations_loading = false;
  bool filters_loading = false;
  bool filters_stale = false;
  int subscriptions = 0;
  // The `filtered` array of the last status this worker evaluated for the viewer,
  // by the fan-out's event number (FanOut::deliver): the viewer's other connections
  // here take it instead of evaluating again. A cache of a pure function of the
  // status and the filters, so kept even through the const view the decision gets.
  mutable uint64_t evaluated_event = 0;  // 0: none
  mutable std::string evaluated_filtered;
  struct Waiting {
    std::shared_ptr<Client> client;
    std::string echo_json;
    std::shared_ptr<const GatewayEvent> event;
    Clock::time_point arrived;
  };
  std::deque<Waiting> waiting;
  void take_relations(std::shared_ptr<const Relations> taken) {
    relations_digest = RelationsDigest::of(*taken);
    relations = std::move(taken);
  }
  void take_filters(std::shared_ptr<const CompiledFilters> taken) {
    filters_digest = taken->digest();
    filters = std::move(taken);
  }
  // What the decision reads of this viewer; valid while relations and filters are set.
  StatusViewer for_decision() const { return {*relations, relations_digest, *filters, filters_digest}; }
};

class ViewerCache {
 public:
  using Clock = std::chrono::steady_clock;
  // Called with the `filtered` array for a status that passed (e.g. "[]").
  using Verdict = std::function<void(const std::string& filtered_json)>;

  using Viewer = CachedViewer;
  // Sends a status that waited for its viewer's data, now that it is there.
  using DeliverDecided = std::function<void(Client& client, const std::string& echo_json, const GatewayEvent& event,
                                            const Viewer& viewer)>;

  // Runs a reply's handler, which may send many waiting statuses, as one step of the
  // worker's write batch: their socket writes go to the kernel together
  // (gateway/write_batch.hpp). With a zero staleness bound every filtered status waits.
  using RunStep = std::function<void(const std::function<void()>& handler)>;

  // Auth replies are handled on `io` (the worker's thread), where every call is made.
  ViewerCache(GatewayContext& context, boost::asio::io_context& io, std::chrono::milliseconds relations_max_staleness,
              DeliverDecided deliver_decided, RunStep run_step);

  // A filtered subscription of `account` appeared / went away on this worker. The entry
  // retain returns stays where it is until the matching release.
  Viewer* retain(const ViewerId& id);
  void release(const ViewerId& id);
  // docs/protocol.md#system-channels: the account's filters are fetched again before its next status.
  void filters_changed(const ViewerId& id);

  // True when everything a status arriving now needs of `viewer` (a retained entry) is
  // in memory and no earlier status of this viewer is still waiting.
  bool ready(Viewer& viewer, Clock::time_point now);
  // Queues a status for `client` until the viewer's data is fresh enough.
  void defer(const ViewerId& id, std::shared_ptr<Client> client, const std::string& echo_json,
             std::shared_ptr<const GatewayEvent> event, Clock::time_point now);


 private:
  // The viewer's entry, made if it is not there.
  Viewer& entry(const ViewerId& id);
  bool relations_fresh(const Viewer& viewer, Clock::time_point arrived) const;
  // How old a viewer's sets may grow before the next status fetches them ahead.
  std::chrono::milliseconds refresh_age() const;
  // Marks the viewer loading and queues it for the next batch.
  void load_relations(const ViewerId& id);
  void send_relations_queue();
  void relations_arrived(const std::string& tenant, const RelationsResult& result, Clock::time_point started);
  void load_filters(const ViewerId& id, bool fresh);
  void filters_arrived(const ViewerId& id, LookupStatus status, const sluice::v1::FiltersReply* reply,
                       Clock::time_point started);
  // Stale if error (docs/protocol.md#relations): a failed lookup leaves the viewer's last
  // known `what` in use (`known`), so live streams keep delivering through a PostgreSQL
  // outage; with nothing known yet, as the reference, the statuses that needed it are dropped.
  void lookup_failed(const ViewerId& id, Viewer& viewer, std::string_view what, bool known, Clock::time_point started);
  // An entry no subscription holds leaves once none of its lookups is out. True: it left.
  bool forget_if_unused(const ViewerId& id, const Viewer& viewer);
  void drain(const ViewerId& id);

  GatewayContext& context_;
  boost::asio::io_context& io_;
  DeliverDecided deliver_decided_;
  RunStep run_step_;
  std::chrono::milliseconds max_staleness_;
  std::unordered_map<ViewerId, Viewer, ViewerIdHash> viewers_;
  std::vector<ViewerId> relations_queue_;  // viewers whose relations go out in the next batches
};

}  // namespace sluice::gateway
