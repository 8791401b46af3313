#include "gateway/sse_session.hpp"

#include "gateway/http_responses.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {

SseSession::SseSession(Worker& worker, Socket socket, std::shared_ptr<const AuthInfo> auth)
    : Client(worker, std::move(socket), ClientKind::eventsource, std::move(auth)) {}

void SseSession::start(std::string request_id, std::unique_ptr<Subscription> subscription) {
  worker_.add_client(shared_from_this());
  send(make_frame(sse_response_head(request_id)));
  add_subscription(std::move(subscription));
  start_reading();
}

void SseSession::end_gracefully() {
  if (!open()) return;
  ending_ = true;
  release_subscriptions();
  send(make_frame(std::string(kLastChunk)));
  close_after_flush();
}

void SseSession::heartbeat() {
  if (open()) send(worker_.thump_frame());
}

}  // namespace sluice::gateway
