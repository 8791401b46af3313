#include "gateway/streams.hpp"

#include <algorithm>
#include <array>

#include "gateway/hashtag.hpp"
#include "common/js_json.hpp"

namespace sluice::gateway {
namespace {

bool has_scope(const std::vector<std::string>& scopes, std::string_view scope) {
  return std::find(scopes.begin(), scopes.end(), scope) != scopes.end();
}

std::string echo_of(std::string_view name) {
  std::string out = "[";
  append_js_string_literal(out, name);
  out += ']';
  return out;
}

std::string echo_with_param(std::string_view name, const nlohmann::ordered_json& value) {
  std::string out = "[";
  append_js_string_literal(out, name);
  out += ',';
  out += js_stringify(value);
  out += ']';
  return out;
}

bool is_public_family(std::string_view name) {
  static constexpr std::array<std::string_view, 6> kPublic = {
      "public", "public:media", "public:local", "public:local:media", "public:remote", "public:remote:media"};
  return std::find(kPublic.begin(), kPublic.end(), name) != kPublic.end();
}

}  // namespace

bool only_media_truthy(const Params& query) {
  auto it = query.find("only_media");
  if (it == query.end()) return false;
  if (it->is_array()) return true;
  if (!it->is_string()) return js_truthy(*it);
  const auto& v = it->get_ref<const std::string&>();
  static constexpr std::array<std::string_view, 7> kFalse = {"0", "f", "F", "false", "FALSE", "off", "OFF"};
  return !v.empty() && std::find(kFalse.begin(), kFalse.end(), v) == kFalse.end();
}

std::optional<std::string> stream_name_for_path(std::string_view path, const Params& query) {
  auto media = [&](std::string_view base) { return std::string(base) + (only_media_truthy(query) ? ":media" : ""); };
  if (path == "/api/v1/streaming/user") return "user";
  if (path == "/api/v1/streaming/user/notification") return "user:notification";
  if (path == "/api/v1/streaming/public") return media("public");
  if (path == "/api/v1/streaming/public/local") return media("public:local");
  if (path == "/api/v1/streaming/public/remote") return media("public:remote");
  if (path == "/api/v1/streaming/direct") return "direct";
  if (path == "/api/v1/streaming/hashtag") return "hashtag";
  if (path == "/api/v1/streaming/hashtag/local") return "hashtag:local";
  if (path == "/api/v1/streaming/list") return "list";
  return std::nullopt;
}

bool scopes_include_notifications(const std::vector<std::string>& scopes) {
  return has_scope(scopes, "read") || has_scope(scopes, "read:notifications");
}

bool scopes_allow_stream(std::string_view stream_name, const std::vector<std::string>& scopes) {
  if (has_scope(scopes, "read")) return true;
  if (stream_name == "user:notification") return has_scope(scopes, "read:notifications");
  return has_scope(scopes, "read:statuses");
}

std::string StreamPlan::key() const {
  std::string out;
  for (size_t i = 0; i < channels.size(); ++i) {
    if (i) out += ';';
    out += channels[i];
  }
  return out;
}

std::variant<StreamPlan, StreamError> plan_stream(std::string_view stream_name, const Params& params,
                                                  const StreamRequester& requester) {
  const std::string account = std::to_string(requester.account_id);
  StreamPlan plan;
  plan.name = std::string(stream_name);
  plan.echo_json = echo_of(stream_name);

  if (stream_name == "user") {
    plan.channels.push_back("timeline:" + account);
    if (scopes_include_notifications(requester.scopes)) plan.channels.push_back("timeline:" + account + ":notifications");
    return plan;
  }
  if (stream_name == "user:notification") {
    plan.channels.push_back("timeline:" + account + ":notifications");
    return plan;
  }
  if (is_public_family(stream_name)) {
    plan.channels.push_back("timeline:" + std::string(stream_name));
    plan.filtered = true;
    plan.feed_kind = FeedKind::live;
    return plan;
  }
  if (stream_name == "direct") {
    plan.channels.push_back("timeline:direct:" + account);
    return plan;
  }
  if (stream_name == "hashtag" || stream_name == "hashtag:local") {
    auto tag = params.find("tag");
    if (tag == params.end() || !js_truthy(*tag)) return StreamError{400, "Missing tag name parameter"};
    // The reference calls String.prototype.normalize on the value: anything but a
    // string throws, which its error handler turns into a 500.
    if (!tag->is_string()) return StreamError{500, "An unexpected error occurred"};
    std::string channel = "timeline:hashtag:" + normalize_hashtag(tag->get_ref<const std::string&>());
    if (stream_name == "hashtag:local") channel += ":local";
    plan.channels.push_back(std::move(channel));
    // docs/protocol.md#websocket-stream-echo: `hashtag:local` echoes its own name, like `list`.
    plan.echo_json = echo_with_param(std::string(stream_name), *tag);
    plan.filtered = true;
    plan.feed_kind = FeedKind::topic;
    return plan;
  }
  if (stream_name == "list") {
    auto list = params.find("list");
    if (list == params.end() || !js_truthy(*list)) return StreamError{400, "Missing list name parameter"};
    std::string list_id = js_to_string(*list);
    plan.channels.push_back("timeline:list:" + list_id);
    plan.echo_json = echo_with_param("list", *list);
    // An array parameter makes PostgreSQL reject the query in the reference, which
    // ends as "not authorized"; an id that cannot be a list id does the same here.
    plan.list_id = list->is_array() ? std::string("{array}") : list_id;
    return plan;
  }
  return StreamError{400, "Unknown stream type"};
}

const std::vector<std::string>& metric_stream_names() {
  static const std::vector<std::string> kNames = {
      "system",        "user",          "user:notification", "list",
      "direct",        "public",        "public:media",      "public:local",
      "public:local:media", "public:remote", "public:remote:media", "hashtag",
      "hashtag:local"};
  return kNames;
}

}  // namespace sluice::gateway
