#include "gateway/http_session.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>

#include <boost/asio/write.hpp>
#include <cstring>
#include <boost/beast/http/read.hpp>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "gateway/websocket_protocol.hpp"
#include "gateway/access_log.hpp"
#include "gateway/admission.hpp"
#include "gateway/client_address.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/http_responses.hpp"
#include "gateway/sse_session.hpp"
#include "gateway/websocket_session.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {

namespace beast = boost::beast;

namespace {

// Boost 1.74's beast::iequals (and http::token_list::exists, which uses it) reads
// one byte past its inputs when they differ only in case: ASan caught it on
// "/API/V1/Streaming/Health". Hence a compare of our own.
bool ascii_iequals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  for (size_t i = 0; i < a.size(); ++i) {
    if (std::tolower(static_cast<unsigned char>(a[i])) != std::tolower(static_cast<unsigned char>(b[i]))) return false;
  }
  return true;
}

// Node's parser: Connection lists `token` among its comma-separated values.
bool header_lists_token(std::string_view value, std::string_view token) {
  bool listed = false;
  for_each_list_item(value, [&](std::string_view item) {
    listed = ascii_iequals(item, token);
    return !listed;
  });
  return listed;
}

// Express route matching for the unauthenticated routes: case-insensitive, one
// optional trailing slash (docs/protocol.md#unauthenticated-routes).
bool route_matches(std::string_view path, std::string_view route) {
  if (path.size() == route.size() + 1 && path.back() == '/') path.remove_suffix(1);
  return ascii_iequals(path, route);
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

// Every response this session writes is built here and starts "HTTP/1.1 NNN ".
int response_status(std::string_view response) {
  if (response.size() < 12) return 0;
  int status = 0;
  for (char c : response.substr(9, 3)) status = status * 10 + (c - '0');
  return status;
}

// The peer's IP address; none for a Unix socket peer (Express's req.ip is then undefined).
std::optional<asio::ip::address> peer_address(const Socket& socket) {
  boost::system::error_code ec;
  auto endpoint = socket.remote_endpoint(ec);
  if (ec) return std::nullopt;
  const auto* raw = endpoint.data();
  if (raw->sa_family == AF_INET) {
    const auto* v4 = reinterpret_cast<const sockaddr_in*>(raw);
    return asio::ip::address_v4(ntohl(v4->sin_addr.s_addr));
  }
  if (raw->sa_family == AF_INET6) {
    const auto* v6 = reinterpret_cast<const sockaddr_in6*>(raw);
    asio::ip::address_v6::bytes_type bytes;
    std::memcpy(bytes.data(), v6->sin6_addr.s6_addr, bytes.size());
    return asio::ip::address_v6(bytes);
  }
  return std::nullopt;
}

// A header as Node's http module gives it to the reference: repeated lines joined with
// ", " (the rule for every header not on its short list of single-valued ones: of those
// read here, only Authorization and Host are on it, and they keep their first line).
template <class Name>
std::string joined_header(const Request& request, Name name) {
  std::string joined;
  auto [first, end] = request.equal_range(name);
  for (auto line = first; line != end; ++line) {
    if (line != first) joined += ", ";  // after an empty line too, as Node appends
    joined += sv(line->value());
  }
  return joined;
}

// What node-postgres sends for an array of strings (its utils.js arrayString): each
// element in double quotes with `\` and `"` escaped, joined with commas, in braces.
std::string node_postgres_array_text(const Params& values) {
  std::string text = "{";
  for (const auto& value : values) {
    if (text.size() > 1) text += ',';
    text += '"';
    for (char c : value.is_string() ? value.get_ref<const std::string&>() : std::string()) {
      if (c == '\\' || c == '"') text += '\\';
      text += c;
    }
    text += '"';
  }
  return text + "}";
}

// ws's abortHandshake: a small text/html response, then the socket is destroyed.
std::string handshake_abort(int status, std::string_view message, std::string_view extra_header = {}) {
  std::string out = "HTTP/1.1 " + std::to_string(status) + " " + status_reason(status) + "\r\n";
  out += "Connection: close\r\nContent-Type: text/html\r\nContent-Length: " + std::to_string(message.size()) + "\r\n";
  out += extra_header;
  out += "\r\n";
  out += message;
  return out;
}

}  // namespace

