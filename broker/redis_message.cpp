#include "broker/redis_message.hpp"

#include <charconv>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <vector>

#include <gumbo.h>
#include <nlohmann/json.hpp>

#include "broker/message_scan.hpp"
#include "common/js_json.hpp"

namespace sluice {
namespace {

using json = nlohmann::ordered_json;

// Deeper input is refused before nlohmann's recursive parser sees it. Rails'
// payloads nest a handful of levels; the reference would accept any depth.
constexpr std::size_t kMaxNesting = 512;

constexpr std::string_view kUtf8Bom = "\xEF\xBB\xBF";

std::int64_t now_unix_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

const json* member(const json& object, std::string_view key) {
  if (!object.is_object()) return nullptr;
  const auto found = object.find(key);
  return found == object.end() ? nullptr : &*found;
}

// Array.prototype.join's view of one element: null/undefined → "", else String().
void append_join_element(std::string& out, const json* value) {
  if (value == nullptr || value->is_null()) return;
  out.append(js_to_string(*value));
}

// ---- ids (docs/protocol.md#status-fields-used) ----

// String(id) for an id that is a string or a number; nullopt for anything else.
std::optional<std::string> id_text(const json* id) {
  if (id == nullptr) return std::nullopt;
  if (id->is_string()) return id->get<std::string>();
  if (id->is_number()) return js_to_string(*id);
  return std::nullopt;
}

// The id as an integer if its text is a decimal integer that fits, else 0.
std::int64_t id_number(std::string_view text) {
  std::int64_t value = 0;
  const auto [end, error] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (error != std::errc() || end != text.data() + text.size()) return 0;
  return value;
}

std::string string_or_empty(const json* value) {
  return value != nullptr && value->is_string() ? value->get<std::string>() : std::string();
}

// ---- filter text (docs/protocol.md#searched-text) ----

// Bytes of the JS RegExp `\s` character at text[pos], or 0.
std::size_t js_whitespace_length(std::string_view text, std::size_t pos) {
  static constexpr std::string_view kMultiByte[] = {
      "\xC2\xA0",     "\xE1\x9A\x80", "\xE2\x80\x80", "\xE2\x80\x81", "\xE2\x80\x82", "\xE2\x80\x83",
      "\xE2\x80\x84", "\xE2\x80\x85", "\xE2\x80\x86", "\xE2\x80\x87", "\xE2\x80\x88", "\xE2\x80\x89",
      "\xE2\x80\x8A", "\xE2\x80\xA8", "\xE2\x80\xA9", "\xE2\x80\xAF", "\xE2\x81\x9F", "\xE3\x80\x80",
      "\xEF\xBB\xBF"};
  const char c = text[pos];
  if (c == ' ' || c == '\t' || c == '\n' || c == '\v' || c == '\f' || c == '\r') return 1;
  if (static_cast<unsigned char>(c) < 0x80) return 0;
  const std::string_view rest = text.substr(pos);
  for (const std::string_view space : kMultiByte) {
    if (rest.starts_with(space)) return space.size();
  }
  return 0;
}

// Bytes of a `<br\s*/?>` match at text[pos], or 0.
std::size_t line_break_tag_length(std::string_view text, std::size_t pos) {
  if (text.compare(pos, 3, "<br") != 0) return 0;
  std::size_t end = pos + 3;
  while (end < text.size()) {
    const std::size_t space = js_whitespace_length(text, end);
    if (space == 0) break;
    end += space;
  }
  if (end < text.size() && text[end] == '/') ++end;
  if (end < text.size() && text[end] == '>') return end + 1 - pos;
  return 0;
}

// text.replace(/<br\s*\/?>/g, '\n').replace(/<\/p><p>/g, '\n\n'), in one pass:
// a `</p><p>` cannot overlap a `<br…>` match, and replacing a `<br>` by "\n"
// cannot create a new `</p><p>`.
std::string replace_paragraph_breaks(std::string_view text) {
  std::string out;
  out.reserve(text.size());
  std::size_t pos = 0;
  while (pos < text.size()) {
    const std::size_t tag = text.find('<', pos);
    if (tag == std::string_view::npos) break;
    out.append(text.substr(pos, tag - pos));
    if (const std::size_t length = line_break_tag_length(text, tag); length != 0) {
      out.push_back('\n');
      pos = tag + length;
    } else if (text.compare(tag, 7, "</p><p>") == 0) {
      out.append("\n\n");
      pos = tag + 7;
    } else {
      out.push_back('<');
      pos = tag + 1;
    }
  }
  if (pos < text.size()) out.append(text.substr(pos));
  return out;
}

// DOM textContent of the nodes gumbo built: text, CDATA and whitespace nodes in
// document order; comments skipped; a <template>'s contents are not its
// children in the DOM, so they are skipped too. Iterative: HTML may nest deeply.
std::string text_content(const GumboNode* root) {
  std::string out;
  std::vector<const GumboNode*> pending{root};
  while (!pending.empty()) {
    const GumboNode* node = pending.back();
    pending.pop_back();
    switch (node->type) {
      case GUMBO_NODE_TEXT:
      case GUMBO_NODE_CDATA:
      case GUMBO_NODE_WHITESPACE: out.append(node->v.text.text); break;
      case GUMBO_NODE_ELEMENT:
      case GUMBO_NODE_DOCUMENT: {
        const GumboVector& children =
            node->type == GUMBO_NODE_ELEMENT ? node->v.element.children : node->v.document.children;
        for (unsigned int i = children.length; i-- > 0;) pending.push_back(static_cast<const GumboNode*>(children.data[i]));
        break;
      }
      default: break;  // comments, template contents
    }
  }
  return out;
}

// Memory for one gumbo parse, released at once. gumbo_destroy_output frees
// the tree recursively and overflows the stack on deeply nested HTML (~400k
// open tags), so the tree is never destroyed node by node. Bump allocation is
// also much cheaper than one malloc per node and string.
class GumboArena {
 public:
  GumboArena() = default;
  GumboArena(const GumboArena&) = delete;
  GumboArena& operator=(const GumboArena&) = delete;

