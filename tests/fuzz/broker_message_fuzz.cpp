// What a gateway reads from a broker: a BrokerMessage with any event name,
// payload and status facts. Preparing the event and deciding it for a viewer with
// relations and keyword filters must not crash, and what a client is sent stays
// well formed: an SSE event is one whole HTTP chunk, a `filtered` splice yields JSON when
// the payload was a JSON object. The viewer's digests never change the decision.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string>

#include "gateway/gateway_event.hpp"
#include "gateway/status_decision.hpp"

using namespace sluice::gateway;

namespace {
const CompiledFilters& viewer_filters() {
  static const auto filters = [] {
    sluice::v1::FiltersReply reply;
    auto* filter = reply.add_filters();
    filter->set_id("7");
    filter->set_title("fuzz");
    filter->add_keywords()->set_keyword("cat");
    auto* whole = filter->add_keywords();
    whole->set_keyword("dog");
    whole->set_whole_word(true);
    return CompiledFilters::compile(reply);
  }();
  return *filters;
}

const Relations& viewer_relations() {
  static const Relations relations = [] {
    Relations r;
    r.blocking = {2, 3};
    r.blocked_by = {5};
    r.muting = {11};
    r.blocked_domains = {"example.com"};
    return r;
  }();
  return relations;
}
// One HTTP chunk (hex size, CRLF, body, CRLF) whose body is one SSE event.
bool is_sse_chunk(const std::string& chunk) {
  size_t line_end = chunk.find("\r\n");
  if (line_end == std::string::npos || line_end == 0) return false;
  size_t body_size = std::stoul(chunk.substr(0, line_end), nullptr, 16);
  if (chunk.size() != line_end + 2 + body_size + 2 || chunk.compare(chunk.size() - 2, 2, "\r\n") != 0) return false;
  std::string body = chunk.substr(line_end + 2, body_size);
  return body.rfind("event: ", 0) == 0 && body.size() >= 2 && body.compare(body.size() - 2, 2, "\n\n") == 0;
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  sluice::v1::BrokerMessage message;
  if (!message.ParseFromArray(data, static_cast<int>(size)) || !message.has_event()) return 0;
  auto source = std::make_shared<const sluice::v1::ChannelEvent>(message.event());
  auto event = GatewayEvent::prepare(source);
  if (!event->sse(false).empty() && !is_sse_chunk(event->sse(false))) std::abort();
  if (!event->is_status) return 0;

  std::optional<std::vector<std::string>> languages = std::vector<std::string>{"en", "de"};
  SubscriptionRules rules{static_cast<bool>(size & 1), static_cast<bool>(size & 2), ChosenLanguages(languages)};
  if (check_feed_and_language(FeedFacts::of(source->status()), rules) != FeedCheck::pass) return 0;

  std::string evaluated;
  const Relations& relations = viewer_relations();
  const CompiledFilters& filters = viewer_filters();
  const RelationsDigest relations_keys = RelationsDigest::of(relations);
  auto decision = decide_status(source->status(), RelationsDigest::of(source->status()),
                                {relations, relations_keys, filters, filters.digest()},
                                [&](const StatusViewer& viewer) -> const std::string& {
                                  evaluated = evaluate_filters(viewer, FilterSubject(source->status().filter_text()), 0);
                                  return evaluated;
                                });
  // The digests only spare reads: the decision drops exactly what the sets drop, and
  // reports a match wherever the compiled filters find one.
  const bool dropped = relations_drop(relations, source->status());
  if (dropped != (decision.verdict == StatusVerdict::drop)) std::abort();
  if (!dropped && !source->status().has_filtered() &&
      (filters.evaluate(source->status().filter_text(), 0) != "[]") !=
          (decision.verdict == StatusVerdict::filter_matches)) {
    std::abort();
  }
  if (decision.verdict == StatusVerdict::filter_matches && !event->payload_open.empty()) {
    bool payload_is_json = !nlohmann::json::parse(source->payload(), nullptr, false).is_discarded();
    std::string spliced = payload_with_filtered(event->payload_open, decision.filtered_json);
    if (payload_is_json && nlohmann::json::parse(spliced, nullptr, false).is_discarded()) std::abort();
  }
  return 0;
}
