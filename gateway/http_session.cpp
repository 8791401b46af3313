#include "gateway/http_session.hpp"

#include <boost/asio/write.hpp>
#include <boost/beast/http/read.hpp>

#include "common/log.hpp"
#include "common/metrics.hpp"
#include "gateway/websocket_protocol.hpp"
#include "gateway/admission.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/http_responses.hpp"
#include "gateway/sse_session.hpp"
#include "gateway/websocket_session.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {

namespace beast = boost::beast;

namespace {

constexpr size_t kHeaderLimit = 16 * 1024;  // Node's default maximum header size
constexpr size_t kBodyLimit = 64 * 1024;

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
  size_t pos = 0;
  while (pos <= value.size()) {
    size_t comma = value.find(',', pos);
    if (comma == std::string_view::npos) comma = value.size();
    std::string_view item = value.substr(pos, comma - pos);
    while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
    while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
    if (ascii_iequals(item, token)) return true;
    pos = comma + 1;
  }
  return false;
}

// Express route matching for the unauthenticated routes: case-insensitive, one
// optional trailing slash (docs/protocol.md#unauthenticated-routes).
bool route_matches(std::string_view path, std::string_view route) {
  if (path.size() == route.size() + 1 && path.back() == '/') path.remove_suffix(1);
  return ascii_iequals(path, route);
}

std::string_view sv(beast::string_view s) { return {s.data(), s.size()}; }

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
    return std::string(authorization);
  }
  std::string access_token = first_string(query, "access_token");
  if (!access_token.empty()) return access_token;
  std::string_view protocol = sv(request[http::field::sec_websocket_protocol]);
  if (!protocol.empty()) return std::string(protocol);
  return std::nullopt;
}

bool is_upgrade_request(const Request& request) {
  return !request[http::field::upgrade].empty() &&
         header_lists_token(sv(request[http::field::connection]), "upgrade");
}

std::optional<std::string> websocket_handshake_error(const Request& request) {
  if (request.method() != http::verb::get) return handshake_abort(405, "Invalid HTTP method");
  if (!ascii_iequals(sv(request[http::field::upgrade]), "websocket")) return handshake_abort(400, "Invalid Upgrade header");
  if (!is_valid_websocket_key(sv(request[http::field::sec_websocket_key]))) {
    return handshake_abort(400, "Missing or invalid Sec-WebSocket-Key header");
  }
  std::string_view version = sv(request[http::field::sec_websocket_version]);
  if (version != "13" && version != "8") {
    return handshake_abort(400, "Missing or invalid Sec-WebSocket-Version header", "Sec-WebSocket-Version: 13, 8\r\n");
  }
  if (request.count(http::field::sec_websocket_protocol) &&
      !first_subprotocol(sv(request[http::field::sec_websocket_protocol]))) {
    return handshake_abort(400, "Invalid Sec-WebSocket-Protocol header");
  }
  return std::nullopt;
}

HttpSession::HttpSession(Worker& worker, Socket socket)
    : worker_(worker), socket_(std::move(socket)), timer_(worker.io()) {}

void HttpSession::start() { read_request(/*keep_alive_wait=*/false); }

void HttpSession::serve_next_request() { read_request(/*keep_alive_wait=*/true); }

void HttpSession::read_request(bool keep_alive_wait) {
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(kBodyLimit);
  // An idle keep-alive connection gets Node's 5 s; a request being sent, the request timeout.
  const auto& config = worker_.context().config;
  timer_.expires_after(std::chrono::seconds(keep_alive_wait ? config.keep_alive_seconds : config.request_timeout_seconds));
  timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
    if (!ec) {
      boost::system::error_code ignored;
      self->socket_.close(ignored);
    }
  });
  parse_buffered();
}