std::optional<std::string> token_from_request(const Request& request, const Params& query) {
  std::string_view authorization = sv(request[http::field::authorization]);
  if (!authorization.empty()) {
    if (authorization.substr(0, 7) == "Bearer ") authorization.remove_prefix(7);
    return header_text(authorization);
  }
  if (auto access_token = query.find("access_token"); access_token != query.end()) {
    // A repeated parameter reaches the reference's query as an array, which
    // node-postgres sends as a PostgreSQL array literal: that text is the token looked up.
    if (access_token->is_array()) return node_postgres_array_text(*access_token);
    if (access_token->is_string() && !access_token->get_ref<const std::string&>().empty()) {
      return access_token->get<std::string>();
    }
  }
  const std::string protocol = joined_header(request, http::field::sec_websocket_protocol);
  if (!protocol.empty()) return header_text(protocol);
  return std::nullopt;
}

bool is_upgrade_request(const Request& request) {
  return !joined_header(request, http::field::upgrade).empty() &&
         header_lists_token(joined_header(request, http::field::connection), "upgrade");
}

std::optional<std::string> websocket_handshake_error(const Request& request) {
  // ws reads each header as Node joins it: a repeated one ("websocket, websocket") fails.
  if (request.method() != http::verb::get) return handshake_abort(405, "Invalid HTTP method");
  if (!ascii_iequals(joined_header(request, http::field::upgrade), "websocket")) {
    return handshake_abort(400, "Invalid Upgrade header");
  }
  if (!is_valid_websocket_key(joined_header(request, http::field::sec_websocket_key))) {
    return handshake_abort(400, "Missing or invalid Sec-WebSocket-Key header");
  }
  if (!is_supported_websocket_version(joined_header(request, http::field::sec_websocket_version))) {
    return handshake_abort(400, "Missing or invalid Sec-WebSocket-Version header", "Sec-WebSocket-Version: 13, 8\r\n");
  }
  if (request.count(http::field::sec_websocket_protocol) &&
      !first_subprotocol(joined_header(request, http::field::sec_websocket_protocol))) {
    return handshake_abort(400, "Invalid Sec-WebSocket-Protocol header");
  }
  return std::nullopt;
}

HttpSession::HttpSession(Worker& worker, Socket socket, ConnectionTicket ticket)
    : worker_(worker), socket_(std::move(socket)), ticket_(std::move(ticket)), timer_(worker.io()) {}

void HttpSession::start() { read_request(/*keep_alive_wait=*/false); }

void HttpSession::serve_next_request() { read_request(/*keep_alive_wait=*/true); }

void HttpSession::read_request(bool keep_alive_wait) {
  reader_.emplace();
  answered_ = false;
  // An idle keep-alive connection gets Node's 5 s; a request being sent, the request
  // timeout, from its first byte on (docs/protocol.md#http-server).
  // Idle until a request's first byte: empty lines before it do not count (the reader
  // skips them), so it is decided again once the reader has seen what is buffered.
  const auto& config = worker_.context().config;
  idle_ = keep_alive_wait;
  close_after(std::chrono::seconds(idle_ ? config.keep_alive_seconds : config.request_timeout_seconds));
  parse_buffered();
}

void HttpSession::close_after(std::chrono::seconds timeout) {
  timer_.expires_after(timeout);
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    // A handler already queued when the timer was set again finds the new deadline ahead.
    if (!ec && self->timer_.expiry() <= asio::steady_timer::clock_type::now()) {
      boost::system::error_code ignored;
      self->socket_.close(ignored);
    }
  });
}

// Reads by hand rather than with http::async_read so that RequestReader sees the raw
// header bytes before Beast, which accepts obsolete line folding, does.
void HttpSession::read_more() {
  constexpr size_t kReadSize = 4096;
  socket_.async_read_some(buffer_.prepare(kReadSize),
                          [self = shared_from_this()](const boost::system::error_code& ec, size_t n) {
                            if (ec) return self->on_request(ec == asio::error::eof ? http::error::end_of_stream : ec);
                            self->buffer_.commit(n);
                            self->parse_buffered();
                          });
}

void HttpSession::parse_buffered() {
  switch (reader_->consume(buffer_)) {
    case RequestReader::Progress::need_more:
      if (idle_ && reader_->begun()) {  // a request has begun: it has the request timeout
        idle_ = false;
        close_after(std::chrono::seconds(worker_.context().config.request_timeout_seconds));
      }
      return read_more();
    case RequestReader::Progress::done: return on_request({});
    case RequestReader::Progress::malformed: return on_request(reader_->error());
  }
}

