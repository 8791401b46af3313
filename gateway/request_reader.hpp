#pragma once
// Reads one HTTP request from bytes as they arrive, without I/O
// (docs/protocol.md#malformed-requests): the raw-head checks Node's parser makes and
// Beast does not, then Beast's parser with Node's limits. The HTTP session owns the
// socket and the buffer; this decides what the bytes are.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace sluice::gateway {

namespace http = boost::beast::http;
using Request = http::request<http::string_body>;

class RequestReader {
 public:
  enum class Progress { need_more, done, malformed };

  RequestReader();
  // Parses what `buffer` holds and consumes the bytes that belong to the request;
  // bytes after a complete request (pipelined data, early WebSocket frames) stay.
  Progress consume(boost::beast::flat_buffer& buffer);
  // After `done`: the request. Call once.
  Request release();
  // A request's first byte has been read (empty lines before it do not count): from
  // then on it has the request timeout, not the idle one.
  bool begun() const { return parser_->got_some(); }
  // After `malformed`: the status Node answers with (431, 413 or 400) and why.
  int malformed_status() const;
  boost::system::error_code error() const { return error_; }

 private:
  std::optional<http::request_parser<http::string_body>> parser_;
  boost::system::error_code error_;
  bool method_read_ = false;  // the request line's method has been checked
};

// A header value as Node hands it to JavaScript: each byte is one Latin-1 character,
// so bytes from 0x80 up become two-byte UTF-8 (docs/protocol.md#malformed-requests).
// Values that travel further (tokens in gRPC strings) must be valid UTF-8.
std::string header_text(std::string_view raw);

}  // namespace sluice::gateway