// Reads and parses by hand rather than with http::async_read so that the raw header
// bytes can be checked before Beast, which accepts obsolete line folding, sees them.
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
  for (;;) {
    auto bytes = buffer_.data();
    std::string_view unparsed(static_cast<const char*>(bytes.data()), bytes.size());
    // Node's parser refuses a header continued on the next line (RFC 9112 §5.2
    // allows that): docs/protocol.md#malformed-requests.
    if (!parser_->is_header_done() && has_obsolete_line_folding(unparsed)) return on_request(http::error::bad_field);
    if (unparsed.empty()) return read_more();
    boost::system::error_code ec;
    size_t used = parser_->put(bytes, ec);
    buffer_.consume(used);
    if (ec == http::error::need_more) return read_more();
    if (ec) return on_request(ec);
    if (parser_->is_done()) return on_request({});
    if (used == 0) return read_more();
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
    int status = ec == http::error::header_limit ? 431 : ec == http::error::body_limit ? 413 : 400;
    // Node answers malformed requests with a bare status line and closes.
    write_raw_and_close("HTTP/1.1 " + std::to_string(status) + " " + status_reason(status) +
                        "\r\nConnection: close\r\n\r\n");
    return;
  }
  request_ = parser_->release();
  parser_.reset();
  request_id_ = make_request_id();
  route();
}

void HttpSession::route() {
  auto [path, query_text] = split_target(sv(request_.target()));
  const auto method = request_.method();
  if (is_upgrade_request(request_)) return handle_upgrade();
  // Node refuses an HTTP/1.1 request without Host before any route, upgrades excepted
  // (docs/protocol.md#malformed-requests).
  if (request_.version() == 11 && request_.count(http::field::host) == 0) {
    worker_.context().metrics.http_bad_requests->inc();
    return write_raw_and_close(missing_host_response());
  }

  // docs/protocol.md#cors-and-options: CORS answers any OPTIONS before routing and without auth.
  if (method == http::verb::options) {
    std::optional<std::string_view> requested;
    if (request_.count(http::field::access_control_request_headers)) {
      requested = sv(request_[http::field::access_control_request_headers]);
    }
    return respond(cors_preflight_response(request_id_, requested, request_.keep_alive()), request_.keep_alive());
  }
  // docs/protocol.md#unauthenticated-routes: routes without authentication.
  if (method == http::verb::get || method == http::verb::head) {
    bool head = method == http::verb::head;
    bool keep_alive = request_.keep_alive();
    if (route_matches(path, "/favicon.ico")) {
      return respond(plain_response(404, "", "", request_id_, keep_alive, head), keep_alive);
    }
    if (route_matches(path, "/api/v1/streaming/health")) {
      return respond(plain_response(200, "text/plain", "OK", request_id_, keep_alive, head, /*no_store=*/true),
                     keep_alive);
    }
    if (route_matches(path, "/metrics")) {
      return respond(plain_response(200, "text/plain; version=0.0.4; charset=utf-8",
                                    metrics::Registry::global().render(), request_id_, keep_alive, head, true),
                     keep_alive);
    }
  }
  // docs/protocol.md#stream-authentication-middleware: the path must name a stream, for every method and path.
  Params query = parse_query(query_text);
  auto stream_name = stream_name_for_path(path, query);
  if (!stream_name) return respond_error(400, "Unknown channel requested");
  handle_stream_request(std::move(*stream_name), std::move(query));
}