void HttpSession::on_request(const boost::system::error_code& ec) {
  timer_.cancel();
  if (ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted || ec == asio::error::eof ||
        ec == asio::error::connection_reset || ec == asio::error::bad_descriptor) {
      return;  // the client left, or the timeout closed the socket
    }
    worker_.context().metrics.http_bad_requests->inc();
    int status = reader_->malformed_status();
    begin_record("", "");
    // Node answers malformed requests with a bare status line and closes.
    write_raw_and_close("HTTP/1.1 " + std::to_string(status) + " " + status_reason(status) +
                        "\r\nConnection: close\r\n\r\n");
    return;
  }
  request_ = reader_->release();
  reader_.reset();
  // Node hands CONNECT to a 'connect' listener, which the reference has none of: the
  // socket is closed with no answer (docs/protocol.md#malformed-requests).
  if (request_.method() == http::verb::connect) {
    boost::system::error_code ignored;
    socket_.close(ignored);
    return;
  }
  // A request may wait a while for its token lookup (under a token flood, thousands
  // do): keep only the bytes that came after it, not the read buffer's capacity.
  buffer_.shrink_to_fit();
  begin_record(sv(request_.method_string()), sv(request_.target()));
  route();
}

void HttpSession::begin_record(std::string_view method, std::string_view target) {
  const auto& context = worker_.context();
  record_.request_id = make_request_id();
  record_.method = std::string(method);
  record_.target = redact_target(target);
  record_.tenant.clear();
  record_.started = std::chrono::steady_clock::now();
  // Every X-Forwarded-For line, as Node joins them: a proxy that adds its own line after
  // the client's (HAProxy's `option forwardfor`) must be the one read from the right.
  const std::string forwarded = joined_header(request_, "X-Forwarded-For");
  auto peer = peer_address(socket_);
  record_.client_ip = peer ? client_address(*peer, forwarded, context.config.trusted_proxies) : std::string();
}

void HttpSession::route() {
  auto [path, query_text] = split_target(sv(request_.target()));
  const auto method = request_.method();
  if (is_upgrade_request(request_)) return handle_upgrade();
  // Node refuses an HTTP/1.1 request without Host before any route, upgrades excepted
  // (docs/protocol.md#malformed-requests).
  if (request_.version() == 11 && request_.count(http::field::host) == 0) {
    worker_.context().metrics.http_bad_requests->inc();
    return write_raw_and_close(missing_host_response(method == http::verb::head));
  }

  // docs/protocol.md#cors-and-options: CORS answers any OPTIONS before routing and without auth.
  if (method == http::verb::options) {
    const std::string requested = joined_header(request_, http::field::access_control_request_headers);
    return respond(cors_preflight_response(record_.request_id, requested, request_.keep_alive()), request_.keep_alive());
  }
  // docs/protocol.md#unauthenticated-routes: routes without authentication.
  if (method == http::verb::get || method == http::verb::head) {
    bool keep_alive = request_.keep_alive();
    if (route_matches(path, "/favicon.ico")) {
      return respond(plain_response(404, "", "", record_.request_id, keep_alive), keep_alive);
    }
    if (route_matches(path, "/api/v1/streaming/health")) {
      return respond(plain_response(200, "text/plain", "OK", record_.request_id, keep_alive, /*no_store=*/true),
                     keep_alive);
    }
    if (route_matches(path, "/metrics")) {
      return respond(plain_response(200, "text/plain; version=0.0.4; charset=utf-8",
                                    metrics::Registry::global().render(), record_.request_id, keep_alive, /*no_store=*/true),
                     keep_alive);
    }
  }
  if (!pick_tenant(/*websocket=*/false)) return;
  // docs/protocol.md#stream-authentication-middleware: the path must name a stream, for every method and path.
  Params query = parse_query(query_text);
  auto stream_name = stream_name_for_path(path, query);
  if (!stream_name) return respond_error(400, "Unknown channel requested");
  handle_stream_request(std::move(*stream_name), std::move(query));
}

