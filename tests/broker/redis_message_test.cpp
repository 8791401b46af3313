// Redis messages as Rails publishes them (docs/protocol.md#messages-from-rails,
// docs/protocol.md#which-events-are-forwarded, docs/protocol.md#status-fields-used,
// docs/protocol.md#searched-text), parsed once by the broker.
#include "broker/redis_message.hpp"

#include <chrono>
#include <string>

#include <gtest/gtest.h>

namespace sluice {
namespace {

using sluice::v1::ChannelEvent;

// A public `update` as Rails publishes it (docs/protocol.md#messages-from-rails), and the
// payload a client must receive for it (docs/protocol.md#payload-serialisation: Rails'
// \u003c escapes come out raw).
constexpr std::string_view kUpdatePublic =
    R"json({"event":"update","payload":{"id":"113999000000000001","created_at":"2026-01-15T10:20:30.000Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"pub)json"
    R"json(lic","language":"en","uri":"https://social.example/users/alice/statuses/113999000000000001","url":"https://social.example/@alice/113999000000000001","replies_count":0,"reblogs_count":0,"favourites_cou)json"
    R"json(nt":0,"quotes_count":0,"edited_at":null,"content":"\u003cp\u003eHello \u003cspan class=\"h-card\" translate=\"no\"\u003e\u003ca href=\"https://remote.example/@carol\" class=\"u-url mention\"\u003e@\u0)json"
    R"json(03cspan\u003ecarol\u003c/span\u003e\u003c/a\u003e\u003c/span\u003e, spoiler alert for \u003ca href=\"https://social.example/tags/Caf%C3%A9\" class=\"mention hashtag\" rel=\"tag\"\u003e#\u003cspan\u003)json"
    R"json(eCafé\u003c/span\u003e\u003c/a\u003e fans \u0026amp; friends\u003c/p\u003e","reblog":null,"application":{"name":"Web","website":null},"account":{"id":"109000000000000001","username":"alice","acct":"al)json"
    R"json(ice","display_name":"Alice","locked":false,"bot":false,"discoverable":true,"indexable":false,"group":false,"created_at":"2022-11-01T00:00:00.000Z","note":"\u003cp\u003eHi\u003c/p\u003e","url":"https:/)json"
    R"json(/social.example/@alice","uri":"https://social.example/users/alice","avatar":"https://social.example/system/accounts/avatars/109/000/000/000/000/001/original/a.png","avatar_static":"https://social.exam)json"
    R"json(ple/system/accounts/avatars/109/000/000/000/000/001/original/a.png","header":"https://social.example/headers/original/missing.png","header_static":"https://social.example/headers/original/missing.png")json"
    R"json(,"followers_count":12,"following_count":7,"statuses_count":345,"last_status_at":"2026-01-15","hide_collections":null,"noindex":false,"emojis":[],"roles":[],"fields":[]},"media_attachments":[{"id":"113)json"
    R"json(999000000000010","type":"image","url":"https://social.example/system/media_attachments/files/113/999/000/000/000/010/original/x.jpg","preview_url":"https://social.example/system/media_attachments/file)json"
    R"json(s/113/999/000/000/000/010/small/x.jpg","remote_url":null,"preview_remote_url":null,"text_url":null,"meta":{"original":{"width":1600,"height":900,"size":"1600x900","aspect":1.7777777777777777},"small":)json"
    R"json({"width":640,"height":360,"size":"640x360","aspect":1.7777777777777777}},"description":"A cup of coffee","blurhash":"UFGRx8~q9FIU00xu%MRj_3ofWBt7-;of%MWB"}],"mentions":[{"id":"109500000000000003","use)json"
    R"json(rname":"carol","url":"https://remote.example/@carol","acct":"carol@remote.example"}],"tags":[{"name":"cafe","url":"https://social.example/tags/cafe"}],"emojis":[],"quote":null,"card":null,"poll":null})json"
    R"json(})json";