void HttpSession::handle_stream_request(std::string stream_name, Params query) {
  auto token = token_from_request(request_, query);
  if (!token) return respond_error(401, "Missing access token");
  auto self = shared_from_this();
  auto& io = worker_.io();
  worker_.context().authenticate(*token, [self, &io, stream_name, query](TokenResult result) {
    asio::post(io, [self, stream_name, query, result = std::move(result)] {
      if (auto refusal = token_refusal(result)) return self->respond_error(refusal->status, refusal->message);
      if (auto refusal = scope_refusal(stream_name, *result.info)) {
        return self->respond_error(refusal->status, refusal->message);
      }
      // docs/protocol.md#sse-route-and-other-methods: only GET reaches the SSE route; Express answers the rest 404.
      if (self->request_.method() != http::verb::get) {
        std::string body = "Cannot " + std::string(http::to_string(self->request_.method())) + " " +
                           std::string(split_target(sv(self->request_.target())).first);
        return self->respond(plain_response(404, "text/html; charset=utf-8", body, self->request_id_,
                                            self->request_.keep_alive()),
                             self->request_.keep_alive());
      }
      auto planned = plan_stream(stream_name, query, StreamRequester{result.info->account_id, result.info->scopes});
      if (auto* error = std::get_if<StreamError>(&planned)) return self->respond_error(error->status, error->message);
      auto info = result.info;
      check_stream_access(self->worker_.context(), self->worker_.io(), info, std::move(std::get<StreamPlan>(planned)),
                          [self, info](std::variant<AdmittedStream, StreamError> checked) {
                            if (auto* error = std::get_if<StreamError>(&checked)) {
                              return self->respond_error(error->status, error->message);
                            }
                            self->open_event_stream(info, std::move(std::get<AdmittedStream>(checked)));
                          });
    });
  });
}

void HttpSession::open_event_stream(std::shared_ptr<const AuthInfo> auth, AdmittedStream admitted) {
  auto subscription = std::make_unique<Subscription>();
  subscription->plan = std::move(admitted.plan);
  subscription->filter_local = admitted.filter_local;
  subscription->filter_remote = admitted.filter_remote;
  auto session = std::make_shared<SseSession>(worker_, std::move(socket_), std::move(auth));
  session->start(request_id_, std::move(subscription), request_.keep_alive());
}

void HttpSession::handle_upgrade() {
  auto [path, query_text] = split_target(sv(request_.target()));
  Params query = parse_query(query_text);
  auto token = token_from_request(request_, query);
  if (!token) return write_raw_and_close(websocket_rejection(401, "Missing access token", request_id_));
  auto self = shared_from_this();
  auto& io = worker_.io();
  worker_.context().authenticate(*token, [self, &io, query](TokenResult result) {
    asio::post(io, [self, query, result = std::move(result)] {
      if (auto refusal = token_refusal(result)) {
        return self->write_raw_and_close(websocket_rejection(refusal->status, refusal->message, self->request_id_));
      }
      if (auto refusal = websocket_handshake_error(self->request_)) return self->write_raw_and_close(*refusal);
      std::optional<std::string> protocol;
      if (self->request_.count(http::field::sec_websocket_protocol)) {
        protocol = first_subprotocol(sv(self->request_[http::field::sec_websocket_protocol]));
      }
      std::string handshake = websocket_accept_response(
          websocket_accept_key(sv(self->request_[http::field::sec_websocket_key])),
          protocol ? std::optional<std::string_view>(*protocol) : std::nullopt, self->request_id_);
      std::string early(static_cast<const char*>(self->buffer_.data().data()), self->buffer_.size());
      auto session = std::make_shared<WebSocketSession>(self->worker_, std::move(self->socket_), result.info);
      session->start(std::move(handshake), query, early);
    });
  });
}

void HttpSession::respond_error(int status, std::string_view message) {
  bool keep_alive = request_.keep_alive();
  respond(json_error_response(status, message, request_id_, keep_alive), keep_alive);
}

void HttpSession::respond(std::string bytes, bool keep_alive) {
  auto data = std::make_shared<std::string>(std::move(bytes));
  asio::async_write(socket_, asio::buffer(*data),
                    [self = shared_from_this(), data, keep_alive](const boost::system::error_code& ec, size_t) {
                      if (ec) return;
                      if (keep_alive) return self->read_request(/*keep_alive_wait=*/true);
                      boost::system::error_code ignored;
                      self->socket_.shutdown(Socket::shutdown_both, ignored);
                      self->socket_.close(ignored);
                    });
}

void HttpSession::write_raw_and_close(std::string bytes) { respond(std::move(bytes), /*keep_alive=*/false); }

}  // namespace sluice::gateway