void HttpSession::handle_stream_request(std::string stream_name, Params query) {
  auto token = token_from_request(request_, query);
  if (!token) return respond_error(401, "Missing access token");
  if (auto refusal = limit_refusal()) return refuse(*refusal, /*websocket=*/false);
  arm_handshake_deadline(/*websocket=*/false);
  auto self = shared_from_this();
  auto& io = worker_.io();
  worker_.context().authenticate(record_.tenant, *token, [self, &io, stream_name, query](TokenResult result) {
    asio::post(io, [self, stream_name, query, result = std::move(result)] {
      self->note_lookup(result);
      if (!self->awaiting_answer()) return;
      if (auto refusal = token_refusal(result)) return self->respond_error(*refusal);
      if (auto refusal = scope_refusal(stream_name, *result.info)) {
        return self->respond_error(*refusal);
      }
      // docs/protocol.md#sse-route-and-other-methods: only GET reaches the SSE route; Express answers the rest 404.
      if (self->request_.method() != http::verb::get) {
        std::string body = "Cannot " + std::string(sv(self->request_.method_string())) + " " +
                           std::string(split_target(sv(self->request_.target())).first);
        return self->respond(plain_response(404, "text/html; charset=utf-8", body, self->record_.request_id,
                                            self->request_.keep_alive()),
                             self->request_.keep_alive());
      }
      auto planned = plan_stream(stream_name, query, StreamRequester{result.info->account_id, result.info->scopes});
      if (auto* error = std::get_if<StreamError>(&planned)) return self->respond_error(*error);
      auto info = result.info;
      check_stream_access(self->worker_.context(), self->worker_.io(), info, std::move(std::get<StreamPlan>(planned)),
                          [self, info](std::variant<AdmittedStream, StreamError> checked) {
                            if (!self->awaiting_answer()) return;
                            if (auto* error = std::get_if<StreamError>(&checked)) {
                              return self->respond_error(*error);
                            }
                            self->open_event_stream(info, std::move(std::get<AdmittedStream>(checked)));
                          });
    });
  });
}

void HttpSession::open_event_stream(std::shared_ptr<const AuthInfo> auth, AdmittedStream admitted) {
  answered_ = true;
  timer_.cancel();
  auto subscription = std::make_unique<Subscription>();
  subscription->plan = std::move(admitted.plan);
  subscription->rules = std::move(admitted.rules);
  log_request(record_, 200, 0, subscription->plan.name);
  auto session = std::make_shared<SseSession>(worker_, std::move(socket_), ticket_, std::move(auth));
  session->keep_request_record(record_);
  session->start(record_.request_id, std::move(subscription), request_.keep_alive());
}

void HttpSession::handle_upgrade() {
  if (!pick_tenant(/*websocket=*/true)) return;
  auto [path, query_text] = split_target(sv(request_.target()));
  Params query = parse_query(query_text);
  auto token = token_from_request(request_, query);
  if (!token) return write_raw_and_close(websocket_rejection(401, "Missing access token", record_.request_id));
  if (auto refusal = limit_refusal()) return refuse(*refusal, /*websocket=*/true);
  arm_handshake_deadline(/*websocket=*/true);
  auto self = shared_from_this();
  auto& io = worker_.io();
  worker_.context().authenticate(record_.tenant, *token, [self, &io, query](TokenResult result) {
    asio::post(io, [self, query, result = std::move(result)] {
      self->note_lookup(result);
      if (!self->awaiting_answer()) return;
      if (auto refusal = token_refusal(result)) {
        std::string rejection = websocket_rejection(refusal->status, refusal->message, self->record_.request_id);
        if (refusal->retry_after_seconds) rejection = with_retry_after(std::move(rejection), refusal->retry_after_seconds);
        return self->write_raw_and_close(std::move(rejection));
      }
      if (auto refusal = websocket_handshake_error(self->request_)) return self->write_raw_and_close(*refusal);
      std::optional<std::string> protocol;
      if (self->request_.count(http::field::sec_websocket_protocol)) {
        protocol = first_subprotocol(joined_header(self->request_, http::field::sec_websocket_protocol));
      }
      std::string handshake = websocket_accept_response(
          websocket_accept_key(sv(self->request_[http::field::sec_websocket_key])),
          protocol ? std::optional<std::string_view>(*protocol) : std::nullopt, self->record_.request_id);
      std::string early(static_cast<const char*>(self->buffer_.data().data()), self->buffer_.size());
      log_request(self->record_, 101, handshake.size());
      self->answered_ = true;
      self->timer_.cancel();
      auto session = std::make_shared<WebSocketSession>(self->worker_, std::move(self->socket_), self->ticket_,
                                                          result.info);
      session->keep_request_record(self->record_);
      session->start(std::move(handshake), query, early);
    });
  });
}

bool HttpSession::pick_tenant(bool websocket) {
  auto& context = worker_.context();
  std::optional<std::string_view> host;
  if (request_.count(http::field::host)) host = sv(request_[http::field::host]);
  if (auto tenant = context.tenants.tenant_for(host)) {
    record_.tenant = std::move(*tenant);
    return true;
  }
  // docs/hosting.md#routing: no instance here, before any token is looked up.
  context.metrics.unknown_hosts->inc();
  constexpr std::string_view kMessage = "No Mastodon instance is served at this host";
  if (websocket) {
    write_raw_and_close(websocket_rejection(404, kMessage, record_.request_id));
  } else {
    respond_error(404, kMessage);
  }
  return false;
}

void HttpSession::respond_error(int status, std::string_view message) { respond_error(StreamError{status, std::string(message)}); }