constexpr std::string_view kUpdatePublicPayload =
    R"json({"id":"113999000000000001","created_at":"2026-01-15T10:20:30.000Z","in_reply_to_id":null,"in_reply_to_account_id":null,"sensitive":false,"spoiler_text":"","visibility":"public","language":"en","uri":")json"
    R"json(https://social.example/users/alice/statuses/113999000000000001","url":"https://social.example/@alice/113999000000000001","replies_count":0,"reblogs_count":0,"favourites_count":0,"quotes_count":0,"edit)json"
    R"json(ed_at":null,"content":"<p>Hello <span class=\"h-card\" translate=\"no\"><a href=\"https://remote.example/@carol\" class=\"u-url mention\">@<span>carol</span></a></span>, spoiler alert for <a href=\"ht)json"
    R"json(tps://social.example/tags/Caf%C3%A9\" class=\"mention hashtag\" rel=\"tag\">#<span>Café</span></a> fans &amp; friends</p>","reblog":null,"application":{"name":"Web","website":null},"account":{"id":"10)json"
    R"json(9000000000000001","username":"alice","acct":"alice","display_name":"Alice","locked":false,"bot":false,"discoverable":true,"indexable":false,"group":false,"created_at":"2022-11-01T00:00:00.000Z","note")json"
    R"json(:"<p>Hi</p>","url":"https://social.example/@alice","uri":"https://social.example/users/alice","avatar":"https://social.example/system/accounts/avatars/109/000/000/000/000/001/original/a.png","avatar_s)json"
    R"json(tatic":"https://social.example/system/accounts/avatars/109/000/000/000/000/001/original/a.png","header":"https://social.example/headers/original/missing.png","header_static":"https://social.example/he)json"
    R"json(aders/original/missing.png","followers_count":12,"following_count":7,"statuses_count":345,"last_status_at":"2026-01-15","hide_collections":null,"noindex":false,"emojis":[],"roles":[],"fields":[]},"med)json"
    R"json(ia_attachments":[{"id":"113999000000000010","type":"image","url":"https://social.example/system/media_attachments/files/113/999/000/000/000/010/original/x.jpg","preview_url":"https://social.example/sy)json"
    R"json(stem/media_attachments/files/113/999/000/000/000/010/small/x.jpg","remote_url":null,"preview_remote_url":null,"text_url":null,"meta":{"original":{"width":1600,"height":900,"size":"1600x900","aspect":1)json"
    R"json(.7777777777777777},"small":{"width":640,"height":360,"size":"640x360","aspect":1.7777777777777777}},"description":"A cup of coffee","blurhash":"UFGRx8~q9FIU00xu%MRj_3ofWBt7-;of%MWB"}],"mentions":[{"id)json"
    R"json(":"109500000000000003","username":"carol","url":"https://remote.example/@carol","acct":"carol@remote.example"}],"tags":[{"name":"cafe","url":"https://social.example/tags/cafe"}],"emojis":[],"quote":nu)json"
    R"json(ll,"card":null,"poll":null})json";

