// Exact response bytes and request rules of docs/protocol.md#http-surface,
// docs/protocol.md#token-sources and docs/protocol.md#server-sent-events.
#include <gtest/gtest.h>

#include <cstring>
#include <regex>

#include "gateway/http_responses.hpp"
#include "gateway/http_session.hpp"

namespace sluice::gateway {
namespace {

std::string head_of(const std::string& response) { return response.substr(0, response.find("\r\n\r\n") + 4); }
std::string body_of(const std::string& response) { return response.substr(response.find("\r\n\r\n") + 4); }

TEST(Responses, JsonErrorIsCompactWithJsonContentType) {
  auto response = json_error_response(401, "Missing access token", "rid", true);
  EXPECT_EQ(response.rfind("HTTP/1.1 401 Unauthorized\r\n", 0), 0u);
  EXPECT_NE(head_of(response).find("Content-Type: application/json\r\n"), std::string::npos);
  EXPECT_NE(head_of(response).find("X-Request-Id: rid\r\n"), std::string::npos);
  EXPECT_NE(head_of(response).find("Access-Control-Allow-Origin: *\r\n"), std::string::npos);
  EXPECT_EQ(body_of(response), R"({"error":"Missing access token"})");
}

TEST(Responses, CorsPreflightEchoesRequestedHeaders) {
  auto response = cors_preflight_response("rid", "authorization", true);
  EXPECT_EQ(response.rfind("HTTP/1.1 204 No Content\r\n", 0), 0u);
  EXPECT_NE(response.find("Access-Control-Allow-Methods: GET,HEAD,PUT,PATCH,POST,DELETE\r\n"), std::string::npos);
  EXPECT_NE(response.find("Vary: Access-Control-Request-Headers\r\n"), std::string::npos);
  EXPECT_NE(response.find("Access-Control-Allow-Headers: authorization\r\n"), std::string::npos);
  EXPECT_NE(response.find("Content-Length: 0\r\n"), std::string::npos);
  EXPECT_EQ(body_of(response), "");
  // As the `cors` package: Vary always (the answer depends on the request's headers),
  // Access-Control-Allow-Headers only with something to allow.
  auto bare = cors_preflight_response("rid", "", true);
  EXPECT_EQ(bare.find("Access-Control-Allow-Headers"), std::string::npos);
  EXPECT_NE(bare.find("Vary: Access-Control-Request-Headers\r\n"), std::string::npos);
}

TEST(Responses, WebSocketRejectionIsTheRawReferenceShape) {
  EXPECT_EQ(websocket_rejection(401, "Invalid access token", "rid"),
            "HTTP/1.1 401 Unauthorized\r\nConnection: close\r\nContent-Type: text/plain\r\nContent-Length: 0\r\n"
            "X-Request-Id: rid\r\nX-Error-Message: Invalid access token\r\n\r\n");
  EXPECT_EQ(websocket_rejection(500, "An unexpected error occurred", "r").rfind(
                "HTTP/1.1 500 Internal Server Error\r\n", 0),
            0u);
}

TEST(Responses, WebSocketAcceptEchoesSubprotocol) {
  auto response = websocket_accept_response("s3pPLMBiTxaQ9kYGzzhZRbK+xOo=", std::string_view("tok"), "rid");
  EXPECT_EQ(response,
            "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Accept: s3pPLMBiTxaQ9kYGzzhZRbK+xOo=\r\nSec-WebSocket-Protocol: tok\r\n"
            "X-Request-Id: rid\r\n\r\n");
  EXPECT_EQ(websocket_accept_response("k", std::nullopt, "rid").find("Sec-WebSocket-Protocol"), std::string::npos);
}

TEST(Responses, SseHeadThenSmileChunk) {
  auto head = sse_response_head("rid");
  EXPECT_EQ(head.rfind("HTTP/1.1 200 OK\r\n", 0), 0u);
  EXPECT_NE(head.find("Content-Type: text/event-stream\r\n"), std::string::npos);
  EXPECT_NE(head.find("Cache-Control: private, no-store\r\n"), std::string::npos);
  EXPECT_NE(head.find("Transfer-Encoding: chunked\r\n"), std::string::npos);
  EXPECT_EQ(body_of(head), "3\r\n:)\n\r\n");
}

TEST(Responses, SseEventChunk) {
  EXPECT_EQ(sse_event_chunk("delete", "109"), "19\r\nevent: delete\ndata: 109\n\n\r\n");
  EXPECT_EQ(chunk(":thump\n\n"), "8\r\n:thump\n\n\r\n");
}

TEST(Responses, RequestIdsAreUuidV4) {
  std::regex uuid("^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$");
  auto a = make_request_id(), b = make_request_id();
  EXPECT_TRUE(std::regex_match(a, uuid)) << a;
  EXPECT_NE(a, b);
}

TEST(Subprotocol, FirstTokenOrNothingWhenMalformed) {
  EXPECT_EQ(first_subprotocol("abc"), "abc");
  EXPECT_EQ(first_subprotocol("abc, def"), "abc");
  EXPECT_FALSE(first_subprotocol("abc,,def"));
  EXPECT_FALSE(first_subprotocol("a b"));
  EXPECT_FALSE(first_subprotocol(""));
  // node ws refuses a subprotocol named twice (400 Invalid Sec-WebSocket-Protocol header).
  EXPECT_FALSE(first_subprotocol("abc, def, abc"));
  EXPECT_FALSE(first_subprotocol("a,a"));
  EXPECT_EQ(first_subprotocol("a, A"), "a") << "names are compared as they are";
}

Request make_request(std::initializer_list<std::pair<http::field, std::string>> headers,
                     std::string target = "/api/v1/streaming/user") {
  Request request{http::verb::get, target, 11};
  for (const auto& [field, value] : headers) request.set(field, value);
  return request;
}

TEST(TokenSource, HeaderThenQueryThenSubprotocol) {
  Params query = parse_query("access_token=fromquery");
  EXPECT_EQ(token_from_request(make_request({{http::field::authorization, "Bearer abc"}}), query), "abc");
  EXPECT_EQ(token_from_request(make_request({{http::field::authorization, "bearer abc"}}), query), "bearer abc");
  // Header values lose trailing whitespace (as in Node), so "Bearer " is looked up as "Bearer".
  EXPECT_EQ(token_from_request(make_request({{http::field::authorization, "Bearer "}}), query), "Bearer");
  EXPECT_EQ(token_from_request(make_request({}), query), "fromquery");
  EXPECT_EQ(token_from_request(make_request({{http::field::sec_websocket_protocol, "proto"}}), parse_query("")),
            "proto");
  EXPECT_EQ(token_from_request(make_request({{http::field::sec_websocket_protocol, "proto"}}), query), "fromquery");
  EXPECT_FALSE(token_from_request(make_request({}), parse_query("access_token=")));
  // Repeated lines reach the reference joined, as Node joins them.
  auto two_lines = make_request({});
  two_lines.insert(http::field::sec_websocket_protocol, "first");
  two_lines.insert(http::field::sec_websocket_protocol, "second");
  EXPECT_EQ(token_from_request(two_lines, parse_query("")), "first, second");
  // A repeated access_token is an array to the reference, which node-postgres sends as
  // a PostgreSQL array literal: that text is looked up (and found by no token).
  EXPECT_EQ(token_from_request(make_request({}), parse_query("access_token=a&access_token=b")), R"({"a","b"})");
  EXPECT_EQ(token_from_request(make_request({}), parse_query("access_token=&access_token=")), R"({"",""})");
  EXPECT_EQ(token_from_request(make_request({}), parse_query("access_token=a%22b&access_token=c%5Cd")),
            R"({"a\"b","c\\d"})");
  EXPECT_EQ(token_from_request(make_request({{http::field::authorization, "Bearer abc"}}),
                               parse_query("access_token=a&access_token=b")),
            "abc");
}

// Node joins repeated header lines with ", " (all but a short list, not these): the
// reference's checks see the joined value.
TEST(UpgradeRequest, RepeatedLinesAreReadJoinedAsNodeJoinsThem) {
  auto split_connection = make_request({{http::field::upgrade, "websocket"}});
  split_connection.insert(http::field::connection, "keep-alive");
  split_connection.insert(http::field::connection, "Upgrade");
  EXPECT_TRUE(is_upgrade_request(split_connection)) << "llhttp flags an upgrade whichever Connection line says so";

  auto handshake = [](http::field twice, const std::string& value) {
    auto request = make_request({{http::field::upgrade, "websocket"},
                                 {http::field::connection, "Upgrade"},
                                 {http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ=="},
                                 {http::field::sec_websocket_version, "13"}});
    request.insert(twice, value);
    return websocket_handshake_error(request).value_or("");
  };
  EXPECT_NE(handshake(http::field::upgrade, "websocket").find("Invalid Upgrade header"), std::string::npos);
  EXPECT_NE(handshake(http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ==").find("Sec-WebSocket-Key"),
            std::string::npos);
  EXPECT_NE(handshake(http::field::sec_websocket_version, "13").find("Sec-WebSocket-Version"), std::string::npos);
  auto single = make_request({{http::field::upgrade, "websocket"},
                              {http::field::connection, "Upgrade"},
                              {http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ=="},
                              {http::field::sec_websocket_version, "13"}});
  EXPECT_FALSE(websocket_handshake_error(single)) << "the control: one line each is a handshake";
}

// Node 20 hands `Authorization: Bearer \xF3\xC3\xA9` to JavaScript as "Bearer óÃ©".
TEST(TokenSource, HeaderBytesAreLatin1CharactersAsInNode) {
  EXPECT_EQ(token_from_request(make_request({{http::field::authorization, "Bearer \xF3\xC3\xA9"}}), parse_query("")),
            "\xC3\xB3\xC3\x83\xC2\xA9");
  EXPECT_EQ(token_from_request(make_request({{http::field::sec_websocket_protocol, "\xFF"}}), parse_query("")),
            "\xC3\xBF");
  EXPECT_EQ(header_text("plain"), "plain");
}

// The one reader of list headers (Connection, Sec-WebSocket-Protocol): items split on
// commas, spaces and tabs around each dropped, empty items kept, stopped on request.
TEST(ListHeader, ItemsAreTrimmedEmptyOnesKeptAndTheCallerCanStop) {
  std::vector<std::string> seen;
  for_each_list_item(" a ,\tb\t,,c, ", [&](std::string_view item) {
    seen.emplace_back(item);
    return true;
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"a", "b", "", "c", ""}));
  seen.clear();
  for_each_list_item("", [&](std::string_view item) {
    seen.emplace_back(item);
    return true;
  });
  EXPECT_EQ(seen, std::vector<std::string>{""});
  seen.clear();
  for_each_list_item("x, stop, y", [&](std::string_view item) {
    seen.emplace_back(item);
    return item != "stop";
  });
  EXPECT_EQ(seen, (std::vector<std::string>{"x", "stop"}));
}

TEST(Upgrade, NeedsConnectionUpgradeAndUpgradeHeader) {
  EXPECT_TRUE(is_upgrade_request(
      make_request({{http::field::connection, "keep-alive, Upgrade"}, {http::field::upgrade, "websocket"}})));
  EXPECT_TRUE(is_upgrade_request(
      make_request({{http::field::connection, "keep-alive,\tUPGRADE\t,"}, {http::field::upgrade, "websocket"}})));
  EXPECT_FALSE(is_upgrade_request(
      make_request({{http::field::connection, "keep-alive, Upgrade-ish"}, {http::field::upgrade, "websocket"}})));
  EXPECT_FALSE(is_upgrade_request(make_request({{http::field::upgrade, "websocket"}})));
  EXPECT_FALSE(is_upgrade_request(make_request({{http::field::connection, "upgrade"}})));
}

TEST(Upgrade, HandshakeChecksOfNodeWs) {
  auto good = make_request({{http::field::connection, "Upgrade"},
                            {http::field::upgrade, "websocket"},
                            {http::field::sec_websocket_key, "dGhlIHNhbXBsZSBub25jZQ=="},
                            {http::field::sec_websocket_version, "13"}});
  EXPECT_FALSE(websocket_handshake_error(good));
  auto bad_key = good;
  bad_key.set(http::field::sec_websocket_key, "short");
  EXPECT_NE(websocket_handshake_error(bad_key)->find("Missing or invalid Sec-WebSocket-Key header"),
            std::string::npos);
  auto bad_version = good;
  bad_version.set(http::field::sec_websocket_version, "12");
  auto refusal = *websocket_handshake_error(bad_version);
  EXPECT_NE(refusal.find("Sec-WebSocket-Version: 13, 8"), std::string::npos);
  auto bad_protocol = good;
  bad_protocol.set(http::field::sec_websocket_protocol, "a,,b");
  EXPECT_NE(websocket_handshake_error(bad_protocol)->find("Invalid Sec-WebSocket-Protocol header"),
            std::string::npos);
  auto post = good;
  post.method(http::verb::post);
  EXPECT_EQ(websocket_handshake_error(post)->rfind("HTTP/1.1 405", 0), 0u);
  // Node joins repeated header lines with ", " before ws reads them: the same name on
  // two lines is named twice.
  auto repeated_lines = good;
  repeated_lines.insert(http::field::sec_websocket_protocol, "a");
  repeated_lines.insert(http::field::sec_websocket_protocol, "a");
  ASSERT_TRUE(websocket_handshake_error(repeated_lines));
  EXPECT_NE(websocket_handshake_error(repeated_lines)->find("Invalid Sec-WebSocket-Protocol header"), std::string::npos);
  // An empty first line still gets its separator: ", b" has an empty name.
  auto empty_first = good;
  empty_first.insert(http::field::sec_websocket_protocol, "");
  empty_first.insert(http::field::sec_websocket_protocol, "b");
  ASSERT_TRUE(websocket_handshake_error(empty_first));
  auto two_names = good;
  two_names.insert(http::field::sec_websocket_protocol, "a");
  two_names.insert(http::field::sec_websocket_protocol, "b");
  EXPECT_FALSE(websocket_handshake_error(two_names));
}

}  // namespace
}  // namespace sluice::gateway

namespace sluice::gateway {
namespace {

TEST(Strictness, ObsoleteLineFoldingIsFoundInTheHeadOnly) {
  EXPECT_FALSE(has_obsolete_line_folding("GET / HTTP/1.1\r\nHost: x\r\n\r\n"));
  EXPECT_TRUE(has_obsolete_line_folding("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n c\r\n\r\n"));
  EXPECT_TRUE(has_obsolete_line_folding("GET / HTTP/1.1\r\nHost: x\r\nA: b\r\n\tc"));
  // Incomplete heads are checked as far as they go.
  EXPECT_FALSE(has_obsolete_line_folding("GET / HTTP/1.1\r\nHost: x\r\n"));
  // A body that starts with a space is not a fold.
  EXPECT_FALSE(has_obsolete_line_folding("POST / HTTP/1.1\r\nContent-Length: 3\r\n\r\n ab"));
  EXPECT_FALSE(has_obsolete_line_folding(""));
}

TEST(Strictness, AbsoluteFormTargetsAreServedLikeTheirPath) {
  EXPECT_EQ(origin_form("/api/v1/streaming?x=1"), "/api/v1/streaming?x=1");
  EXPECT_EQ(origin_form("http://host/api/v1/streaming/health"), "/api/v1/streaming/health");
  EXPECT_EQ(origin_form("https://host:443/a?b=c"), "/a?b=c");
  EXPECT_EQ(origin_form("http://host"), "/");
  EXPECT_EQ(origin_form("http://host?x=1"), "?x=1");
  EXPECT_EQ(origin_form("*"), "*");
  EXPECT_EQ(origin_form("://nope"), "://nope");
  EXPECT_EQ(origin_form("bad scheme://host/x"), "bad scheme://host/x");
  auto [path, query] = split_target("http://h/api/v1/streaming/public?only_media=1");
  EXPECT_EQ(path, "/api/v1/streaming/public");
  EXPECT_EQ(query, "only_media=1");
}

RequestReader::Progress read_all(RequestReader& reader, std::string_view bytes) {
  boost::beast::flat_buffer buffer;
  auto room = buffer.prepare(bytes.size());
  std::memcpy(room.data(), bytes.data(), bytes.size());
  buffer.commit(bytes.size());
  return reader.consume(buffer);
}

// Node 20 answers `GET /x?tag=\xF3 HTTP/1.1` with 400 Bad Request; Beast alone would accept it.
TEST(Strictness, RawNonAsciiTargetIsMalformed) {
  RequestReader refused;
  EXPECT_EQ(read_all(refused, "GET /api/v1/streaming/hashtag?tag=caf\xC3\xA9 HTTP/1.1\r\nHost: x\r\n\r\n"),
            RequestReader::Progress::malformed);
  EXPECT_EQ(refused.malformed_status(), 400);
  RequestReader escaped;
  EXPECT_EQ(read_all(escaped, "GET /api/v1/streaming/hashtag?tag=caf%C3%A9 HTTP/1.1\r\nHost: x\r\n\r\n"),
            RequestReader::Progress::done);
  // Header values may hold such bytes (Node reads them as Latin-1).
  RequestReader header;
  EXPECT_EQ(read_all(header, "GET /x HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer \xF3\r\n\r\n"),
            RequestReader::Progress::done);
}

// Node 20 and 24 answer `FOO /x`, `get /x` and `PRI /x` with 400 Bad Request; Beast alone
// reads each as the method `unknown`. `QUERY`, `SOURCE` and `M-SEARCH` are Node's.
TEST(Strictness, MethodsNodeDoesNotKnowAreMalformed) {
  for (const char* method : {"FOO", "get", "Get", "PRI", "GETS", "M-SEARCHX", "QUER"}) {
    RequestReader reader;
    EXPECT_EQ(read_all(reader, std::string(method) + " /x HTTP/1.1\r\nHost: x\r\n\r\n"),
              RequestReader::Progress::malformed)
        << method;
    EXPECT_EQ(reader.malformed_status(), 400) << method;
  }
  for (const char* method : {"GET", "HEAD", "OPTIONS", "POST", "QUERY", "SOURCE", "M-SEARCH", "UNSUBSCRIBE", "ACL"}) {
    RequestReader reader;
    EXPECT_EQ(read_all(reader, std::string(method) + " /x HTTP/1.1\r\nHost: x\r\n\r\n"),
              RequestReader::Progress::done)
        << method;
  }
}

// Node refuses the method as soon as it has read it: a head that stops there is answered
// (not timed out), and a long head after it is 400, not 431.
TEST(Strictness, AnUnknownMethodIsRefusedBeforeTheHeadEnds) {
  RequestReader stopped;
  EXPECT_EQ(read_all(stopped, "FOO /x HTTP/1.1\r\n"), RequestReader::Progress::malformed);
  EXPECT_EQ(stopped.malformed_status(), 400);
  RequestReader long_head;
  EXPECT_EQ(read_all(long_head, "get /x HTTP/1.1\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n"),
            RequestReader::Progress::malformed);
  EXPECT_EQ(long_head.malformed_status(), 400);
  RequestReader known;
  EXPECT_EQ(read_all(known, "GET /x HTTP/1.1\r\n"), RequestReader::Progress::need_more);
  RequestReader too_soon;
  EXPECT_EQ(read_all(too_soon, "FOO"), RequestReader::Progress::need_more) << "no method is read before its space";
  // A known method in a head that comes in pieces: Beast may consume the request line
  // before the head ends, and what follows is no method to check.
  RequestReader pieces;
  boost::beast::flat_buffer buffer;
  const std::string head = "GET /x HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(20000, 'a') + "\r\n\r\n";
  RequestReader::Progress progress = RequestReader::Progress::need_more;
  for (size_t at = 0; at < head.size() && progress == RequestReader::Progress::need_more; at += 4096) {
    const std::string piece = head.substr(at, 4096);
    auto room = buffer.prepare(piece.size());
    std::memcpy(room.data(), piece.data(), piece.size());
    buffer.commit(piece.size());
    progress = pieces.consume(buffer);
  }
  EXPECT_EQ(progress, RequestReader::Progress::malformed);
  EXPECT_EQ(pieces.malformed_status(), 431) << pieces.error().message();
}

// Node (llhttp) skips empty lines before a request line, as RFC 9112 §2.2 asks; Beast alone
// refused them (400).
TEST(Strictness, EmptyLinesBeforeARequestAreSkipped) {
  RequestReader reader;
  EXPECT_EQ(read_all(reader, "\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\n\r\n"), RequestReader::Progress::done);
  EXPECT_EQ(reader.release().target(), "/x");
  RequestReader split;
  boost::beast::flat_buffer buffer;
  auto feed = [&](std::string_view bytes) {
    auto room = buffer.prepare(bytes.size());
    std::memcpy(room.data(), bytes.data(), bytes.size());
    buffer.commit(bytes.size());
    return split.consume(buffer);
  };
  EXPECT_EQ(feed("\r\n"), RequestReader::Progress::need_more);
  EXPECT_EQ(feed("\nGET /y HTTP/1.1\r\nHost: x\r\n\r\n"), RequestReader::Progress::done);
  EXPECT_EQ(split.release().target(), "/y");
  // The folding check reads up to the first empty line: the skipped ones must not end it.
  RequestReader folded;
  EXPECT_EQ(read_all(folded, "\r\n\r\nGET /x HTTP/1.1\r\nHost: x\r\nX: a\r\n b\r\n\r\n"),
            RequestReader::Progress::malformed);
}

// Node hands CONNECT over once its head is read, whatever body it declares.
TEST(Strictness, AConnectIsDoneAtItsHead) {
  for (const char* length : {"100000", "10"}) {
    RequestReader reader;
    EXPECT_EQ(read_all(reader, std::string("CONNECT sluice.example:443 HTTP/1.1\r\nHost: sluice.example:443\r\n"
                                           "Content-Length: ") + length + "\r\n\r\n"),
              RequestReader::Progress::done)
        << length;
    EXPECT_EQ(reader.release().method(), http::verb::connect);
  }
  // Its target is still read as Node reads one: a raw byte from 0x80 up is 400.
  RequestReader raw;
  EXPECT_EQ(read_all(raw, "CONNECT caf\xC3\xA9.example:443 HTTP/1.1\r\nHost: x\r\n\r\n"),
            RequestReader::Progress::malformed);
  EXPECT_EQ(raw.malformed_status(), 400);
}

TEST(Strictness, MissingHostAnswerIsNodes) {
  auto answer = missing_host_response(/*head=*/false);
  EXPECT_EQ(answer.rfind("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nDate: ", 0), 0u);
  EXPECT_NE(answer.find("\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n"), std::string::npos);
  // docs/protocol.md#head-requests: to HEAD, the head alone, with nothing that frames a body.
  auto to_head = missing_host_response(/*head=*/true);
  EXPECT_EQ(to_head.rfind("HTTP/1.1 400 Bad Request\r\nConnection: close\r\nDate: ", 0), 0u);
  EXPECT_EQ(to_head.find("Transfer-Encoding"), std::string::npos);
  EXPECT_EQ(to_head.find("\r\n\r\n"), to_head.size() - 4) << "nothing after the head";
}

}  // namespace
}  // namespace sluice::gateway
