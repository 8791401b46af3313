#include "gateway/request_reader.hpp"

#include <algorithm>
#include <string_view>

#include "gateway/http_responses.hpp"

namespace sluice::gateway {

namespace {
constexpr size_t kHeaderLimit = 16 * 1024;  // Node's default maximum header size
constexpr size_t kBodyLimit = 64 * 1024;

// The methods Node's parser (llhttp) knows, as `http.METHODS` lists them; it refuses any
// other token, lowercase spellings included, where Beast would pass it on as `unknown`.
bool is_node_method(std::string_view method) {
  static constexpr std::string_view kMethods[] = {
      "ACL",       "BIND",      "CHECKOUT", "CONNECT", "COPY",    "DELETE",      "GET",
      "HEAD",      "LINK",      "LOCK",     "M-SEARCH", "MERGE",  "MKACTIVITY",  "MKCALENDAR",
      "MKCOL",     "MOVE",      "NOTIFY",   "OPTIONS", "PATCH",   "POST",        "PROPFIND",
      "PROPPATCH", "PURGE",     "PUT",      "QUERY",   "REBIND",  "REPORT",      "SEARCH",
      "SOURCE",    "SUBSCRIBE", "TRACE",    "UNBIND",  "UNLINK",  "UNLOCK",      "UNSUBSCRIBE"};
  for (std::string_view known : kMethods) {
    if (method == known) return true;
  }
  return false;
}

bool is_ascii(boost::beast::string_view text) {
  for (char c : text) {
    if (static_cast<unsigned char>(c) >= 0x80) return false;
  }
  return true;
}
}  // namespace

RequestReader::RequestReader() {
  parser_.emplace();
  parser_->header_limit(kHeaderLimit);
  parser_->body_limit(kBodyLimit);
}

RequestReader::Progress RequestReader::consume(boost::beast::flat_buffer& buffer) {
  for (;;) {
    auto bytes = buffer.data();
    std::string_view unparsed(static_cast<const char*>(bytes.data()), bytes.size());
    // Node's parser skips empty lines before the request line (RFC 9112 §2.2 asks servers
    // to, for clients that end a body with an extra CRLF); Beast refuses them.
    if (!parser_->got_some()) {
      const size_t blank = std::min(unparsed.find_first_not_of("\r\n"), unparsed.size());
      buffer.consume(blank);
      unparsed.remove_prefix(blank);
      bytes = buffer.data();
    }
    // Node's parser refuses a header continued on the next line (RFC 9112 §5.2 allows
    // that): docs/protocol.md#malformed-requests. Checked after the empty lines are gone:
    // it reads up to the first empty line.
    if (!parser_->is_header_done() && has_obsolete_line_folding(unparsed)) {
      error_ = http::error::bad_field;
      return Progress::malformed;
    }
    if (unparsed.empty()) return Progress::need_more;
    // Node's parser refuses an unknown method once it has read it, whatever follows: the
    // head need not be complete (a client that stops there is answered, not timed out,
    // and a long head after it is 400, not 431). Checked before Beast sees the bytes:
    // once the request line is complete it may consume that line alone.
    if (!method_read_) {
      const size_t space = unparsed.find(' ');
      if (space != std::string_view::npos) {
        if (!is_node_method(unparsed.substr(0, space))) {
          error_ = http::error::bad_method;
          return Progress::malformed;
        }
        method_read_ = true;
      }
    }
    boost::system::error_code ec;
    size_t used = parser_->put(bytes, ec);
    buffer.consume(used);
    // Node hands a CONNECT to its 'connect' listener as soon as its head is read, body or
    // not (docs/protocol.md#malformed-requests): a declared body is neither awaited nor
    // held against the body limit, which Beast weighs as it ends the head.
    const bool connect = parser_->get().method() == http::verb::connect;
    const bool head_read = parser_->is_header_done() || (connect && ec == http::error::body_limit);
    if (ec && ec != http::error::need_more && !(connect && head_read)) {
      error_ = ec;
      return Progress::malformed;
    }
    // Beast accepts bytes from 0x80 up in the request target; Node's parser answers
    // 400 (docs/protocol.md#malformed-requests).
    if (head_read && !is_ascii(parser_->get().target())) {
      error_ = http::error::bad_target;
      return Progress::malformed;
    }
    if (connect && head_read) return Progress::done;
    if (ec == http::error::need_more) return Progress::need_more;
    if (parser_->is_done()) return Progress::done;
    if (used == 0) return Progress::need_more;
  }
}

Request RequestReader::release() { return parser_->release(); }

int RequestReader::malformed_status() const {
  if (error_ == http::error::header_limit) return 431;
  if (error_ == http::error::body_limit) return 413;
  return 400;
}

std::string header_text(std::string_view raw) {
  std::string text;
  text.reserve(raw.size());
  for (char c : raw) {
    const auto byte = static_cast<unsigned char>(c);
    if (byte < 0x80) {
      text += c;
    } else {
      text += static_cast<char>(0xC0 | (byte >> 6));
      text += static_cast<char>(0x80 | (byte & 0x3F));
    }
  }
  return text;
}

}  // namespace sluice::gateway