std::int64_t now_us() {
  return std::chrono::duration_cast<std::chrono::microseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

struct Parsed {
  RedisMessageVerdict verdict;
  ChannelEvent event;
};

Parsed parse(std::string_view text, std::string_view channel = "timeline:public") {
  Parsed parsed;
  parsed.verdict = parse_redis_message(channel, text, parsed.event);
  return parsed;
}

// A status payload with the fields docs/protocol.md#status-fields-used lists, plus `extra` members.
std::string status_message(std::string_view extra, std::string_view event = "update") {
  return std::string(R"({"event":")") + std::string(event) +
         R"(","payload":{"id":"1","account":{"id":"10","username":"alice","acct":"alice"},"mentions":[],"media_attachments":[])" +
         std::string(extra) + "}}";
}

std::string filter_text_of(std::string_view status_json) {
  const Parsed parsed = parse(std::string(R"({"event":"update","payload":)") + std::string(status_json) + "}");
  EXPECT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  return parsed.event.status().filter_text();
}

std::string content_text(std::string_view content_json) {
  return filter_text_of(std::string(R"({"spoiler_text":"","content":)") + std::string(content_json) + "}");
}

// ---- messages as Rails publishes them (docs/protocol.md#messages-from-rails) ----

// docs/protocol.md#system-channels: the broker classifies system channels once; gateways
// and auth read the family and id from the event.
TEST(RedisMessage, SystemChannelsAreClassifiedWithTheirId) {
  ChannelEvent event;
  EXPECT_EQ(parse_redis_message("timeline:access_token:77", R"({"event":"kill"})", event),
            RedisMessageVerdict::system_only);
  EXPECT_EQ(event.system_channel(), sluice::v1::SYSTEM_CHANNEL_ACCESS_TOKEN);
  EXPECT_TRUE(event.system_id_valid());
  EXPECT_EQ(event.system_id(), 77);
  parse_redis_message("timeline:system:910001", R"({"event":"filters_changed"})", event);
  EXPECT_EQ(event.system_channel(), sluice::v1::SYSTEM_CHANNEL_ACCOUNT);
  EXPECT_EQ(event.system_id(), 910001);
  parse_redis_message("timeline:910001", R"({"event":"filters_changed"})", event);
  EXPECT_EQ(event.system_channel(), sluice::v1::SYSTEM_CHANNEL_NONE);
  EXPECT_FALSE(event.system_id_valid());
  // Ids Rails never writes name nobody, whatever strtoll or from_chars would make of them.
  for (const char* channel : {"timeline:system:", "timeline:system:-1", "timeline:system:+1", "timeline:system: 1",
                              "timeline:system:1x", "timeline:access_token:99999999999999999999"}) {
    SCOPED_TRACE(channel);
    parse_redis_message(channel, R"({"event":"kill"})", event);
    EXPECT_NE(event.system_channel(), sluice::v1::SYSTEM_CHANNEL_NONE);
    EXPECT_FALSE(event.system_id_valid());
    EXPECT_EQ(event.system_id(), 0);
  }
}

TEST(RedisMessage, UpdatePublicExample) {
  const std::int64_t before = now_us();
  const Parsed parsed = parse(kUpdatePublic, "timeline:hashtag:cafe");
  const std::int64_t after = now_us();
  ASSERT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  const ChannelEvent& event = parsed.event;
  EXPECT_EQ(event.channel(), "timeline:hashtag:cafe");
  EXPECT_EQ(event.event(), "update");
  EXPECT_EQ(event.payload(), kUpdatePublicPayload);
  EXPECT_GE(event.received_at_us(), before);
  EXPECT_LE(event.received_at_us(), after);
  ASSERT_TRUE(event.has_status());
  const auto& status = event.status();
  EXPECT_TRUE(status.well_formed());
  EXPECT_EQ(status.account_id(), "109000000000000001");
  EXPECT_EQ(status.account_id_num(), 109000000000000001);
  EXPECT_EQ(status.account_username(), "alice");
  EXPECT_EQ(status.account_acct(), "alice");
  ASSERT_EQ(status.mention_ids_size(), 1);
  EXPECT_EQ(status.mention_ids(0), "109500000000000003");
  ASSERT_EQ(status.mention_ids_num_size(), 1);
  EXPECT_EQ(status.mention_ids_num(0), 109500000000000003);
  ASSERT_TRUE(status.has_language());
  EXPECT_EQ(status.language(), "en");
  EXPECT_FALSE(status.has_filtered());
  EXPECT_EQ(status.filter_text(),
            "\n\nHello @carol, spoiler alert for #Caf\xC3\xA9 fans & friends\n\nA cup of coffee");
}

TEST(RedisMessage, StatusUpdateHomeExample) {
  const std::string message =
      R"({"event":"status.update","payload":{"id":"2","spoiler_text":"Film talk","language":"de","content":"\u003cp\u003eDas Ende war \u003cstrong\u003e\u00fcberraschend\u003c/strong\u003e\u003c/p\u003e","filtered":[{"filter":{"id":"41"},"keyword_matches":["Ende"]}],"account":{"id":"109500000000000003","username":"carol","acct":"carol@remote.example"},"media_attachments":[],"mentions":[]},"queued_at":1768474800000})";
  const Parsed home = parse(message, "timeline:109000000000000001");
  ASSERT_EQ(home.verdict, RedisMessageVerdict::deliver);
  EXPECT_FALSE(home.event.has_status()) << "a home timeline is not filtered: no facts";
  // The same message on a filtered stream's channel: its payload and its facts.
  const Parsed parsed = parse(message, "timeline:public");
  EXPECT_EQ(parsed.event.payload(), home.event.payload());
  ASSERT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.event(), "status.update");
  EXPECT_EQ(parsed.event.payload(),
            R"({"id":"2","spoiler_text":"Film talk","language":"de","content":"<p>Das Ende war <strong>)"
            "\xC3\xBC"
            R"(berraschend</strong></p>","filtered":[{"filter":{"id":"41"},"keyword_matches":["Ende"]}],"account":{"id":"109500000000000003","username":"carol","acct":"carol@remote.example"},"media_attachments":[],"mentions":[]})");
  const auto& status = parsed.event.status();
  EXPECT_TRUE(status.well_formed());
  EXPECT_TRUE(status.has_filtered());
  EXPECT_EQ(status.account_acct(), "carol@remote.example");
  EXPECT_EQ(status.language(), "de");
  EXPECT_EQ(status.filter_text(), "Film talk\n\nDas Ende war \xC3\xBC" "berraschend");
}

TEST(RedisMessage, DeletePayloadStringIsForwardedRaw) {
  const Parsed parsed = parse(R"({"event":"delete","payload":"113999000000000001"})");
  ASSERT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.event(), "delete");
  EXPECT_EQ(parsed.event.payload(), "113999000000000001");
  EXPECT_FALSE(parsed.event.has_status());
}

