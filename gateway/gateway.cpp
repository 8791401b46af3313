#include "gateway/gateway.hpp"

#include <unistd.h>

#include <random>
#include <thread>

#include "common/log.hpp"
#include "gateway/listener.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {

namespace {
std::string make_gateway_id() {
  char host[256] = {0};
  ::gethostname(host, sizeof host - 1);
  return std::string(host) + ":" + std::to_string(::getpid());
}
}  // namespace

Gateway::Gateway(GatewayConfig config, BrokerSet::StreamFactory connect_broker,
                 std::shared_ptr<grpc::Channel> auth_channel)
    : auth_(std::move(auth_channel), config.internal_token),
      broker_(config.brokers, std::move(connect_broker), make_gateway_id(),
              [this](BrokerLink::Events events) { on_events(std::move(events)); }),
      context_(std::move(config), auth_, broker_) {
  for (unsigned i = 0; i < context_.config.threads; ++i) workers_.push_back(std::make_unique<Worker>(context_, i));
}

Gateway::~Gateway() { stop(std::chrono::milliseconds(0)); }

// One line for the whole gateway: how its workers write (gateway/write_batch.hpp), and
// why not batched where a worker could not set up its ring.
void Gateway::log_write_mode() const {
  size_t batched = 0;
  std::string why_not;
  for (const auto& worker : workers_) {
    if (worker->write_batch().available()) {
      ++batched;
    } else if (why_not.empty()) {
      why_not = worker->write_batch().why_unavailable();
    }
  }
  if (batched == workers_.size()) {
    log::info("socket writes of each fan-out step batched through io_uring", {{"workers", batched}});
  } else {
    log::info("socket writes one system call each",
              {{"workers", workers_.size() - batched}, {"of", workers_.size()}, {"io_uring", why_not}});
  }
}

void Gateway::start() {
  std::vector<Worker*> workers;
  for (auto& worker : workers_) workers.push_back(worker.get());
  listener_ = std::make_unique<Listener>(workers_.front()->io(), workers);
  listener_->open(context_.config);
  log_write_mode();
  for (auto& worker : workers_) worker->start();
  broker_.start();
  listener_->start();
  started_ = true;
}

void Gateway::stop(std::chrono::milliseconds flush_grace) {
  if (!started_) return;
  started_ = false;
  draining_.store(true);
  context_.metrics.draining->set(1);
  listener_->close();
  const auto window = context_.config.drain_window;
  log::info("draining", {{"clients", static_cast<int64_t>(client_count())}, {"window_ms", static_cast<int64_t>(window.count())}});
  std::random_device seed;
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    uint64_t worker_seed = (static_cast<uint64_t>(seed()) << 32) | seed();
    asio::post(w->io(), [w, window, worker_seed] { w->drain(window, worker_seed); });
  }
  auto deadline = std::chrono::steady_clock::now() + window + flush_grace;
  while (client_count() > 0 && std::chrono::steady_clock::now() < deadline) {
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  // Lookups still in flight are cancelled and their callbacks have run before any
  // worker (whose io_context they post to) goes away.
  auth_.stop();
  for (auto& worker : workers_) worker->stop();
  broker_.stop();
}

size_t Gateway::client_count() const {
  size_t total = 0;
  for (const auto& worker : workers_) total += worker->client_count_relaxed();
  return total;
}

int Gateway::port() const { return listener_ ? listener_->port() : 0; }

void GatewayContext::authenticate(const std::string& tenant, const std::string& token,
                                  std::function<void(TokenResult)> done) {
  // docs/protocol.md#token-lookup: PostgreSQL refuses a NUL byte in text, so the
  // reference's lookup of such a token fails (500). Answered here, without a call the
  // auth tier could only refuse.
  if (token.find('\0') != std::string::npos) return done(TokenResult{LookupStatus::error, nullptr});
  auth.lookup_token(tenant, token, [this, tenant, token, done = std::move(done)](TokenResult result) mutable {
    if (result.status != LookupStatus::ok) return done(std::move(result));
    // Taken before the check: a kill recorded after it is either seen by the check or
    // caught when the connection is registered (Worker::add_client).
    uint64_t mark = recent_kills.mark();
    if (!recent_kills.affects(*result.info, result.age)) {
      result.info->kills_mark = mark;
      return done(std::move(result));
    }
    // Asked again past every cache: the answer reflects the kills recorded so far.
    mark = recent_kills.mark();
    auth.lookup_token(
        tenant, token,
        [mark, done = std::move(done)](TokenResult fresh) {
          if (fresh.status == LookupStatus::ok) fresh.info->kills_mark = mark;
          done(std::move(fresh));
        },
        /*fresh=*/true);
  });
}

void Gateway::update_tenants(std::shared_ptr<const Tenants> tenants) {
  std::vector<std::string> removed;
  if (auto previous = context_.tenants.update(tenants)) {
    for (const auto& tenant : previous->all()) {
      if (!tenants || !tenants->find(tenant.name)) removed.push_back(tenant.name);
    }
  }
  if (removed.empty()) return;
  log::info("instances removed from the tenants file; their clients are told to go away", {{"tenants", removed}});
  for (auto& worker : workers_) {
    Worker* w = worker.get();
    asio::post(w->io(), [w] { w->end_unserved_tenants(); });
  }
}

void Gateway::on_events(BrokerLink::Events events) {
  // Each worker gets the events it has listeners for in one post, in order: a post
  // per event woke a worker per event.
  std::vector<std::vector<std::shared_ptr<const GatewayEvent>>> for_worker(workers_.size());
  for (auto& event : events) {
    auto prepared = GatewayEvent::prepare(std::move(event));
    // Before any worker closes a connection, so that a reconnect sees it.
    if (prepared->is_system) context_.recent_kills.record(*prepared->source);
    // A system event may concern any client; any other goes only to the workers that
    // have listeners on its channel.
    const ChannelWorkers::Workers listening =
        prepared->is_system ? ChannelWorkers::Workers{}.set() : context_.channel_workers.of(prepared->channel_key());
    for (size_t i = 0; i < workers_.size(); ++i) {
      if (listening.test(i)) for_worker[i].push_back(prepared);
    }
  }
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (for_worker[i].empty()) continue;
    Worker* w = workers_[i].get();
    asio::post(w->io(), [w, batch = std::move(for_worker[i])] { w->deliver(batch); });
  }
}

}  // namespace sluice::gateway
