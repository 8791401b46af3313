#include "gateway/query_string.hpp"

#include "common/percent_encoding.hpp"

namespace sluice::gateway {
std::string percent_decode(std::string_view text, bool plus_is_space) {
  return sluice::percent_decode(text, PercentDecoding{plus_is_space, false, /*raw_if_not_utf8=*/true});
}

Params parse_query(std::string_view query) {
  Params params = Params::object();
  size_t pos = 0;
  while (pos <= query.size()) {
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

std::pair<std::string_view, std::string_view> split_target(std::string_view target) {
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