TEST(RedisMessage, StringPayloadIsTheDecodedString) {
  const Parsed parsed = parse(R"({"event":"x","payload":"a\"b\u003c\n"})");
  EXPECT_EQ(parsed.event.payload(), "a\"b<\n");
}

TEST(RedisMessage, NotificationsMergedExample) {
  const Parsed parsed = parse(R"({"event":"notifications_merged","payload":"1"})", "timeline:1:notifications");
  ASSERT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.payload(), "1");
}

TEST(RedisMessage, KillAndFiltersChangedAreSystemOnly) {
  Parsed parsed = parse(R"({"event":"kill"})", "timeline:access_token:7");
  EXPECT_EQ(parsed.verdict, RedisMessageVerdict::system_only);
  EXPECT_EQ(parsed.event.channel(), "timeline:access_token:7");
  EXPECT_EQ(parsed.event.event(), "kill");
  EXPECT_EQ(parsed.event.payload(), "");
  parsed = parse(R"({"event":"filters_changed"})", "timeline:system:1");
  EXPECT_EQ(parsed.verdict, RedisMessageVerdict::system_only);
  EXPECT_EQ(parsed.event.event(), "filters_changed");
}

// ---- verdicts ----

// The system patterns hand over whatever name a message was published to; a name that is
// not UTF-8 cannot travel in the event's proto string (every gateway's stream would fail
// to read it), and the reference never subscribes to one.
TEST(RedisMessage, AChannelNameThatIsNotUtf8IsDropped) {
  using namespace std::string_view_literals;
  for (std::string_view channel : {"timeline:system:\xff"sv, "timeline:access_token:1\xc3"sv, "timeline:\xed\xa0\x80"sv}) {
    const Parsed parsed = parse(R"({"event":"kill"})", channel);
    EXPECT_EQ(parsed.verdict, RedisMessageVerdict::invalid_channel);
    EXPECT_EQ(parsed.event.channel(), "");
  }
  EXPECT_EQ(parse(R"({"event":"kill"})", "timeline:system:caf\xc3\xa9").verdict, RedisMessageVerdict::system_only);
}

TEST(RedisMessage, InvalidJson) {
  for (const char* text : {"", "not json", "{", R"({"event":"x"} trailing)", R"({"event":'x'})", "{\"a\":1,}",
                           "NaN", "[1,]"}) {
    const Parsed parsed = parse(text, "timeline:public");
    EXPECT_EQ(parsed.verdict, RedisMessageVerdict::invalid_json) << text;
    EXPECT_EQ(parsed.event.channel(), "timeline:public");
    EXPECT_EQ(parsed.event.event(), "");
  }
}

TEST(RedisMessage, ByteOrderMarkIsInvalidJsonAsInJavaScript) {
  EXPECT_EQ(parse("\xEF\xBB\xBF{\"event\":\"kill\"}").verdict, RedisMessageVerdict::invalid_json);
}

TEST(RedisMessage, NulByteIsInvalidJsonEvenAfterAValidMessage) {
  // nlohmann alone would stop at the NUL and accept the message before it.
  using namespace std::string_view_literals;
  EXPECT_EQ(parse("{\"event\":\"kill\"}\0garbage"sv).verdict, RedisMessageVerdict::invalid_json);
  EXPECT_EQ(parse("{\"event\":\"kill\"}\0"sv).verdict, RedisMessageVerdict::invalid_json);
  EXPECT_EQ(parse("{\"event\":\"a\0b\"}"sv).verdict, RedisMessageVerdict::invalid_json);
}

TEST(RedisMessage, LoneSurrogateEscapeIsRejected) {
  // Deviation: JSON.parse accepts "\ud800"; nlohmann refuses it.
  EXPECT_EQ(parse(R"({"event":"delete","payload":"\ud800"})").verdict, RedisMessageVerdict::invalid_json);
}

TEST(RedisMessage, OverflowingNumberIsRejected) {
  // Deviation: JSON.parse gives Infinity (stringified as null); nlohmann refuses.
  EXPECT_EQ(parse(R"({"event":"x","payload":[1e400]})").verdict, RedisMessageVerdict::invalid_json);
}

TEST(RedisMessage, NotAnObject) {
  for (const char* text : {"[]", R"([{"event":"kill"}])", "1", "\"update\"", "null", "true", "false", "0"}) {
    EXPECT_EQ(parse(text).verdict, RedisMessageVerdict::not_an_object) << text;
  }
}