  void install(GumboOptions& options) {
    options.allocator = &GumboArena::allocate;
    options.deallocator = &GumboArena::deallocate;
    options.userdata = this;
  }

 private:
  static constexpr std::size_t kBlockSize = 64 * 1024;
  static constexpr std::size_t kAlignment = alignof(std::max_align_t);

  static void* allocate(void* self, std::size_t size) { return static_cast<GumboArena*>(self)->take(size); }
  static void deallocate(void*, void*) {}  // everything goes with the arena

  void* take(std::size_t size) {
    size = (size + kAlignment - 1) & ~(kAlignment - 1);
    if (size > kBlockSize / 4) return new_block(size);  // large buffers get their own block
    if (size > left_) {
      next_ = static_cast<std::byte*>(new_block(kBlockSize));
      left_ = kBlockSize;
    }
    void* result = next_;
    next_ += size;
    left_ -= size;
    return result;
  }

  void* new_block(std::size_t size) {
    blocks_.push_back(std::make_unique_for_overwrite<std::byte[]>(size));
    return blocks_.back().get();
  }

  std::vector<std::unique_ptr<std::byte[]>> blocks_;
  std::byte* next_ = nullptr;
  std::size_t left_ = 0;
};

// The HTML fragment's text: tags removed, entities decoded, script/style text
// kept (docs/protocol.md#searched-text). Text without markup, entities, CR or NUL parses to itself.
std::string html_fragment_text(std::string_view html) {
  if (html.find_first_of(std::string_view("<&\r\0", 4)) == std::string_view::npos) return std::string(html);
  GumboArena arena;
  GumboOptions options = kGumboDefaultOptions;
  arena.install(options);
  options.fragment_context = GUMBO_TAG_BODY;
  options.fragment_namespace = GUMBO_NAMESPACE_HTML;
  options.max_errors = 0;  // parse errors are not needed; do not record them
  const GumboOutput* output = gumbo_parse_with_options(&options, html.data(), html.size());
  return output == nullptr ? std::string() : text_content(output->root);
}

// [spoiler_text || '', content, ...poll.options.map(o => o.title),
//  ...media_attachments.map(a => a.description)].join('\n\n')
std::string filter_source_text(const json& status) {
  std::string joined;
  const json* spoiler = member(status, "spoiler_text");
  if (spoiler != nullptr && js_truthy(*spoiler)) joined.append(js_to_string(*spoiler));
  joined.append("\n\n");
  append_join_element(joined, member(status, "content"));
  const json* poll = member(status, "poll");
  const json* options = poll != nullptr ? member(*poll, "options") : nullptr;
  if (options != nullptr && options->is_array()) {
    for (const json& option : *options) {
      joined.append("\n\n");
      append_join_element(joined, member(option, "title"));
    }
  }
  const json* media = member(status, "media_attachments");
  if (media != nullptr && media->is_array()) {
    for (const json& attachment : *media) {
      joined.append("\n\n");
      append_join_element(joined, member(attachment, "description"));
    }
  }
  return joined;
}

std::string filter_text(const json& status) {
  return html_fragment_text(replace_paragraph_breaks(filter_source_text(status)));
}

// ---- status facts (docs/protocol.md#status-fields-used) ----

// Mentioned ids in order, duplicates kept. False when a mention has no usable id
// (the reference throws on a mention that is not an object).
bool fill_mentions(const json& mentions, sluice::v1::StatusFacts& facts) {
  for (const json& mention : mentions) {
    const std::optional<std::string> id = id_text(member(mention, "id"));
    if (!id) return false;
    facts.add_mention_ids_num(id_number(*id));
    facts.add_mention_ids(*id);
  }
  return true;
}

void fill_status_facts(const json& status, sluice::v1::StatusFacts& facts) {
  const json* account = member(status, "account");
  const json* mentions = member(status, "mentions");
  const json* media = member(status, "media_attachments");
  const std::optional<std::string> account_id = account != nullptr ? id_text(member(*account, "id")) : std::nullopt;
  bool well_formed = account_id.has_value() && mentions != nullptr && mentions->is_array() && media != nullptr &&
                     media->is_array();
  if (account_id) {
    facts.set_account_id(*account_id);
    facts.set_account_id_num(id_number(*account_id));
  }
  if (account != nullptr) {
    facts.set_account_username(string_or_empty(member(*account, "username")));
    facts.set_account_acct(string_or_empty(member(*account, "acct")));
  }
  if (mentions != nullptr && mentions->is_array()) well_formed = fill_mentions(*mentions, facts) && well_formed;
  if (const json* language = member(status, "language"); language != nullptr && language->is_string()) {
    facts.set_language(language->get<std::string>());
  }
  facts.set_has_filtered(status.contains("filtered"));
  facts.set_filter_text(filter_text(status));
  facts.set_well_formed(well_formed);
}

bool is_status_event(const json& event) {
  if (!event.is_string()) return false;  // the reference compares with ===
  const auto& name = event.get_ref<const std::string&>();
  return name == "update" || name == "status.update";
}

// JSON.parse of the message as Node holds it: bytes decoded as UTF-8 with
// U+FFFD for ill-formed sequences. Discarded on any error.
json parse_message_json(std::string_view text) {
  if (json_nesting_exceeds(text, kMaxNesting)) return json(json::value_t::discarded);
  if (text.starts_with(kUtf8Bom)) return json(json::value_t::discarded);  // JSON.parse rejects U+FEFF
  // nlohmann stops at a NUL byte as if the input ended there; in JSON a raw NUL
  // is never valid (not whitespace, not allowed inside a string).
  if (text.find('\0') != std::string_view::npos) return json(json::value_t::discarded);
  if (is_valid_utf8(text)) return json::parse(text, nullptr, /*allow_exceptions=*/false);
  const std::string decoded = to_well_formed_utf8(text);
  return json::parse(decoded, nullptr, /*allow_exceptions=*/false);
}

// Channels of filtered streams (docs/protocol.md#filtered-streams): public* and hashtag*.
// Only their statuses are filtered, so only they need status facts; every other
// channel (a home timeline, a list, ...) is spared parsing the status's HTML.
bool feeds_filtered_streams(std::string_view channel) {
  return channel == "timeline:public" || channel.starts_with("timeline:public:") ||
         channel.starts_with("timeline:hashtag:");
}

RedisMessageVerdict parse_into(std::string_view text, sluice::v1::ChannelEvent& out) {
  // Where nothing is filtered the payload is only copied through: the quick pass does it
  // when the message is ordinary, and says so; anything else is parsed fully below.
  if (!feeds_filtered_streams(out.channel())) {
    if (auto scanned = scan_plain_message(text)) {
      out.set_event(std::move(scanned->event));
      out.set_payload(std::move(scanned->payload));
      return RedisMessageVerdict::deliver;
    }
  }
  const json message = parse_message_json(text);
  if (message.is_discarded()) return RedisMessageVerdict::invalid_json;
  if (!message.is_object()) return RedisMessageVerdict::not_an_object;
  const json* event = member(message, "event");
  if (event == nullptr || !js_truthy(*event)) return RedisMessageVerdict::no_event;
  out.set_event(js_to_string(*event));  // the SSE `event:` line prints String(event)
  const json* payload = member(message, "payload");
  if (payload == nullptr || !js_truthy(*payload)) return RedisMessageVerdict::system_only;
  if (payload->is_string()) {
    out.set_payload(payload->get<std::string>());  // docs/protocol.md#event-frames: string payloads go out raw
  } else {
    std::string serialized;
    serialized.reserve(text.size());
    append_js_stringify(serialized, *payload);
    out.set_payload(std::move(serialized));
  }
  if (is_status_event(*event) && payload->is_object() && feeds_filtered_streams(out.channel())) {
    fill_status_facts(*payload, *out.mutable_status());
  }
  return RedisMessageVerdict::deliver;
}

}  // namespace

void classify_system_channel(std::string_view channel, sluice::v1::ChannelEvent& out) {
  constexpr std::string_view kAccessTokenPrefix = "timeline:access_token:";
  constexpr std::string_view kAccountPrefix = "timeline:system:";
  std::string_view id;
  if (channel.starts_with(kAccessTokenPrefix)) {
    out.set_system_channel(sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN);
    id = channel.substr(kAccessTokenPrefix.size());
  } else if (channel.starts_with(kAccountPrefix)) {
    out.set_system_channel(sluice::v1::SYSTEM_CHANNEL_ACCOUNT);
    id = channel.substr(kAccountPrefix.size());
  } else {
    return;
  }
  // Rails writes the id in decimal; anything else (sign, blanks, overflow) names nobody.
  int64_t value = 0;
  bool digits = !id.empty() && id.find_first_not_of("0123456789") == std::string_view::npos;
  auto [end, ec] = std::from_chars(id.data(), id.data() + id.size(), value);
  if (digits && ec == std::errc() && end == id.data() + id.size()) {
    out.set_system_id(value);
    out.set_system_id_valid(true);
  }
}

RedisMessageVerdict parse_redis_message(std::string_view channel, std::string_view text,
                                        sluice::v1::ChannelEvent& out) {
  out.Clear();
  out.set_received_at_us(now_unix_us());
  // The system patterns match any bytes after their prefix. A proto string must be
  // UTF-8: gateways could not read the event, and the reference, which subscribes to
  // each system channel by its decimal id, never receives such a name
  // (docs/protocol.md#system-channels).
  if (!is_valid_utf8(channel)) return RedisMessageVerdict::invalid_channel;
  out.set_channel(std::string(channel));
  classify_system_channel(channel, out);
  try {
    return parse_into(text, out);
  } catch (...) {  // allocation failure or a nlohmann type error: drop, never crash
    out.clear_event();
    out.clear_payload();
    out.clear_status();
    return RedisMessageVerdict::invalid_json;
  }
}

}  // namespace sluice
