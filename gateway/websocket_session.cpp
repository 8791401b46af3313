#include "gateway/websocket_session.hpp"

#include "common/js_json.hpp"
#include "common/log.hpp"
#include "gateway/admission.hpp"
#include "gateway/client_message.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {
namespace {

constexpr std::string_view kBinaryRefused = "The mastodon streaming server does not support binary messages";

}  // namespace

WebSocketSession::WebSocketSession(Worker& worker, Socket socket, ConnectionTicket ticket,
                                   std::shared_ptr<const AuthInfo> auth)
    : Client(worker, std::move(socket), std::move(ticket), ClientKind::websocket, std::move(auth)),
      parser_(worker.context().config.websocket_max_message),
      messages_(worker.context().config.websocket_max_messages_per_second) {}

void WebSocketSession::start(std::string handshake, const Params& query, std::string_view early_bytes) {
  worker_.add_client(shared_from_this());
  send(make_frame(std::move(handshake)));
  start_reading();
  std::string stream = first_string(query, "stream");
  if (!stream.empty()) submit(ClientRequest{true, stream, query});
  // Frames the client sent right behind its handshake request.
  if (!early_bytes.empty()) on_bytes(early_bytes.data(), early_bytes.size());
}

void WebSocketSession::on_bytes(const char* data, size_t size) {
  std::vector<WebSocketEvent> events;
  parser_.feed(data, size, events);
  for (auto& event : events) {
    if (!open()) return;
    switch (event.kind) {
      case WebSocketEvent::Kind::text:
        handle_message(event.data);
        break;
      case WebSocketEvent::Kind::binary:
        set_end_reason("binary message");
        close_with(websocket_close::unsupported_data, kBinaryRefused);
        break;
      case WebSocketEvent::Kind::ping:
        send(make_frame(encode_pong_frame(event.data)));
        break;
      case WebSocketEvent::Kind::pong:
        alive_ = true;
        break;
      case WebSocketEvent::Kind::close:
        // Answer with the client's code and reason, as node ws does; 1005 means none
        // was sent (docs/protocol.md#keep-alive-and-close).
        set_end_reason("client closed");
        ending_ = true;
        release_subscriptions();
        send(make_frame(event.code == websocket_close::no_status ? encode_close_frame()
                                                                 : encode_close_frame(event.code, event.data)));
        close_after_flush();
        break;
      case WebSocketEvent::Kind::protocol_error:
        worker_.context().metrics.websocket_protocol_errors->inc();
        log::debug("websocket protocol error", log::for_tenant(auth().tenant, {{"reason", event.data}}));
        set_end_reason("protocol error");
        close_with(event.code, {});
        break;
    }
  }
}

void WebSocketSession::close_with(uint16_t code, std::string_view reason) {
  if (!open()) return;
  ending_ = true;
  release_subscriptions();
  send(make_frame(encode_close_frame(code, reason)));
  close_after_flush();
}

void WebSocketSession::end_gracefully() {
  if (!open()) return;
  set_end_reason("killed");
  ending_ = true;
  release_subscriptions();
  send(make_frame(encode_close_frame()));  // docs/protocol.md#system-channels: no status code
  close_after_flush();
}

// docs/protocol.md#keep-alive-and-close: a socket that did not answer the previous ping is terminated.
void WebSocketSession::heartbeat() {
  if (!open()) return;
  if (!alive_) {
    set_end_reason("ping timeout");
    close_now();
    return;
  }
  alive_ = false;
  send(worker_.ping_frame());
}

void WebSocketSession::handle_message(std::string_view text) {
  // docs/protocol.md#admission-limits: beyond the rate, a message is answered with
  // an error and otherwise ignored.
  if (!messages_.take(worker_.context().now())) {
    worker_.context().metrics.refused(Refusal::messages).inc();
    return send_error("Too many messages", 429);
  }
  ClientMessage message = parse_client_message(text);
  if (message.ignored_because) log::debug(message.ignored_because, log::for_tenant(auth().tenant));  // docs/protocol.md#client-messages: logged, no reply
  if (message.request) submit(std::move(*message.request));
}

namespace {
// Requests queued behind one whose checks are still running, and the bytes they may
// hold (a tag can be as long as a message); a client sending more than this without
// waiting is not a Mastodon client.
constexpr size_t kMaxWaitingRequests = 1000;
constexpr size_t kMaxWaitingBytes = 1 << 20;
}  // namespace

