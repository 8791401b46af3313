// A client's first bytes: the request head (with any body), read the way the
// gateway reads it (RequestReader, fed in two pieces as from two reads), then
// every rule applied to a parsed request: routing, token sources, the upgrade
// test and the WebSocket handshake checks. Nothing may crash, a malformed request
// gets one of Node's three statuses, and an accepted handshake has a valid key.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <string_view>

#include "gateway/http_responses.hpp"
#include "gateway/http_session.hpp"
#include "gateway/query_string.hpp"
#include "gateway/request_reader.hpp"
#include "gateway/streams.hpp"
#include "gateway/websocket_protocol.hpp"

using namespace sluice;
using namespace sluice::gateway;

namespace {
std::string_view sv(boost::beast::string_view s) { return {s.data(), s.size()}; }

void feed(boost::beast::flat_buffer& buffer, std::string_view bytes) {
  if (bytes.empty()) return;
  auto space = buffer.prepare(bytes.size());
  std::memcpy(space.data(), bytes.data(), bytes.size());
  buffer.commit(bytes.size());
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  std::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  size_t split = data[0] % (input.size() + 1);

  RequestReader reader;
  boost::beast::flat_buffer buffer;
  feed(buffer, input.substr(0, split));
  auto progress = reader.consume(buffer);
  if (progress == RequestReader::Progress::need_more) {
    feed(buffer, input.substr(split));
    progress = reader.consume(buffer);
  }
  if (progress == RequestReader::Progress::malformed) {
    int status = reader.malformed_status();
    if (status != 400 && status != 413 && status != 431) std::abort();
    return 0;
  }
  if (progress != RequestReader::Progress::done) return 0;

  Request request = reader.release();
  auto [path, query_text] = split_target(sv(request.target()));
  Params query = parse_query(query_text);
  stream_name_for_path(path, query);
  token_from_request(request, query);
  if (is_upgrade_request(request) && !websocket_handshake_error(request)) {
    std::string_view key = sv(request[http::field::sec_websocket_key]);
    if (!is_valid_websocket_key(key)) std::abort();
    if (websocket_accept_key(key).size() != 28) std::abort();  // base64 of a SHA-1
    if (request.count(http::field::sec_websocket_protocol)) {
      first_subprotocol(sv(request[http::field::sec_websocket_protocol]));
    }
  }
  return 0;
}
