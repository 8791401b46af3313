#include "broker/gateway_session.hpp"

#include "broker/broker_tenants.hpp"
#include "common/log.hpp"

namespace sluice::broker {

std::vector<std::string> requested_channels(const google::protobuf::RepeatedPtrField<std::string>& channels) {
  std::vector<std::string> out;
  out.reserve(channels.size());
  for (const auto& channel : channels) {
    if (!channel.empty()) out.push_back(channel);
  }
  return out;
}

GatewaySession::GatewaySession(BrokerTenants& tenants, uint64_t id, std::string peer)
    : tenants_(tenants), id_(id), peer_(std::move(peer)) {}

std::string GatewaySession::gateway_id() const {
  std::lock_guard lock(mutex_);
  return gateway_id_;
}

void GatewaySession::handle(const v1::GatewayMessage& message, const std::shared_ptr<EventSink>& sink,
                            const std::function<void()>& send_ready) {
  if (!message.has_hello()) return apply(message, sink);
  if (!hello(message.hello())) return;
  send_ready();
  join(sink);
}

bool GatewaySession::hello(const v1::Hello& hello) {
  log::info("Gateway stream opened", {{"gateway", hello.gateway_id()}, {"peer", peer_}});
  std::lock_guard lock(mutex_);
  gateway_id_ = hello.gateway_id();
  if (hello_seen_) return false;
  hello_seen_ = true;
  return true;
}

void GatewaySession::join(const std::shared_ptr<EventSink>& sink) {
  std::lock_guard lock(mutex_);
  join_locked(sink);
}

void GatewaySession::join_locked(const std::shared_ptr<EventSink>& sink) {
  if (joined_ || released_) return;
  joined_ = true;
  tenants_.add_stream(id_, sink);
}

void GatewaySession::release() {
  {
    std::lock_guard lock(mutex_);
    if (released_) return;
    released_ = true;
    if (!joined_) return;
  }
  tenants_.remove_stream(id_);
}

void GatewaySession::note_unknown_locked(const std::string& name) {
  if (unknown_tenants_logged_.insert(name).second) {
    log::warn("Gateway stream names a tenant this broker does not serve",
              {{"gateway", gateway_id_}, {"peer", peer_}, {"tenant", name}});
  }
}

void GatewaySession::apply(const v1::GatewayMessage& message, const std::shared_ptr<EventSink>& sink) {
  SubscriptionRegistry::Change change;
  std::shared_ptr<TenantBroker> tenant;
  switch (message.kind_case()) {
    case v1::GatewayMessage::kSubscribe: {
      const auto& subscribe = message.subscribe();
      std::lock_guard lock(mutex_);
      if (released_) return;
      join_locked(sink);
      // An instance not served yet keeps the channels until the broker's own tenants
      // file names it (docs/hosting.md#reloading).
      auto applied = tenants_.subscribe(subscribe.tenant(), id_, requested_channels(subscribe.channels()),
                                        subscribe.heartbeat());
      if (!applied.tenant) return note_unknown_locked(subscribe.tenant());
      tenant = std::move(applied.tenant);
      change = std::move(applied.change);
      break;
    }
    case v1::GatewayMessage::kUnsubscribe: {
      const auto& unsubscribe = message.unsubscribe();
      std::lock_guard lock(mutex_);
      if (released_) return;
      auto applied = tenants_.unsubscribe(unsubscribe.tenant(), id_, requested_channels(unsubscribe.channels()));
      if (!applied.tenant) return note_unknown_locked(unsubscribe.tenant());
      tenant = std::move(applied.tenant);
      change = std::move(applied.change);
      break;
    }
    case v1::GatewayMessage::kTouch: {
      std::lock_guard lock(mutex_);
      if (released_) return;
      tenant = tenants_.find(message.touch().tenant());
      if (!tenant) return note_unknown_locked(message.touch().tenant());
      tenant->heartbeat().touch_coalesced(
          tenant->registry().held_with_heartbeat(id_, requested_channels(message.touch().channels())));
      return;
    }
    case v1::GatewayMessage::kHello:  // handle()'s
    case v1::GatewayMessage::KIND_NOT_SET:  // a newer gateway's message kind: ignored
      return;
  }
  tenant->subscriber().channels_changed(std::move(change.toggled));
  tenant->heartbeat().touch(std::move(change.heartbeat));
}

}  // namespace sluice::broker
