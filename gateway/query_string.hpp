#pragma once
// URL query strings parsed like node's querystring (Express 5's "simple" query
// parser): '&' separated, '+' is a space, percent-decoding that leaves malformed
// escapes as they are, repeated keys become arrays.
#include <nlohmann/json.hpp>
#include <string>
#include <string_view>

namespace sluice::gateway {

// Each key maps to a JSON string, or to an array of strings when repeated.
using Params = nlohmann::ordered_json;

Params parse_query(std::string_view query);
std::string percent_decode(std::string_view text, bool plus_is_space);

// The path-and-query part of a request target: an absolute-form target
// ("http://host/path?q", RFC 9112 §3.2.2) is served like its path, as Node does.
std::string_view origin_form(std::string_view target);

// Splits a request target (origin- or absolute-form) into path and query (without the '?').
std::pair<std::string_view, std::string_view> split_target(std::string_view target);

// The first value of a parameter when it is a string or an array of strings
// (docs/protocol.md#token-sources for access_token, docs/protocol.md#opening-a-websocket
// for stream): empty when absent.
std::string first_string(const Params& params, const std::string& key);

}  // namespace sluice::gateway