TEST(RedisMessage, MissingOrFalsyEventIsNoEvent) {
  for (const char* text : {R"({})", R"({"payload":"1"})", R"({"event":null,"payload":"1"})",
                           R"({"event":false,"payload":"1"})", R"({"event":0,"payload":"1"})",
                           R"({"event":-0.0,"payload":"1"})", R"({"event":"","payload":"1"})"}) {
    const Parsed parsed = parse(text);
    EXPECT_EQ(parsed.verdict, RedisMessageVerdict::no_event) << text;
    EXPECT_EQ(parsed.event.event(), "");
    EXPECT_EQ(parsed.event.payload(), "");
  }
}

TEST(RedisMessage, TruthyNonStringEventUsesJavaScriptString) {
  EXPECT_EQ(parse(R"({"event":5,"payload":"1"})").event.event(), "5");
  EXPECT_EQ(parse(R"({"event":1.5e-7,"payload":"1"})").event.event(), "1.5e-7");
  EXPECT_EQ(parse(R"({"event":true,"payload":"1"})").event.event(), "true");
  EXPECT_EQ(parse(R"({"event":{"a":1},"payload":"1"})").event.event(), "[object Object]");
  EXPECT_EQ(parse(R"({"event":[],"payload":"1"})").event.event(), "");
  EXPECT_EQ(parse(R"({"event":["up",null,"date"],"payload":"1"})").event.event(), "up,,date");
  EXPECT_EQ(parse(R"({"event":"0","payload":"1"})").event.event(), "0");
  EXPECT_EQ(parse(R"({"event":5,"payload":"1"})").verdict, RedisMessageVerdict::deliver);
}

TEST(RedisMessage, NonStringUpdateEventGetsNoStatusFacts) {
  // The reference compares event === 'update'; ["update"] prints as update but is not one.
  const Parsed parsed = parse(R"({"event":["update"],"payload":{"account":{"id":"1"},"mentions":[],"media_attachments":[]}})");
  EXPECT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.event(), "update");
  EXPECT_FALSE(parsed.event.has_status());
}

TEST(RedisMessage, MissingOrFalsyPayloadIsSystemOnly) {
  for (const char* text : {R"({"event":"update"})", R"({"event":"update","payload":null})",
                           R"({"event":"update","payload":false})", R"({"event":"update","payload":0})",
                           R"({"event":"update","payload":0.0})", R"({"event":"update","payload":""})"}) {
    const Parsed parsed = parse(text);
    EXPECT_EQ(parsed.verdict, RedisMessageVerdict::system_only) << text;
    EXPECT_EQ(parsed.event.event(), "update");
    EXPECT_EQ(parsed.event.payload(), "");
    EXPECT_FALSE(parsed.event.has_status());
  }
}

TEST(RedisMessage, TruthyNonObjectPayloadsAreStringified) {
  EXPECT_EQ(parse(R"({"event":"x","payload":1})").event.payload(), "1");
  EXPECT_EQ(parse(R"({"event":"x","payload":-1.50})").event.payload(), "-1.5");
  EXPECT_EQ(parse(R"({"event":"x","payload":true})").event.payload(), "true");
  EXPECT_EQ(parse(R"({"event":"x","payload":[]})").event.payload(), "[]");
  EXPECT_EQ(parse(R"({"event":"x","payload":{}})").event.payload(), "{}");
  EXPECT_EQ(parse(R"({"event":"x","payload":[1, "\u003c", {"a" : null}]})").event.payload(), R"([1,"<",{"a":null}])");
  EXPECT_EQ(parse(R"({"event":"x","payload":"0"})").event.payload(), "0");
}

TEST(RedisMessage, QueuedAtIsIgnored) {
  const Parsed parsed = parse(R"({"event":"announcement","payload":{"id":"5","queued_at":1},"queued_at":1768474800000})");
  ASSERT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.payload(), R"({"id":"5","queued_at":1})");  // only the envelope's is dropped
}

TEST(RedisMessage, DuplicateEnvelopeKeysLastWins) {
  const Parsed parsed = parse(R"({"event":"kill","payload":"a","event":"delete","payload":"b"})");
  EXPECT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.event(), "delete");
  EXPECT_EQ(parsed.event.payload(), "b");
}

TEST(RedisMessage, InvalidUtf8IsDecodedLikeNode) {
  // ioredis hands the handler a string decoded with U+FFFD replacements.
  const Parsed parsed = parse("{\"event\":\"delete\",\"payload\":\"a\xFF" "b\"}");
  ASSERT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.payload(), "a\xEF\xBF\xBD" "b");
}