void WebSocketSession::submit(ClientRequest request) {
  if (!request_running_) return run(std::move(request));
  const size_t bytes = request.bytes();
  if (waiting_requests_.size() >= kMaxWaitingRequests || waiting_bytes_ + bytes > kMaxWaitingBytes) {
    worker_.context().metrics.refused(Refusal::queued_requests).inc();
    log::debug("websocket subscription requests piling up; one dropped", log::for_tenant(auth().tenant));
    return;
  }
  waiting_bytes_ += bytes;
  waiting_requests_.push_back(std::move(request));
}

void WebSocketSession::run(ClientRequest request) {
  request_running_ = true;
  if (request.subscribe) subscribe(request.stream_name, request.params);
  else unsubscribe(request.stream_name, request.params);
}

void WebSocketSession::request_done() {
  request_running_ = false;
  if (waiting_requests_.empty() || !open()) return;
  ClientRequest next = std::move(waiting_requests_.front());
  waiting_requests_.erase(waiting_requests_.begin());
  waiting_bytes_ -= std::min(waiting_bytes_, next.bytes());
  if (waiting_requests_.empty()) waiting_requests_.shrink_to_fit();
  run(std::move(next));
}

void WebSocketSession::subscribe(const std::string& stream_name, const Params& params) {
  if (auto refusal = scope_refusal(stream_name, auth())) {
    send_error(refusal->message, refusal->status);
    return request_done();
  }
  auto planned = plan_stream(stream_name, params, StreamRequester{auth().account_id, auth().scopes});
  if (auto* error = std::get_if<StreamError>(&planned)) {
    send_error(error->message, error->status);
    return request_done();
  }
  auto self = std::static_pointer_cast<WebSocketSession>(shared_from_this());
  check_stream_access(worker_.context(), worker_.io(), auth_, std::move(std::get<StreamPlan>(planned)),
                      [self](std::variant<AdmittedStream, StreamError> checked) {
                        self->add_admitted(std::move(checked));
                        self->request_done();
                      });
}

void WebSocketSession::add_admitted(std::variant<AdmittedStream, StreamError> checked) {
  if (!open()) return;
  if (auto* error = std::get_if<StreamError>(&checked)) return send_error(error->message, error->status);
  auto& admitted = std::get<AdmittedStream>(checked);
  std::string key = admitted.plan.key();
  for (const auto& existing : subscriptions()) {
    if (existing->plan.key() == key) return;  // docs/protocol.md#subscribe: already subscribed
  }
  size_t cap = worker_.context().config.websocket_max_subscriptions;
  if (cap != 0 && subscriptions().size() >= cap) {  // docs/protocol.md#admission-limits
    worker_.context().metrics.refused(Refusal::subscriptions).inc();
    return send_error("Too many subscriptions", 429);
  }
  auto subscription = std::make_unique<Subscription>();
  subscription->plan = std::move(admitted.plan);
  subscription->rules = std::move(admitted.rules);
  add_subscription(std::move(subscription));
}

// docs/protocol.md#unsubscribe: the same checks as a subscribe (list ownership
// included); any failure is the one unsubscribe error.
void WebSocketSession::unsubscribe(const std::string& stream_name, const Params& params) {
  auto planned = plan_stream(stream_name, params, StreamRequester{auth().account_id, auth().scopes});
  if (std::holds_alternative<StreamError>(planned)) {
    send_error("Error unsubscribing from channel", std::nullopt);
    return request_done();
  }
  auto self = std::static_pointer_cast<WebSocketSession>(shared_from_this());
  check_stream_access(worker_.context(), worker_.io(), auth_, std::move(std::get<StreamPlan>(planned)),
                      [self](std::variant<AdmittedStream, StreamError> checked) {
                        self->remove_admitted(checked);
                        self->request_done();
                      });
}

void WebSocketSession::remove_admitted(const std::variant<AdmittedStream, StreamError>& checked) {
  if (!open()) return;
  if (std::holds_alternative<StreamError>(checked)) return send_error("Error unsubscribing from channel", std::nullopt);
  std::string key = std::get<AdmittedStream>(checked).plan.key();
  for (const auto& existing : subscriptions()) {
    if (existing->plan.key() == key) return remove_subscription(existing.get());
  }
}

void WebSocketSession::send_error(std::string_view message, std::optional<int> status) {
  if (!open() || !alive_) return;
  std::string body = "{\"error\":";
  append_js_string_literal(body, message);
  if (status) body += ",\"status\":" + std::to_string(*status);
  body += '}';
  send(make_frame(encode_text_frame(body)));
}

}  // namespace sluice::gateway