void HttpSession::respond_error(const StreamError& error) {
  bool keep_alive = request_.keep_alive();
  std::string response = json_error_response(error.status, error.message, record_.request_id, keep_alive);
  if (error.retry_after_seconds) response = with_retry_after(std::move(response), error.retry_after_seconds);
  respond(std::move(response), keep_alive);
}

std::string HttpSession::limited_address() const {
  // A trusted proxy's own address is never limited: it carries everyone behind it.
  if (worker_.context().config.trusted_proxies.trusts(record_.client_ip)) return {};
  return record_.client_ip;
}

std::optional<Refusal> HttpSession::limit_refusal() {
  auto& context = worker_.context();
  if (!ticket_->within_connection_limit()) return Refusal::connections;
  std::string address = limited_address();
  if (!ticket_->claim_address(address)) return Refusal::address;
  // docs/protocol.md#auth-overload: a gateway waiting on this many lookups answers at
  // once instead of holding another connection (and its memory) in the pile.
  size_t pending_cap = context.config.max_pending_lookups;
  if (pending_cap != 0 && context.auth.calls_in_flight() >= pending_cap) return Refusal::pending_lookups;
  // Last: a reservation is made only for a lookup that is then sent.
  if (!context.auth_failures.reserve(address, context.now())) return Refusal::auth_failures;
  return std::nullopt;
}

void HttpSession::note_lookup(const TokenResult& result) {
  auto& context = worker_.context();
  if (result.status != LookupStatus::not_found) context.auth_failures.refund(limited_address());
  if (result.status == LookupStatus::busy) context.metrics.refused(Refusal::auth_busy).inc();
}

void HttpSession::refuse(Refusal refusal, bool websocket) {
  worker_.context().metrics.refused(refusal).inc();
  int status = refusal == Refusal::address || refusal == Refusal::auth_failures ? 429 : 503;
  const char* message = refusal == Refusal::address             ? "Too many connections from this address"
                        : refusal == Refusal::auth_failures     ? "Too many failed authentication attempts"
                        : refusal == Refusal::handshake_timeout ? "Timed out"
                        : refusal == Refusal::pending_lookups   ? "Service busy"
                                                                : "Too many connections";
  if (websocket) {
    return write_raw_and_close(with_retry_after(websocket_rejection(status, message, record_.request_id), kRetryAfterSeconds));
  }
  respond(with_retry_after(json_error_response(status, message, record_.request_id, /*keep_alive=*/false), kRetryAfterSeconds),
          /*keep_alive=*/false);
}

void HttpSession::arm_handshake_deadline(bool websocket) {
  timer_.expires_after(std::chrono::seconds(worker_.context().config.handshake_timeout_seconds));
  timer_.async_wait([self = shared_from_this(), websocket](const boost::system::error_code& ec) {
    if (ec || !self->awaiting_answer()) return;
    self->refuse(Refusal::handshake_timeout, websocket);
  });
}

void HttpSession::respond(std::string bytes, bool keep_alive) {
  // docs/protocol.md#head-requests: whatever answers a HEAD request sends its headers
  // alone (Content-Length still the body's), as Node does for any response to HEAD; a
  // body would be read as the start of the next response on a kept-alive connection.
  if (request_.method() == http::verb::head) {
    if (auto end = bytes.find("\r\n\r\n"); end != std::string::npos) bytes.resize(end + 4);
  }
  write_response(std::move(bytes), keep_alive);
}

void HttpSession::write_response(std::string bytes, bool keep_alive) {
  answered_ = true;
  log_request(record_, response_status(bytes), bytes.size());
  // A client that does not read its response must not hold the connection, and its
  // place under SLUICE_MAX_CONNECTIONS, for ever: the write gets the request timeout.
  close_after(std::chrono::seconds(worker_.context().config.request_timeout_seconds));
  auto data = std::make_shared<std::string>(std::move(bytes));
  asio::async_write(socket_, asio::buffer(*data),
                    [self = shared_from_this(), data, keep_alive](const boost::system::error_code& ec, size_t) {
                      if (!ec && keep_alive) return self->read_request(/*keep_alive_wait=*/true);
                      // The pending deadline holds the session (and its connection's
                      // ticket): let both go now, not when it would have fired.
                      self->timer_.cancel();
                      if (ec) return;
                      boost::system::error_code ignored;
                      self->socket_.shutdown(Socket::shutdown_both, ignored);
                      self->socket_.close(ignored);
                    });
}

void HttpSession::write_raw_and_close(std::string bytes) { write_response(std::move(bytes), /*keep_alive=*/false); }

}  // namespace sluice::gateway