TEST(RedisMessage, DeepNestingIsRefusedWithoutCrashing) {
  EXPECT_EQ(parse(std::string(200'000, '[')).verdict, RedisMessageVerdict::invalid_json);
  std::string deep = R"({"event":"x","payload":)";
  for (int i = 0; i < 100'000; ++i) deep += R"({"a":)";
  deep += "1";
  deep += std::string(100'000, '}');
  deep += "}";
  EXPECT_EQ(parse(deep).verdict, RedisMessageVerdict::invalid_json);
}

TEST(RedisMessage, NestingUpToTheLimitIsAccepted) {
  auto nested = [](int levels) {
    std::string text = R"({"event":"x","payload":)";
    text += std::string(static_cast<std::size_t>(levels - 1), '[');
    text += std::string(static_cast<std::size_t>(levels - 1), ']');
    return text + "}";
  };
  const Parsed ok = parse(nested(512));  // envelope + 511 arrays
  ASSERT_EQ(ok.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(ok.event.payload(), std::string(511, '[') + std::string(511, ']'));
  EXPECT_EQ(parse(nested(513)).verdict, RedisMessageVerdict::invalid_json);
}

TEST(RedisMessage, ReusedEventIsClearedFirst) {
  ChannelEvent event;
  EXPECT_EQ(parse_redis_message("timeline:public", kUpdatePublic, event), RedisMessageVerdict::deliver);
  EXPECT_EQ(parse_redis_message("timeline:1", R"({"event":"kill"})", event), RedisMessageVerdict::system_only);
  EXPECT_EQ(event.channel(), "timeline:1");
  EXPECT_EQ(event.payload(), "");
  EXPECT_FALSE(event.has_status());
  EXPECT_EQ(parse_redis_message("timeline:1", "]", event), RedisMessageVerdict::invalid_json);
  EXPECT_EQ(event.event(), "");
}

// ---- status facts (docs/protocol.md#status-fields-used) ----

TEST(StatusFacts, OnlyForUpdateAndStatusUpdateWithObjectPayload) {
  EXPECT_TRUE(parse(status_message("", "update")).event.has_status());
  EXPECT_TRUE(parse(status_message("", "status.update")).event.has_status());
  EXPECT_FALSE(parse(status_message("", "notification")).event.has_status());
  EXPECT_FALSE(parse(status_message("", "conversation")).event.has_status());
  EXPECT_FALSE(parse(R"({"event":"update","payload":"1"})").event.has_status());
  EXPECT_FALSE(parse(R"({"event":"update","payload":[1]})").event.has_status());
}

TEST(StatusFacts, OnlyOnTheChannelsOfFilteredStreams) {
  for (const char* channel : {"timeline:public", "timeline:public:local:media", "timeline:public:remote",
                              "timeline:hashtag:cafe", "timeline:hashtag:cafe:local"}) {
    EXPECT_TRUE(parse(status_message(""), channel).event.has_status()) << channel;
  }
  // A home timeline, a list, direct messages: their statuses go out unchanged.
  for (const char* channel : {"timeline:1", "timeline:1:notifications", "timeline:list:5", "timeline:direct:1",
                              "timeline:publicity", "timeline:hashtag"}) {
    const Parsed parsed = parse(status_message(""), channel);
    EXPECT_EQ(parsed.verdict, RedisMessageVerdict::deliver) << channel;
    EXPECT_FALSE(parsed.event.has_status()) << channel;
    EXPECT_FALSE(parsed.event.payload().empty()) << channel;
  }
}

TEST(StatusFacts, WellFormedNeedsAccountIdMentionsAndMedia) {
  const char* broken[] = {
      R"({"mentions":[],"media_attachments":[]})",
      R"({"account":"10","mentions":[],"media_attachments":[]})",
      R"({"account":{},"mentions":[],"media_attachments":[]})",
      R"({"account":{"id":null},"mentions":[],"media_attachments":[]})",
      R"({"account":{"id":true},"mentions":[],"media_attachments":[]})",
      R"({"account":{"id":"10"},"media_attachments":[]})",
      R"({"account":{"id":"10"},"mentions":{},"media_attachments":[]})",
      R"({"account":{"id":"10"},"mentions":[]})",
      R"({"account":{"id":"10"},"mentions":[],"media_attachments":null})",
      R"({"account":{"id":"10"},"mentions":[null],"media_attachments":[]})",
      R"({"account":{"id":"10"},"mentions":[{"acct":"x"}],"media_attachments":[]})",
  };
  for (const char* payload : broken) {
    const Parsed parsed = parse(std::string(R"({"event":"update","payload":)") + payload + "}");
    EXPECT_EQ(parsed.verdict, RedisMessageVerdict::deliver) << payload;
    ASSERT_TRUE(parsed.event.has_status()) << payload;
    EXPECT_FALSE(parsed.event.status().well_formed()) << payload;
  }
  const Parsed good = parse(R"({"event":"update","payload":{"account":{"id":"10"},"mentions":[],"media_attachments":[]}})");
  EXPECT_TRUE(good.event.status().well_formed());
}

TEST(StatusFacts, NumericIdsUseJavaScriptNumberText) {
  const Parsed parsed = parse(
      R"({"event":"update","payload":{"account":{"id":123},"mentions":[{"id":9007199254740993},{"id":1.5},{"id":"7"}],"media_attachments":[]}})");
  const auto& status = parsed.event.status();
  EXPECT_TRUE(status.well_formed());
  EXPECT_EQ(status.account_id(), "123");
  EXPECT_EQ(status.account_id_num(), 123);
  ASSERT_EQ(status.mention_ids_size(), 3);
  EXPECT_EQ(status.mention_ids(0), "9007199254740992");
  EXPECT_EQ(status.mention_ids(1), "1.5");
  EXPECT_EQ(status.mention_ids(2), "7");
  ASSERT_EQ(status.mention_ids_num_size(), 3);
  EXPECT_EQ(status.mention_ids_num(0), 9007199254740992);
  EXPECT_EQ(status.mention_ids_num(1), 0);
  EXPECT_EQ(status.mention_ids_num(2), 7);
}

TEST(StatusFacts, NonNumericOrOverflowingIdsAreZero) {
  const Parsed parsed = parse(
      R"({"event":"update","payload":{"account":{"id":"abc"},"mentions":[{"id":"99999999999999999999"},{"id":"12x"},{"id":""},{"id":"9223372036854775807"}],"media_attachments":[]}})");
  const auto& status = parsed.event.status();
  EXPECT_EQ(status.account_id(), "abc");
  EXPECT_EQ(status.account_id_num(), 0);
  ASSERT_EQ(status.mention_ids_num_size(), 4);
  EXPECT_EQ(status.mention_ids_num(0), 0);
  EXPECT_EQ(status.mention_ids_num(1), 0);
  EXPECT_EQ(status.mention_ids_num(2), 0);
  EXPECT_EQ(status.mention_ids_num(3), INT64_MAX);
}

TEST(StatusFacts, MentionsKeepOrderAndDuplicates) {
  const Parsed parsed = parse(status_message("").replace(
      status_message("").find(R"("mentions":[])"), 13, R"("mentions":[{"id":"3"},{"id":"2"},{"id":"3"}])"));
  const auto& status = parsed.event.status();
  ASSERT_EQ(status.mention_ids_size(), 3);
  EXPECT_EQ(status.mention_ids(0), "3");
  EXPECT_EQ(status.mention_ids(1), "2");
  EXPECT_EQ(status.mention_ids(2), "3");
  EXPECT_EQ(status.mention_ids_num(2), 3);
}

TEST(StatusFacts, UsernameAndAcctAreStringsOnly) {
  const Parsed parsed = parse(
      R"({"event":"update","payload":{"account":{"id":"1","username":5,"acct":"bob@remote.example"},"mentions":[],"media_attachments":[]}})");
  EXPECT_EQ(parsed.event.status().account_username(), "");
  EXPECT_EQ(parsed.event.status().account_acct(), "bob@remote.example");
}

TEST(StatusFacts, LanguageOnlyWhenAString) {
  EXPECT_FALSE(parse(status_message(R"(,"language":null)")).event.status().has_language());
  EXPECT_FALSE(parse(status_message(R"(,"language":5)")).event.status().has_language());
  EXPECT_FALSE(parse(status_message("")).event.status().has_language());
  const Parsed empty = parse(status_message(R"(,"language":"")"));
  ASSERT_TRUE(empty.event.status().has_language());
  EXPECT_EQ(empty.event.status().language(), "");
}

TEST(StatusFacts, HasFilteredIsKeyPresence) {
  EXPECT_TRUE(parse(status_message(R"(,"filtered":null)")).event.status().has_filtered());
  EXPECT_TRUE(parse(status_message(R"(,"filtered":[])")).event.status().has_filtered());
  EXPECT_FALSE(parse(status_message("")).event.status().has_filtered());
}

// ---- filter text (docs/protocol.md#searched-text) ----

TEST(FilterText, JoinsSpoilerContentPollTitlesAndDescriptions) {
  EXPECT_EQ(filter_text_of(
                R"({"spoiler_text":"CW","content":"body","poll":{"options":[{"title":"yes"},{"title":"no"}]},"media_attachments":[{"description":"pic"},{"description":null},{}]})"),
            "CW\n\nbody\n\nyes\n\nno\n\npic\n\n\n\n");
}

TEST(FilterText, FalsySpoilerAndMissingContentAreEmpty) {
  EXPECT_EQ(filter_text_of(R"({"spoiler_text":null,"media_attachments":[]})"), "\n\n");
  EXPECT_EQ(filter_text_of(R"({"spoiler_text":0,"content":null,"media_attachments":[]})"), "\n\n");
  EXPECT_EQ(filter_text_of(R"({"content":"x","poll":null,"media_attachments":[]})"), "\n\nx");
  EXPECT_EQ(filter_text_of(R"({"content":"x","poll":{"options":null},"media_attachments":[]})"), "\n\nx");
  EXPECT_EQ(filter_text_of(R"({"content":"x","poll":{},"media_attachments":[]})"), "\n\nx");
}

TEST(FilterText, NonStringValuesPrintAsJavaScriptString) {
  EXPECT_EQ(filter_text_of(R"({"spoiler_text":1.5,"content":true,"media_attachments":[{"description":7}]})"),
            "1.5\n\ntrue\n\n7");
}

TEST(FilterText, LineBreakTags) {
  EXPECT_EQ(content_text(R"("a<br>b<br/>c<br />d<br  \t\n/>e")"), "\n\na\nb\nc\nd\ne");
  EXPECT_EQ(content_text("\"a<br\u00a0\u3000>b\""), "\n\na\nb");  // JS \\s includes Unicode spaces
  EXPECT_EQ(content_text(R"("a<BR>b<Br/>c")"), "\n\nabc");         // case-sensitive: just a tag
  EXPECT_EQ(content_text(R"("a<br x>b<br//>c")"), "\n\nabc");
  EXPECT_EQ(content_text(R"("a<brb>c")"), "\n\nac");
}

TEST(FilterText, ParagraphBreaks) {
  EXPECT_EQ(content_text(R"("<p>one</p><p>two</p><p>three</p>")"), "\n\none\n\ntwo\n\nthree");
  EXPECT_EQ(content_text(R"("<p>one</p> <p>two</p>")"), "\n\none two");
  EXPECT_EQ(content_text(R"("<p>a<br></p><p>b</p>")"), "\n\na\n\n\nb");
}

TEST(FilterText, EntitiesAreDecoded) {
  EXPECT_EQ(content_text(R"("&lt;b&gt; &amp; &eacute; &#x1F600; &#39; &quot; &nbsp;.")"),
            "\n\n<b> & \xC3\xA9 \xF0\x9F\x98\x80 ' \" \xC2\xA0.");
}

TEST(FilterText, ScriptAndStyleTextIsKeptCommentsAreNot) {
  EXPECT_EQ(content_text(R"("<script>alert(1)</script>x<style>p{}</style><!-- hidden -->y")"), "\n\nalert(1)xp{}y");
}

TEST(FilterText, TemplateContentsAreNotText) {
  EXPECT_EQ(content_text(R"("a<template>hidden</template>b")"), "\n\nab");
}

TEST(FilterText, PlainTextNeedsNoParsing) {
  EXPECT_EQ(content_text(R"("just text > 1")"), "\n\njust text > 1");
}

TEST(FilterText, CarriageReturnsAreNormalised) {
  EXPECT_EQ(content_text(R"("<b>a</b>\r\nb\rc")"), "\n\na\nb\nc");
}

TEST(FilterText, MalformedHtmlStillGivesText) {
  EXPECT_EQ(content_text(R"("<p>open <b>bold <i>both</p> after")"), "\n\nopen bold both after");
  EXPECT_EQ(content_text(R"("a < b && c > d")"), "\n\na < b && c > d");
  EXPECT_EQ(content_text(R"("<table>x<tr><td>y</td></tr></table>z")"), "\n\nxyz");
}

TEST(FilterText, DeeplyNestedHtmlDoesNotCrash) {
  std::string content;
  // gumbo's own tree destruction recurses once per level and overflows the
  // stack at about this depth; the parser must not.
  for (int i = 0; i < 600'000; ++i) content += "<span>";
  content += "deep";
  const std::string message = std::string(R"({"event":"update","payload":{"content":")") + content +
                              R"(","account":{"id":"1"},"mentions":[],"media_attachments":[]}})";
  const Parsed parsed = parse(message);
  ASSERT_EQ(parsed.verdict, RedisMessageVerdict::deliver);
  EXPECT_EQ(parsed.event.status().filter_text(), "\n\ndeep");
}

}  // namespace
}  // namespace sluice
