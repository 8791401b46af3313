#include "common/admin_http.hpp"

#include <boost/asio.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <thread>

#include "common/config_error.hpp"
#include "common/log.hpp"
#include "common/metrics.hpp"
#include "common/thread_name.hpp"

namespace sluice {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using tcp = asio::ip::tcp;

std::pair<std::string, int> split_host_port(const std::string& text, const std::string& variable) {
  auto fail = [&] {
    return ConfigError("Invalid " + variable + " environment variable: expected host:port, got '" + text + "'");
  };
  std::string host;
  std::string port_text;
  if (!text.empty() && text.front() == '[') {
    auto close = text.find(']');
    if (close == std::string::npos || close + 1 >= text.size() || text[close + 1] != ':') throw fail();
    host = text.substr(1, close - 1);
    port_text = text.substr(close + 2);
  } else {
    auto colon = text.rfind(':');
    if (colon == std::string::npos) throw fail();
    host = text.substr(0, colon);
    port_text = text.substr(colon + 1);
  }
  if (port_text.empty() || port_text.size() > 5) throw fail();
  int port = 0;
  for (char c : port_text) {
    if (c < '0' || c > '9') throw fail();
    port = port * 10 + (c - '0');
  }
  if (port > 65535) throw fail();
  if (host.empty()) host = "0.0.0.0";
  return {host, port};
}

struct AdminHttpServer::Impl {
  std::string listen;
  std::function<bool()> ready;
  Limits limits;
  // Before io: handlers still queued when io goes count themselves out on destruction.
  size_t open_connections = 0;
  asio::io_context io{1};
  tcp::acceptor acceptor{io};
  // After a failed accept (out of file descriptors, say): a pause, not a spin.
  asio::steady_timer accept_pause{io};
  std::thread thread;
  int bound_port = 0;

  void accept() {
    acceptor.async_accept([this](beast::error_code ec, tcp::socket socket) {
      if (ec == asio::error::operation_aborted) return;
      if (ec) {
        accept_pause.expires_after(std::chrono::milliseconds(100));
        accept_pause.async_wait([this](beast::error_code wait_ec) {
          if (!wait_ec) accept();
        });
        return;
      }
      if (open_connections < limits.max_connections) serve(std::make_shared<beast::tcp_stream>(std::move(socket)));
      accept();  // a connection past the limit is closed as `socket` goes
    });
  }

  // One request per connection: probes and scrapers do not need keep-alive.
  void serve(std::shared_ptr<beast::tcp_stream> stream) {
    ++open_connections;
    // Counted until the last handler lets the stream go.
    std::shared_ptr<void> counted(nullptr, [this](void*) { --open_connections; });
    stream->expires_after(limits.exchange_timeout);
    auto buffer = std::make_shared<beast::flat_buffer>(8192);
    auto request = std::make_shared<http::request<http::empty_body>>();
    http::async_read(*stream, *buffer, *request,
                     [this, stream, buffer, request, counted](beast::error_code ec, std::size_t) {
                       if (ec) return;
                       auto response = std::make_shared<http::response<http::string_body>>(respond(*request));
                       http::async_write(*stream, *response,
                                         [stream, response, counted](beast::error_code, std::size_t) {
                                           beast::error_code ignored;
                                           stream->socket().shutdown(tcp::socket::shutdown_both, ignored);
                                         });
                     });
  }

  http::response<http::string_body> respond(const http::request<http::empty_body>& request) {
    http::response<http::string_body> response;
    response.version(11);
    response.keep_alive(false);
    response.set(http::field::cache_control, "private, no-store");
    std::string_view target(request.target().data(), request.target().size());
    if (auto q = target.find('?'); q != std::string_view::npos) target = target.substr(0, q);
    if (request.method() != http::verb::get && request.method() != http::verb::head) {
      response.result(http::status::method_not_allowed);
    } else if (target == "/metrics") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain; version=0.0.4; charset=utf-8");
      response.body() = metrics::Registry::global().render();
    } else if (target == "/healthz") {
      response.result(http::status::ok);
      response.set(http::field::content_type, "text/plain");
      response.body() = "OK";
    } else if (target == "/readyz") {
      bool is_ready = !ready || ready();
      response.result(is_ready ? http::status::ok : http::status::service_unavailable);
      response.set(http::field::content_type, "text/plain");
      response.body() = is_ready ? "OK" : "NOT READY";
    } else {
      response.result(http::status::not_found);
    }
    response.prepare_payload();
    return response;
  }
};

AdminHttpServer::AdminHttpServer(std::string listen, std::function<bool()> ready, Limits limits)
    : impl_(std::make_unique<Impl>()) {
  impl_->listen = std::move(listen);
  impl_->ready = std::move(ready);
  impl_->limits = limits;
}

AdminHttpServer::~AdminHttpServer() { stop(); }

void AdminHttpServer::start() {
  if (impl_->listen.empty()) return;
  auto [host, port] = split_host_port(impl_->listen, "admin listen address");
  beast::error_code ec;
  auto address = asio::ip::make_address(host, ec);
  if (ec) throw ConfigError("Invalid admin listen address: " + impl_->listen);
  tcp::endpoint endpoint(address, static_cast<unsigned short>(port));
  impl_->acceptor.open(endpoint.protocol(), ec);
  if (!ec) impl_->acceptor.set_option(asio::socket_base::reuse_address(true), ec);
  if (!ec) impl_->acceptor.bind(endpoint, ec);
  if (!ec) impl_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) throw ConfigError("Cannot listen on " + impl_->listen + ": " + ec.message());
  impl_->bound_port = impl_->acceptor.local_endpoint().port();
  impl_->accept();
  impl_->thread = std::thread([this] {
    name_this_thread("admin-http");
    impl_->io.run();
  });
  log::info("admin HTTP listening", {{"address", impl_->listen}});
}

void AdminHttpServer::stop() {
  if (!impl_ || !impl_->thread.joinable()) return;
  asio::post(impl_->io, [this] {
    beast::error_code ignored;
    impl_->acceptor.close(ignored);
  });
  impl_->io.stop();
  impl_->thread.join();
}

int AdminHttpServer::port() const { return impl_->bound_port; }

}  // namespace sluice
