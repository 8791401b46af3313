#include "gateway/query_string.hpp"

#include <cctype>

#include "common/percent_encoding.hpp"

namespace sluice::gateway {
std::string percent_decode(std::string_view text, bool plus_is_space) {
  return sluice::percent_decode(text, PercentDecoding{plus_is_space, false, /*replace_ill_formed_utf8=*/true});
}

Params parse_query(std::string_view query) {
  // node's querystring reads at most 1000 '&'-separated pieces, empty ones included.
  constexpr int kMaxPieces = 1000;
  Params params = Params::object();
  size_t pos = 0;
  for (int pieces = 0; pos <= query.size() && pieces < kMaxPieces; ++pieces) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    pos = amp + 1;
    if (pair.empty()) {
      if (amp == query.size()) break;
      continue;
    }
    size_t eq = pair.find('=');
    std::string key = percent_decode(pair.substr(0, eq), true);
    std::string value = eq == std::string_view::npos ? std::string() : percent_decode(pair.substr(eq + 1), true);
    auto it = params.find(key);
    if (it == params.end()) {
      params[key] = value;
    } else if (it->is_array()) {
      it->push_back(value);
    } else {
      *it = Params::array({*it, value});
    }
    if (amp == query.size()) break;
  }
  return params;
}

std::string_view origin_form(std::string_view target) {
  if (target.empty() || target.front() == '/') return target;
  auto scheme_end = target.find("://");
  if (scheme_end == std::string_view::npos || scheme_end == 0) return target;
  for (char c : target.substr(0, scheme_end)) {
    if (!std::isalnum(static_cast<unsigned char>(c)) && c != '+' && c != '-' && c != '.') return target;
  }
  auto path_start = target.find_first_of("/?#", scheme_end + 3);
  if (path_start == std::string_view::npos) return "/";
  // "http://host?x" leaves "?x": an empty path, which no route matches, as "/" would not.
  return target.substr(path_start);
}

std::pair<std::string_view, std::string_view> split_target(std::string_view raw_target) {
  std::string_view target = origin_form(raw_target);
  // docs/protocol.md#malformed-requests: a fragment is not the path's nor the query's.
  target = target.substr(0, target.find('#'));
  auto q = target.find('?');
  if (q == std::string_view::npos) return {target, {}};
  return {target.substr(0, q), target.substr(q + 1)};
}

std::string first_string(const Params& params, const std::string& key) {
  auto it = params.find(key);
  if (it == params.end()) return {};
  if (it->is_string()) return it->get<std::string>();
  if (it->is_array() && !it->empty() && (*it)[0].is_string()) return (*it)[0].get<std::string>();
  return {};
}

}  // namespace sluice::gateway
