#include "gateway/sse_session.hpp"

#include "gateway/http_responses.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {

SseSession::SseSession(Worker& worker, Socket socket, ConnectionTicket ticket, std::shared_ptr<const AuthInfo> auth)
    : Client(worker, std::move(socket), std::move(ticket), ClientKind::eventsource, std::move(auth)) {}

void SseSession::start(std::string request_id, std::unique_ptr<Subscription> subscription, bool keep_alive) {
  keep_alive_ = keep_alive;
  worker_.add_client(shared_from_this());
  // Subscribed before the head goes out: a client that publishes as soon as it sees
  // 200 gets that event (docs/protocol.md#sse-response-head). No event can come between the two:
  // deliveries reach this worker as later handlers.
  add_subscription(std::move(subscription));
  send(make_frame(sse_response_head(request_id, keep_alive)));
  start_reading();
}

// Like Node's server, a keep-alive connection whose response ended serves the next
// request; clients reuse such sockets (Node's Agent, browsers).
void SseSession::end_gracefully() {
  set_end_reason("killed");
  end_response(keep_alive_);
}

// A draining gateway takes no further requests.
void SseSession::go_away() {
  set_end_reason("draining");
  end_response(false);
}

void SseSession::end_response(bool serve_next_request) {
  if (!open()) return;
  ending_ = true;
  release_subscriptions();
  send(make_frame(std::string(kLastChunk)));
  if (serve_next_request) {
    serve_next_request_after_flush();
  } else {
    close_after_flush();
  }
}

void SseSession::heartbeat() {
  if (open()) send(worker_.thump_frame());
}

}  // namespace sluice::gateway
