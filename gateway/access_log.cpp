#include "gateway/access_log.hpp"

#include "common/log.hpp"
#include "gateway/query_string.hpp"

namespace sluice::gateway {

namespace {

// A parameter name that carries a token once decoded the way the query parser
// decodes it (docs/protocol.md#token-sources): access_token, and its array forms.
bool carries_token(std::string_view encoded_name) {
  std::string name = percent_decode(encoded_name, /*plus_is_space=*/true);
  return name.rfind("access_token", 0) == 0;
}

int64_t elapsed_ms(std::chrono::steady_clock::time_point since) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::steady_clock::now() - since).count();
}

}  // namespace

std::string redact_target(std::string_view target) {
  size_t question = target.find('?');
  if (question == std::string_view::npos) return std::string(target);
  std::string out(target.substr(0, question + 1));
  std::string_view query = target.substr(question + 1);
  size_t pos = 0;
  while (pos <= query.size()) {
    size_t amp = query.find('&', pos);
    if (amp == std::string_view::npos) amp = query.size();
    std::string_view pair = query.substr(pos, amp - pos);
    size_t equals = pair.find('=');
    if (equals != std::string_view::npos && carries_token(pair.substr(0, equals))) {
      out.append(pair.substr(0, equals + 1)).append("[Redacted]");
    } else {
      out.append(pair);
    }
    if (amp == query.size()) break;
    out += '&';
    pos = amp + 1;
  }
  return out;
}

void log_request(const RequestRecord& request, int status, uint64_t bytes, std::string_view stream) {
  if (!log::enabled(log::Level::info)) return;
  nlohmann::json fields = {{"req_id", request.request_id}, {"method", request.method},
                           {"path", request.target},       {"status", status},
                           {"duration_ms", elapsed_ms(request.started)},
                           {"bytes", bytes},               {"client_ip", request.client_ip}};
  if (!stream.empty()) fields["stream"] = stream;
  log::info("request completed", log::for_tenant(request.tenant, std::move(fields)));
}

void RequestRecord::add_stream(std::string_view name) {
  size_t pos = 0;
  while (pos <= streams.size() && !streams.empty()) {
    size_t comma = streams.find(',', pos);
    if (comma == std::string::npos) comma = streams.size();
    if (std::string_view(streams).substr(pos, comma - pos) == name) return;
    pos = comma + 1;
  }
  if (!streams.empty()) streams += ',';
  streams.append(name);
}

void log_stream_end(const RequestRecord& request, std::string_view kind, uint64_t bytes, std::string_view reason) {
  if (!log::enabled(log::Level::info)) return;
  nlohmann::json fields = {{"req_id", request.request_id},
                           {"type", kind},
                           {"path", request.target},
                           {"stream", request.streams},
                           {"duration_ms", elapsed_ms(request.started)},
                           {"bytes", bytes},
                           {"client_ip", request.client_ip},
                           {"reason", reason}};
  log::info("stream ended", log::for_tenant(request.tenant, std::move(fields)));
}

}  // namespace sluice::gateway
