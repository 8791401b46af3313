// Per-viewer rules on public and hashtag streams: relations (docs/protocol.md#relations) and
// keyword filters (docs/protocol.md#keyword-filters), pinned with exact outputs.
#include "gateway/status_filter.hpp"

#define PCRE2_CODE_UNIT_WIDTH 8
#include <gtest/gtest.h>
#include <pcre2.h>

#include <atomic>
#include <random>
#include <regex>
#include <thread>

namespace sluice::gateway {
namespace {

using sluice::v1::CustomFilter;
using sluice::v1::FiltersReply;
using sluice::v1::RelationsReply;
using sluice::v1::StatusFacts;

constexpr int64_t kNow = 1769860800000;  // 2026-01-31T12:00:00.000Z

// ---------------------------------------------------------------- relations

StatusFacts status_by(int64_t author, const std::string& acct, std::vector<int64_t> mentions = {}) {
  StatusFacts facts;
  facts.set_well_formed(true);
  facts.set_account_id(std::to_string(author));
  facts.set_account_id_num(author);
  auto at = acct.find('@');
  facts.set_account_username(at == std::string::npos ? acct : acct.substr(0, at));
  facts.set_account_acct(acct);
  for (int64_t m : mentions) {
    facts.add_mention_ids(std::to_string(m));
    facts.add_mention_ids_num(m);
  }
  return facts;
}

std::shared_ptr<const Relations> relations(std::vector<int64_t> blocking, std::vector<int64_t> blocked_by,
                                           std::vector<int64_t> muting, std::vector<std::string> domains) {
  RelationsReply reply;
  for (auto id : blocking) reply.add_blocking(id);
  for (auto id : blocked_by) reply.add_blocked_by(id);
  for (auto id : muting) reply.add_muting(id);
  for (auto& d : domains) reply.add_blocked_domains(d);
  return Relations::from_reply(reply);
}

constexpr int64_t kViewer = 100;

TEST(Relations, FromReplyFillsEverySetAndKeepsDuplicatesHarmless) {
  auto r = relations({2, 1, 2}, {3}, {5, 4, 4}, {"a.example", "a.example", "B.example"});
  EXPECT_EQ(r->blocking, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ(r->blocked_by, (std::vector<int64_t>{3}));
  EXPECT_EQ(r->muting, (std::vector<int64_t>{4, 5}));
  EXPECT_EQ(r->blocked_domains, (std::vector<std::string>{"B.example", "a.example"}));
}

// The sets are searched, not scanned: every member of a large set given in no order
// is found, and nothing between them.
TEST(Relations, LargeSetsInAnyOrderFindEveryMemberAndNothingElse) {
  std::vector<int64_t> odd;
  for (int64_t id = 399; id > 0; id -= 2) odd.push_back(id);
  std::vector<std::string> domains;
  for (int i = 99; i >= 0; --i) domains.push_back("d" + std::to_string(i) + ".example");
  auto blocking = relations(odd, {}, {}, {});
  auto blocked_by = relations({}, odd, {}, {});
  auto muting = relations({}, {}, odd, {});
  auto domain_blocks = relations({}, {}, {}, domains);
  for (int64_t id = 1; id <= 400; ++id) {
    bool member = id % 2 == 1;
    EXPECT_EQ(relations_drop(*blocking, status_by(id, "a")), member) << id;
    EXPECT_EQ(relations_drop(*blocking, status_by(1000, "a", {id})), member) << id;
    EXPECT_EQ(relations_drop(*blocked_by, status_by(id, "a")), member) << id;
    EXPECT_EQ(relations_drop(*muting, status_by(1000, "a", {id})), member) << id;
  }
  for (int i = 0; i < 100; ++i) {
    EXPECT_TRUE(relations_drop(*domain_blocks, status_by(7, "a@d" + std::to_string(i) + ".example"))) << i;
    EXPECT_FALSE(relations_drop(*domain_blocks, status_by(7, "a@e" + std::to_string(i) + ".example"))) << i;
  }
}

TEST(Relations, NoRelationsKeepsEverything) {
  auto r = relations({}, {}, {}, {});
  EXPECT_FALSE(relations_drop(*r, status_by(7, "alice")));
  EXPECT_FALSE(relations_drop(*r, status_by(7, "bob@remote.example", {8, 9})));
  // The viewer's own status: no special case either way.
  EXPECT_FALSE(relations_drop(*r, status_by(kViewer, "me", {kViewer})));
}

TEST(Relations, ViewerBlockingAuthorOrAnyMentionDrops) {
  auto r = relations({7}, {}, {}, {});
  EXPECT_TRUE(relations_drop(*r, status_by(7, "alice")));
  EXPECT_TRUE(relations_drop(*r, status_by(8, "bob", {7})));
  EXPECT_TRUE(relations_drop(*r, status_by(8, "bob", {1, 2, 7})));
  EXPECT_FALSE(relations_drop(*r, status_by(8, "bob", {1, 2, 3})));
}

TEST(Relations, ViewerMutingAuthorOrAnyMentionDrops) {
  auto r = relations({}, {}, {7}, {});
  EXPECT_TRUE(relations_drop(*r, status_by(7, "alice")));
  EXPECT_TRUE(relations_drop(*r, status_by(8, "bob", {9, 7})));
  EXPECT_FALSE(relations_drop(*r, status_by(8, "bob", {9})));
}

TEST(Relations, AuthorBlockingViewerDropsButMentionedBlockerDoesNot) {
  auto r = relations({}, {7}, {}, {});
  EXPECT_TRUE(relations_drop(*r, status_by(7, "alice", {8})));
  // Query (a) checks `account_id = author AND target = viewer` only for the author.
  EXPECT_FALSE(relations_drop(*r, status_by(8, "bob", {7})));
}

TEST(Relations, DuplicateMentionsAreHarmless) {
  auto blocked = relations({5}, {}, {}, {});
  EXPECT_TRUE(relations_drop(*blocked, status_by(8, "bob", {5, 5, 5})));
  auto none = relations({6}, {}, {}, {});
  EXPECT_FALSE(relations_drop(*none, status_by(8, "bob", {5, 5, 8, 8})));
}

TEST(Relations, DomainBlockMatchesTextAfterFirstAtExactly) {
  auto r = relations({}, {}, {}, {"remote.example"});
  EXPECT_TRUE(relations_drop(*r, status_by(7, "bob@remote.example")));
  EXPECT_FALSE(relations_drop(*r, status_by(7, "bob@Remote.example")));  // case-sensitive
  EXPECT_FALSE(relations_drop(*r, status_by(7, "bob@sub.remote.example")));  // no suffix match
  EXPECT_FALSE(relations_drop(*r, status_by(7, "bob@remote.example.")));
  EXPECT_FALSE(relations_drop(*r, status_by(7, "remote.example")));  // local: no domain at all
  // The mentioned accounts' domains play no part.
  EXPECT_FALSE(relations_drop(*r, status_by(7, "bob@other.example", {8})));
}

TEST(Relations, DomainIsEverythingAfterTheFirstAt) {
  auto r = relations({}, {}, {}, {"b@c", "b"});
  StatusFacts s = status_by(7, "a@b@c");
  auto only_b = relations({}, {}, {}, {"b"});
  EXPECT_TRUE(relations_drop(*r, s));
  EXPECT_FALSE(relations_drop(*only_b, s));
}

TEST(Relations, EmptyDomainChecksNothing) {
  auto r = relations({}, {}, {}, {""});
  EXPECT_FALSE(relations_drop(*r, status_by(7, "bob@")));
  EXPECT_FALSE(relations_drop(*r, status_by(7, "bob")));
  auto upper = relations({}, {}, {}, {"REMOTE.EXAMPLE"});
  EXPECT_TRUE(relations_drop(*upper, status_by(7, "x@REMOTE.EXAMPLE")));
  EXPECT_FALSE(relations_drop(*upper, status_by(7, "x@remote.example")));
}

TEST(Relations, NonNumericIdsDropEvenWithoutRelations) {
  auto r = relations({}, {}, {}, {});
  StatusFacts author = status_by(7, "alice");
  author.set_account_id("abc");
  author.set_account_id_num(0);
  EXPECT_TRUE(relations_drop(*r, author));
  StatusFacts mention = status_by(7, "alice", {8, 9});
  mention.set_mention_ids(1, "x9");
  mention.set_mention_ids_num(1, 0);
  EXPECT_TRUE(relations_drop(*r, mention));
}

TEST(Relations, EveryKindTogether) {
  auto r = relations({1}, {2}, {3}, {"d.example"});
  EXPECT_TRUE(relations_drop(*r, status_by(1, "a")));
  EXPECT_TRUE(relations_drop(*r, status_by(2, "a")));
  EXPECT_TRUE(relations_drop(*r, status_by(3, "a")));
  EXPECT_TRUE(relations_drop(*r, status_by(4, "a@d.example")));
  EXPECT_TRUE(relations_drop(*r, status_by(4, "a", {1})));
  EXPECT_TRUE(relations_drop(*r, status_by(4, "a", {3})));
  EXPECT_FALSE(relations_drop(*r, status_by(4, "a", {2})));
  EXPECT_FALSE(relations_drop(*r, status_by(4, "a@e.example", {5, 6})));
}

// The digests never rule out a drop: over random sets and statuses, every status
// relations_drop drops has a digest that overlaps the sets'. Ids are drawn from a
// small range so that statuses hit the sets often, and from a wide one so that
// consecutive and distant ids both occur.
TEST(RelationsDigest, RandomizedDropsAlwaysOverlap) {
  std::mt19937_64 rng(2026);
  auto id = [&]() -> int64_t {
    return rng() % 2 ? static_cast<int64_t>(1 + rng() % 40) : static_cast<int64_t>(rng() >> 1);
  };
  auto ids = [&](size_t most) {
    std::vector<int64_t> out(rng() % (most + 1));
    for (auto& v : out) v = id();
    return out;
  };
  auto domain = [&] { return "d" + std::to_string(rng() % 30) + ".example"; };
  int drops = 0, keeps = 0;
  for (int round = 0; round < 20000; ++round) {
    std::vector<std::string> domains(rng() % 4);
    for (auto& d : domains) d = domain();
    auto sets = relations(ids(12), ids(3), ids(12), domains);
    std::vector<int64_t> mentions = ids(3);
    std::string acct = rng() % 2 ? "a@" + domain() : "a";
    if (rng() % 50 == 0) acct = "a@";
    StatusFacts status = status_by(id(), acct, mentions);
    if (rng() % 200 == 0) status.set_account_id_num(0);
    if (!mentions.empty() && rng() % 200 == 0) status.set_mention_ids_num(0, 0);
    const bool dropped = relations_drop(*sets, status);
    (dropped ? drops : keeps)++;
    if (dropped) {
      ASSERT_TRUE(RelationsDigest::of(status).overlaps(RelationsDigest::of(*sets))) << round;
      ASSERT_TRUE(RelationsDigest::of(*sets).overlaps(RelationsDigest::of(status))) << round;
    }
  }
  EXPECT_GT(drops, 2000);
  EXPECT_GT(keeps, 2000);
}

// ...and they rule out most statuses whose keys are not among a viewer's few: a digest
// that overlapped everything would keep every check as costly as before.
TEST(RelationsDigest, KeysOutsideAFewSetsRarelyOverlap) {
  auto sets = relations({101, 102, 103, 104}, {205}, {301, 302, 303, 304}, {"blocked.example", "spam.example"});
  const RelationsDigest viewer = RelationsDigest::of(*sets);
  int overlapping = 0;
  const int statuses = 10000;
  for (int i = 0; i < statuses; ++i) {
    StatusFacts status = status_by(100000 + i, "a@host" + std::to_string(i) + ".example", {200000 + i});
    ASSERT_FALSE(relations_drop(*sets, status));
    if (RelationsDigest::of(status).overlaps(viewer)) ++overlapping;
  }
  // 11 keys set at most 11 of 256 bits; a status brings 3 keys: about 12 % expected.
  EXPECT_LT(overlapping, statuses / 5);
}

TEST(RelationsDigest, ANonNumericIdOverlapsEvenNoRelations) {
  const RelationsDigest none = RelationsDigest::of(*relations({}, {}, {}, {}));
  EXPECT_FALSE(RelationsDigest::of(status_by(7, "alice", {8})).overlaps(none));
  StatusFacts author = status_by(7, "alice");
  author.set_account_id_num(0);
  EXPECT_TRUE(RelationsDigest::of(author).overlaps(none));
  EXPECT_TRUE(none.overlaps(RelationsDigest::of(author)));
  StatusFacts mention = status_by(7, "alice", {8, 9});
  mention.set_mention_ids_num(1, 0);
  EXPECT_TRUE(RelationsDigest::of(mention).overlaps(none));
}

TEST(RelationsDigest, TheAuthorsDomainIsTakenAsTheCheckReadsIt) {
  const RelationsDigest blocked = RelationsDigest::of(*relations({}, {}, {}, {"b@c.example"}));
  // Everything after the first '@'.
  EXPECT_TRUE(RelationsDigest::of(status_by(7, "a@b@c.example")).overlaps(blocked));
  EXPECT_TRUE(relations_drop(*relations({}, {}, {}, {"b@c.example"}), status_by(7, "a@b@c.example")));
}

// ---------------------------------------------------------------- filters

struct Kw {
  std::string keyword;
  bool whole_word = false;
};

CustomFilter make_filter(const std::string& id, const std::string& title, std::vector<Kw> keywords, int action = 0,
                         std::vector<std::string> context = {"public"}, std::optional<int64_t> expires = {}) {
  CustomFilter f;
  f.set_id(id);
  f.set_title(title);
  for (auto& c : context) f.add_context(c);
  if (expires) {
    f.set_has_expires_at(true);
    f.set_expires_at_ms(*expires);
  }
  f.set_action(action);
  for (auto& k : keywords) {
    auto* kw = f.add_keywords();
    kw->set_keyword(k.keyword);
    kw->set_whole_word(k.whole_word);
  }
  return f;
}

std::shared_ptr<const CompiledFilters> compile(std::vector<CustomFilter> filters) {
  FiltersReply reply;
  for (auto& f : filters) *reply.add_filters() = f;
  return CompiledFilters::compile(reply);
}

// The single-filter output for filter id 1 titled "T", context ["public"], warn.
std::string one(const std::string& match) {
  return R"([{"filter":{"id":"1","title":"T","context":["public"],"expires_at":null,"filter_action":"warn"},"keyword_matches":[")" +
         match + R"("],"status_matches":null}])";
}

// Evaluates one filter with the given keywords against `text`.
std::string run(std::vector<Kw> keywords, const std::string& text) {
  return compile({make_filter("1", "T", std::move(keywords))})->evaluate(text, kNow);
}

TEST(CompiledFilters, NoFiltersGiveEmptyArray) {
  auto filters = compile({});
  EXPECT_TRUE(filters->digest().none());
  EXPECT_EQ(filters->evaluate("anything", kNow), "[]");
  EXPECT_FALSE(compile({make_filter("1", "T", {{"x"}})})->digest().none());
}

TEST(CompiledFilters, WarnMatchExactJson) {
  auto filters = compile({make_filter("42", "Spoilers", {{"dragon"}}, 0, {"home", "public"})});
  EXPECT_EQ(filters->evaluate("Here be Dragons today", kNow),
            R"([{"filter":{"id":"42","title":"Spoilers","context":["home","public"],"expires_at":null,"filter_action":"warn"},"keyword_matches":["Dragon"],"status_matches":null}])");
  EXPECT_EQ(filters->evaluate("no match here", kNow), "[]");
}

TEST(CompiledFilters, ActionHideAndUnknownActionsOmitTheKey) {
  EXPECT_EQ(compile({make_filter("1", "T", {{"a"}}, 1)})->evaluate("a", kNow),
            R"([{"filter":{"id":"1","title":"T","context":["public"],"expires_at":null,"filter_action":"hide"},"keyword_matches":["a"],"status_matches":null}])");
  const std::string omitted =
      R"([{"filter":{"id":"1","title":"T","context":["public"],"expires_at":null},"keyword_matches":["a"],"status_matches":null}])";
  EXPECT_EQ(compile({make_filter("1", "T", {{"a"}}, 2)})->evaluate("a", kNow), omitted);
  EXPECT_EQ(compile({make_filter("1", "T", {{"a"}}, -1)})->evaluate("a", kNow), omitted);
  EXPECT_EQ(compile({make_filter("1", "T", {{"a"}}, 7)})->evaluate("a", kNow), omitted);
}

TEST(CompiledFilters, ContextIsRenderedAsStoredAndIgnoredForMatching) {
  EXPECT_EQ(compile({make_filter("1", "T", {{"a"}}, 0, {"home"})})->evaluate("a", kNow),
            R"([{"filter":{"id":"1","title":"T","context":["home"],"expires_at":null,"filter_action":"warn"},"keyword_matches":["a"],"status_matches":null}])");
  EXPECT_EQ(compile({make_filter("1", "T", {{"a"}}, 0, {})})->evaluate("a", kNow),
            R"([{"filter":{"id":"1","title":"T","context":[],"expires_at":null,"filter_action":"warn"},"keyword_matches":["a"],"status_matches":null}])");
  EXPECT_EQ(compile({make_filter("1", "T", {{"a"}}, 0, {"notifications", "thread", "account", "public", "home"})})
                ->evaluate("a", kNow),
            R"([{"filter":{"id":"1","title":"T","context":["notifications","thread","account","public","home"],"expires_at":null,"filter_action":"warn"},"keyword_matches":["a"],"status_matches":null}])");
}

TEST(CompiledFilters, ExpiresAtIsIsoWithMillisecondsAndExpiredFiltersAreSkipped) {
  auto filters = compile({make_filter("1", "Later", {{"a"}}, 0, {"public"}, kNow + 1),
                          make_filter("2", "Now", {{"a"}}, 1, {"public"}, kNow),
                          make_filter("3", "Past", {{"a"}}, 0, {"public"}, kNow - 1)});
  EXPECT_EQ(filters->evaluate("a", kNow),
            R"([{"filter":{"id":"1","title":"Later","context":["public"],"expires_at":"2026-01-31T12:00:00.001Z","filter_action":"warn"},"keyword_matches":["a"],"status_matches":null},)"
            R"({"filter":{"id":"2","title":"Now","context":["public"],"expires_at":"2026-01-31T12:00:00.000Z","filter_action":"hide"},"keyword_matches":["a"],"status_matches":null}])");
  // One millisecond later the second has expired too; much later, all of them.
  EXPECT_EQ(filters->evaluate("a", kNow + 1),
            R"([{"filter":{"id":"1","title":"Later","context":["public"],"expires_at":"2026-01-31T12:00:00.001Z","filter_action":"warn"},"keyword_matches":["a"],"status_matches":null}])");
  EXPECT_EQ(filters->evaluate("a", kNow + 2), "[]");
  // Long ago everything was live.
  EXPECT_NE(filters->evaluate("a", 0).find(R"("id":"3")"), std::string::npos);
}

TEST(CompiledFilters, IsoStringFormatting) {
  EXPECT_EQ(detail::js_iso_string(0), "1970-01-01T00:00:00.000Z");
  EXPECT_EQ(detail::js_iso_string(kNow), "2026-01-31T12:00:00.000Z");
  EXPECT_EQ(detail::js_iso_string(951868799123), "2000-02-29T23:59:59.123Z");
  EXPECT_EQ(detail::js_iso_string(-1), "1969-12-31T23:59:59.999Z");
  EXPECT_EQ(detail::js_iso_string(253402300800000), "+010000-01-01T00:00:00.000Z");
  EXPECT_EQ(detail::js_iso_string(-62198755200000), "-000001-01-01T00:00:00.000Z");
  EXPECT_EQ(detail::js_iso_string(-62167219200000), "0000-01-01T00:00:00.000Z");
}

TEST(CompiledFilters, FiltersKeepReplyOrderAndOnlyMatchingOnesAppear) {
  auto filters = compile({make_filter("9", "Nine", {{"zeta"}}), make_filter("3", "Three", {{"nomatch"}}),
                          make_filter("5", "Five", {{"alpha"}}, 1)});
  EXPECT_EQ(filters->evaluate("alpha and zeta", kNow),
            R"([{"filter":{"id":"9","title":"Nine","context":["public"],"expires_at":null,"filter_action":"warn"},"keyword_matches":["zeta"],"status_matches":null},)"
            R"({"filter":{"id":"5","title":"Five","context":["public"],"expires_at":null,"filter_action":"hide"},"keyword_matches":["alpha"],"status_matches":null}])");
}

TEST(CompiledFilters, EmptyTextMatchesNothingEvenTheEmptyKeyword) {
  EXPECT_EQ(run({{""}}, ""), "[]");
  EXPECT_EQ(run({{"a"}}, ""), "[]");
}

TEST(CompiledFilters, EmptyKeywordMatchesEmptyStringAtStart) {
  EXPECT_EQ(run({{""}}, "hello"), one(""));
  EXPECT_EQ(run({{"", true}}, "hello"), one(""));
  // Alternation: an earlier keyword matching at position 0 wins; a later one does not.
  EXPECT_EQ(run({{"he"}, {""}}, "hello"), one("he"));
  EXPECT_EQ(run({{"llo"}, {""}}, "hello"), one(""));
  EXPECT_EQ(detail::filter_regex_source(make_filter("1", "T", {{"a"}, {""}, {"", true}})), "a||");
}

TEST(CompiledFilters, FirstMatchOnlyInOriginalCase) {
  EXPECT_EQ(run({{"foo"}}, "Foo foo FOO"), one("Foo"));
  EXPECT_EQ(run({{"FOO"}}, "xx fOo"), one("fOo"));
  // Leftmost position first, then keyword order at equal positions.
  EXPECT_EQ(run({{"zzz"}, {"aaa"}}, "aaa zzz"), one("aaa"));
  EXPECT_EQ(run({{"foo"}, {"foobar"}}, "foobar"), one("foo"));
  EXPECT_EQ(run({{"foobar"}, {"foo"}}, "foobar"), one("foobar"));
}

TEST(CompiledFilters, RegexSourceEscapesEveryMetacharacter) {
  EXPECT_EQ(detail::filter_regex_source(make_filter("1", "T", {{".*+?^${}()|[]\\"}})),
            R"(\.\*\+\?\^\$\{\}\(\)\|\[\]\\)");
  EXPECT_EQ(detail::filter_regex_source(make_filter("1", "T", {{"a-b/c#d"}})), "a-b/c#d");
  EXPECT_EQ(detail::filter_regex_source(make_filter("1", "T", {{"#tag", true}, {"foo", true}, {"a.b"}, {".x.", true},
                                                                {"x.", true}, {"$5", true}, {"é", true}})),
            R"(#tag\b|\bfoo\b|a\.b|\.x\.|\bx\.|\$5\b|é)");
}

TEST(CompiledFilters, MetacharactersMatchLiterally) {
  EXPECT_EQ(run({{"c++"}}, "I love C++!"), one("C++"));
  EXPECT_EQ(run({{"a.b"}}, "axb"), "[]");
  EXPECT_EQ(run({{"a.b"}}, "xa.by"), one("a.b"));
  EXPECT_EQ(run({{"(x)"}}, "x (X) y"), one("(X)"));
  EXPECT_EQ(run({{"[ab]"}}, "a b [AB]"), one("[AB]"));
  EXPECT_EQ(run({{"\\d"}}, "5 \\D"), one("\\\\D"));
  EXPECT_EQ(run({{"^start"}}, "not ^start"), one("^start"));
  EXPECT_EQ(run({{"end$"}}, "end"), "[]");
  EXPECT_EQ(run({{"a|b"}}, "b"), "[]");
  EXPECT_EQ(run({{"a|b"}}, "A|B"), one("A|B"));
  EXPECT_EQ(run({{"{2}"}}, "x{2}"), one("{2}"));
  EXPECT_EQ(run({{"?"}}, "why?"), one("?"));
  EXPECT_EQ(run({{"*"}}, "**"), one("*"));
  // Characters JS leaves alone stay literal in PCRE2 too.
  EXPECT_EQ(run({{"#x"}}, "a #X"), one("#X"));
  EXPECT_EQ(run({{"a b"}}, "A B"), one("A B"));
  EXPECT_EQ(run({{"(*UTF)"}}, "(*utf)"), one("(*utf)"));
  EXPECT_EQ(run({{"\\Q"}}, "\\q"), one("\\\\q"));
}

TEST(CompiledFilters, WholeWordBoundariesOnlyOnWordCharacterEnds) {
  EXPECT_EQ(run({{"cat", true}}, "concatenate"), "[]");
  EXPECT_EQ(run({{"cat", true}}, "the Cat!"), one("Cat"));
  EXPECT_EQ(run({{"cat", false}}, "concatenate"), one("cat"));
  EXPECT_EQ(run({{"cat", true}}, "cats cat_ _cat cat"), one("cat"));
  // `#tag`: \b only after, so a word character before is fine, one after is not.
  EXPECT_EQ(run({{"#tag", true}}, "x#tag"), one("#tag"));
  EXPECT_EQ(run({{"#tag", true}}, "#tagged"), "[]");
  EXPECT_EQ(run({{"#tag", true}}, "#tagged #Tag."), one("#Tag"));
  // `x.`: \b only before.
  EXPECT_EQ(run({{"x.", true}}, "ax. x.y"), one("x."));
  // Both ends non-word: no \b at all, matches inside words.
  EXPECT_EQ(run({{"-+-", true}}, "a-+-b"), one("-+-"));
  // Digits and underscore are word characters.
  EXPECT_EQ(run({{"42", true}}, "1420 42"), one("42"));
  EXPECT_EQ(run({{"_x", true}}, "a_x _x"), one("_x"));
  // Boundary at start and end of the text.
  EXPECT_EQ(run({{"word", true}}, "word"), one("word"));
  // Newlines are non-word.
  EXPECT_EQ(run({{"word", true}}, "a\nword\nb"), one("word"));
}

TEST(CompiledFilters, WordBoundaryIsAsciiOnly) {
  // é is not a word character for JS's \b: "caf" is a whole word inside "café".
  EXPECT_EQ(run({{"caf", true}}, "café"), one("caf"));
  EXPECT_EQ(run({{"bar", true}}, "ñbarñ"), one("bar"));
  // Non-ASCII ends get no \b, so they match inside words.
  EXPECT_EQ(run({{"été", true}}, "xÉtéy"), one("Été"));
  EXPECT_EQ(run({{"naïve", true}}, "naïvely"), "[]");
  EXPECT_EQ(run({{"naïve", true}}, "NAÏVE."), one("NAÏVE"));
}

TEST(CompiledFilters, NonAsciiLettersFoldLikeJavaScript) {
  EXPECT_EQ(run({{"CAFÉ"}}, "un café"), one("café"));
  EXPECT_EQ(run({{"é"}}, "É"), one("É"));
  EXPECT_EQ(run({{"ΣΟΦΊΑ"}}, "σοφία"), one("σοφία"));
  EXPECT_EQ(run({{"σ"}}, "ς"), one("ς"));
  EXPECT_EQ(run({{"привет"}}, "ПРИВЕТ мир"), one("ПРИВЕТ"));
  EXPECT_EQ(run({{"ÿ"}}, "Ÿ"), one("Ÿ"));
  EXPECT_EQ(run({{"µ"}}, "μ"), one("μ"));  // micro sign uppercases to Greek capital mu
  EXPECT_EQ(run({{"ǆ"}}, "ǅ"), one("ǅ"));  // titlecase digraph
}

TEST(CompiledFilters, FoldingJavaScriptDoesNotDo) {
  // A non-ASCII character whose uppercase is ASCII keeps itself.
  EXPECT_EQ(run({{"s"}}, "ſ"), "[]");
  EXPECT_EQ(run({{"ſ"}}, "s S"), "[]");
  EXPECT_EQ(run({{"i"}}, "ı İ"), "[]");
  // Kelvin sign and K only lowercase to each other; JS compares uppercases.
  EXPECT_EQ(run({{"k"}}, "\u212A"), "[]");
  // ß uppercases to "SS" (two units): unchanged; ẞ is its own uppercase.
  EXPECT_EQ(run({{"ß"}}, "ẞ SS ss"), "[]");
  EXPECT_EQ(run({{"ß"}}, "Straße"), one("ß"));
  // Astral letters are two surrogates for non-unicode JS regexes: no folding.
  EXPECT_EQ(run({{"\U00010428"}}, "\U00010400"), "[]");
  EXPECT_EQ(run({{"\U00010428"}}, "a\U00010428"), one("\U00010428"));
}

TEST(CompiledFilters, Pcre2CaselessFoldsNonAsciiButAlsoWhereJavaScriptDoesNot) {
  // What PCRE2 10.42 does with PCRE2_UTF | PCRE2_CASELESS (no UCP): É/é fold, and so
  // do ſ/s, which is why the filters canonicalize instead of using CASELESS.
  auto matches = [](const char* pattern, const char* subject) {
    int error = 0;
    PCRE2_SIZE offset = 0;
    pcre2_code* code = pcre2_compile(reinterpret_cast<PCRE2_SPTR>(pattern), PCRE2_ZERO_TERMINATED,
                                     PCRE2_UTF | PCRE2_CASELESS, &error, &offset, nullptr);
    EXPECT_NE(code, nullptr);
    pcre2_match_data* data = pcre2_match_data_create_from_pattern(code, nullptr);
    int rc = pcre2_match(code, reinterpret_cast<PCRE2_SPTR>(subject), PCRE2_ZERO_TERMINATED, 0, 0, data, nullptr);
    pcre2_match_data_free(data);
    pcre2_code_free(code);
    return rc > 0;
  };
  EXPECT_TRUE(matches("é", "É"));
  EXPECT_TRUE(matches("σ", "ς"));
  EXPECT_TRUE(matches("s", "ſ"));
  EXPECT_TRUE(matches("\\bcaf\\b", "café"));  // \b stays ASCII without UCP
}

TEST(CompiledFilters, CanonicalizeTable) {
  EXPECT_EQ(detail::js_canonicalize(u'a'), u'A');
  EXPECT_EQ(detail::js_canonicalize(u'Z'), u'Z');
  EXPECT_EQ(detail::js_canonicalize(u'1'), u'1');
  EXPECT_EQ(detail::js_canonicalize(u'é'), u'É');
  EXPECT_EQ(detail::js_canonicalize(u'ÿ'), u'\u0178');
  EXPECT_EQ(detail::js_canonicalize(u'\u00B5'), u'\u039C');
  EXPECT_EQ(detail::js_canonicalize(u'\u017F'), u'\u017F');
  EXPECT_EQ(detail::js_canonicalize(u'\u0131'), u'\u0131');
  EXPECT_EQ(detail::js_canonicalize(u'ß'), u'ß');
  EXPECT_EQ(detail::js_canonicalize(u'\u0345'), u'\u0399');
  EXPECT_EQ(detail::js_canonicalize(u'\u0149'), u'\u0149');  // ŉ → ʼN, two units
  EXPECT_EQ(detail::js_canonicalize(u'\u0250'), u'\u2C6F');
  EXPECT_EQ(detail::js_canonicalize(u'\xD800'), u'\xD800');
}

TEST(CompiledFilters, MatchedTextComesFromOriginalWhenCanonicalLengthsDiffer) {
  // ɐ (2 bytes) canonicalizes to Ɐ (3 bytes): offsets must map back.
  std::vector<uint32_t> offsets;
  EXPECT_EQ(detail::js_canonical_text("aɐb", &offsets), "AⱯB");
  EXPECT_EQ(offsets, (std::vector<uint32_t>{0, 1, 1, 1, 3, 4}));
  EXPECT_EQ(detail::js_canonical_text("abé", &offsets), "ABÉ");
  EXPECT_TRUE(offsets.empty());
  EXPECT_EQ(run({{"word"}}, "ɐɐɐ WoRd"), one("WoRd"));
  EXPECT_EQ(run({{"Ɐb"}}, "x ɐB y"), one("ɐB"));
  EXPECT_EQ(run({{"ɐ", true}, {"zz"}}, "zz"), one("zz"));
}

TEST(CompiledFilters, JsonEscapingOfTitleIdAndMatch) {
  auto filters = compile({make_filter("7", "Say \"hi\"\n</script> ☃", {{"\"q\""}, {"tab\there"}})});
  EXPECT_EQ(filters->evaluate("a \"Q\" b", kNow),
            R"([{"filter":{"id":"7","title":"Say \"hi\"\n</script> ☃","context":["public"],"expires_at":null,"filter_action":"warn"},"keyword_matches":["\"Q\""],"status_matches":null}])");
  EXPECT_EQ(filters->evaluate("TAB\tHERE", kNow).find(R"("keyword_matches":["TAB\tHERE"])") != std::string::npos, true);
}

TEST(CompiledFilters, InvalidUtf8NeverCrashesAndReadsAsReplacementCharacters) {
  // Node decodes ill-formed bytes as U+FFFD; the match is reported as such.
  EXPECT_EQ(run({{"caf"}}, "caf\xC3"), one("caf"));
  EXPECT_EQ(run({{"b"}}, "\xff\xfe" "b"), one("b"));
  EXPECT_EQ(run({{"\xff"}}, "a\xfe" "b"), one("\xEF\xBF\xBD"));
  EXPECT_EQ(run({{"x\xC3"}}, "X\xC3\xA9"), "[]");
  EXPECT_EQ(run({{"\xED\xA0\x80"}}, "zz"), "[]");  // encoded surrogate
  EXPECT_EQ(run({{std::string("a\0b", 3)}}, std::string("A\0B", 3)), one("A\\u0000B"));
}

TEST(CompiledFilters, KeywordlessFilterMatchesNothing) {
  EXPECT_EQ(run({}, "anything"), "[]");
}

TEST(CompiledFilters, HugeFilterStillMatchesViaFallback) {
  std::vector<Kw> keywords;
  for (int i = 0; i < 30000; ++i) keywords.push_back({"keyword" + std::to_string(i), i % 2 == 0});
  keywords.push_back({"needle"});
  EXPECT_EQ(run(keywords, "a NEEDLE and keyword299999 and keyword29999"), one("NEEDLE"));
  EXPECT_EQ(run(keywords, "xkeyword3"), one("keyword3"));
  EXPECT_EQ(run(keywords, "keyword4x keyword4"), one("keyword4"));
  EXPECT_EQ(run(keywords, "nothing"), "[]");
}

TEST(CompiledFilters, EvaluatesConcurrentlyFromSeveralThreads) {
  auto filters = compile({make_filter("1", "T", {{"needle", true}}), make_filter("2", "U", {{"é"}}, 1)});
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t) {
    threads.emplace_back([&] {
      for (int i = 0; i < 2000; ++i) {
        std::string got = filters->evaluate("a Needle É", kNow);
        if (got.find(R"("keyword_matches":["Needle"])") == std::string::npos ||
            got.find(R"("keyword_matches":["É"])") == std::string::npos) {
          ++wrong;
        }
      }
    });
  }
  for (auto& t : threads) t.join();
  EXPECT_EQ(wrong.load(), 0);
}

// A status is ruled out for a filter by the event's index of three-byte sequences
// (FilterSubject), before any regex runs.
TEST(CompiledFilters, TheRegexIsTriedOnlyWhereAKeywordMayOccur) {
  const FilterSubject subject("A cat, concatenated, at the end");  // canonical: upper case
  auto may_contain = [&](std::string_view keyword) { return subject.may_contain(detail::keyword_trigrams(keyword)); };
  EXPECT_TRUE(may_contain("CAT"));
  EXPECT_TRUE(may_contain("CONCATENATED"));
  EXPECT_TRUE(may_contain("THE END"));
  EXPECT_TRUE(may_contain("A CAT, CONCATENATED, AT THE END"));
  EXPECT_FALSE(may_contain("DOG"));
  EXPECT_FALSE(may_contain("CATS"));
  EXPECT_FALSE(may_contain("cat"));  // keywords are compared canonical
  // Shorter than three bytes, and the empty keyword (an alternative that matches
  // anywhere): never ruled out.
  EXPECT_TRUE(may_contain("ZQ"));
  EXPECT_TRUE(may_contain(""));
  // A substring is enough to try: the whole-word regex may still refuse it.
  EXPECT_EQ(run({{"cat", true}}, "concatenate"), "[]");
  // Through evaluate: only the filter whose keyword occurs is reported.
  auto filters = compile({make_filter("1", "T", {{"dragon"}}), make_filter("2", "U", {{"wyvern"}})});
  EXPECT_EQ(filters->evaluate("a Wyvern", kNow),
            R"([{"filter":{"id":"2","title":"U","context":["public"],"expires_at":null,"filter_action":"warn"},"keyword_matches":["Wyvern"],"status_matches":null}])");
  // A text too long to index is never ruled out.
  const FilterSubject long_text(std::string(20000, 'x'));
  EXPECT_TRUE(long_text.may_contain(detail::keyword_trigrams("DOG")));
  EXPECT_EQ(run({{"dog"}}, std::string(20000, 'x') + " dog"), one("dog"));
}

// A random string over a five-letter alphabet and the space: short keywords drawn
// from it occur in random texts often, so both ways through a prefilter are taken.
std::string small_alphabet_string(std::mt19937& rng, size_t min_length, size_t max_length) {
  std::string s(std::uniform_int_distribution<size_t>(min_length, max_length)(rng), 'a');
  for (char& c : s) c = "abcAB "[std::uniform_int_distribution<int>(0, 5)(rng)];
  return s;
}

// Long keywords are ruled out on a few of their trigrams; over a small alphabet most
// texts hold most trigrams, so both ways through evaluate() are taken often.
TEST(CompiledFilters, RandomizedLongKeywordsAreNeverRuledOutWhereTheyMatch) {
  std::mt19937 rng(99);
  auto random_string = [&](size_t min_length, size_t max_length) { return small_alphabet_string(rng, min_length, max_length); };
  int matched = 0, unmatched = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<Kw> keywords;
    const int count = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < count; ++i) keywords.push_back({random_string(4, 7), rng() % 4 == 0});
    CustomFilter filter = make_filter("1", "T", keywords);
    const std::string text = random_string(20, 80);
    const bool by_pcre = detail::pcre2_first_match(filter, text).has_value();
    ASSERT_EQ(compile({filter})->evaluate(text, kNow) != "[]", by_pcre)
        << "source " << detail::filter_regex_source(filter) << " text " << text;
    (by_pcre ? matched : unmatched)++;
  }
  EXPECT_GT(matched, 300);
  EXPECT_GT(unmatched, 300);
}

// A viewer's keyword digest never rules out a text its filters match: random filter
// sets of one to three filters of one to three keywords (so some sets have more
// keywords than the digest holds, and some keywords are too short to probe).
TEST(KeywordDigest, RandomizedMatchesAreNeverRuledOut) {
  std::mt19937 rng(7);
  auto random_string = [&](size_t min_length, size_t max_length) { return small_alphabet_string(rng, min_length, max_length); };
  int matched = 0, ruled_out = 0, beyond_digest = 0;
  for (int round = 0; round < 3000; ++round) {
    std::vector<CustomFilter> set;
    size_t keyword_count = 0;
    const int filter_count = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int f = 0; f < filter_count; ++f) {
      std::vector<Kw> keywords;
      const int count = std::uniform_int_distribution<int>(1, 3)(rng);
      for (int i = 0; i < count; ++i) keywords.push_back({random_string(rng() % 20 == 0 ? 1 : 4, 7), rng() % 4 == 0});
      keyword_count += keywords.size();
      set.push_back(make_filter(std::to_string(f + 1), "T", keywords));
    }
    auto compiled = compile(set);
    const std::string text = random_string(20, 80);
    const FilterSubject subject(text);
    const bool matches = compiled->evaluate(subject, kNow) != "[]";
    const bool may = compiled->digest().may_match(subject);
    if (matches) {
      ASSERT_TRUE(may) << "round " << round << " text " << text;
      ++matched;
    }
    if (!may) ++ruled_out;
    if (keyword_count > KeywordDigest::kKeywords) {
      EXPECT_TRUE(may);
      ++beyond_digest;
    }
  }
  EXPECT_GT(matched, 300);
  EXPECT_GT(ruled_out, 300);
  EXPECT_GT(beyond_digest, 300);
}

TEST(KeywordDigest, NoKeywordIsNoneAndAShortOneIsAlwaysTried) {
  EXPECT_TRUE(compile({})->digest().none());
  EXPECT_TRUE(compile({make_filter("1", "T", {})})->digest().none());
  const auto short_keyword = compile({make_filter("1", "T", {{"ab"}})});
  EXPECT_FALSE(short_keyword->digest().none());
  EXPECT_TRUE(short_keyword->digest().may_match(FilterSubject("nothing like it")));
  const auto dragon = compile({make_filter("1", "T", {{"dragon"}})});
  EXPECT_FALSE(dragon->digest().may_match(FilterSubject("a wyvern")));
  EXPECT_TRUE(dragon->digest().may_match(FilterSubject("a DRAGON")));
}

// Cross-checks: the PCRE2 path against the literal search over random inputs that
// mix word characters, metacharacters, non-ASCII letters with and without JS
// folding and length-changing canonical forms; and, on ASCII, against std::regex
// (ECMAScript, icase) run on the reference's own pattern source.
TEST(CompiledFilters, RandomizedPcre2MatchesLiteralSearchAndStdRegex) {
  std::mt19937 rng(1234);
  const std::vector<std::string> alphabet = {"a", "A", "b", "B", "_", "1", " ", ".", "*", "(", ")", "[", "\\",
                                             "|", "#", "é", "É", "ſ", "s", "ß", "ɐ", "Ɐ", "\n", "-"};
  const std::vector<std::string> ascii = {"a", "A", "b", "B", "_", "1", " ", ".", "*", "(", ")", "[",
                                          "]", "\\", "|", "#", "?", "+", "$", "^", "{", "}", "-", "\n"};
  auto random_string = [&](const std::vector<std::string>& letters, int max_length) {
    std::string s;
    int n = std::uniform_int_distribution<int>(0, max_length)(rng);
    for (int i = 0; i < n; ++i) s += letters[std::uniform_int_distribution<size_t>(0, letters.size() - 1)(rng)];
    return s;
  };
  int pcre_matches = 0, regex_compared = 0;
  for (int round = 0; round < 4000; ++round) {
    bool ascii_only = round % 2 == 1;
    const auto& letters = ascii_only ? ascii : alphabet;
    std::vector<Kw> keywords;
    int count = std::uniform_int_distribution<int>(1, 3)(rng);
    for (int i = 0; i < count; ++i) keywords.push_back({random_string(letters, 3), rng() % 2 == 0});
    CustomFilter filter = make_filter("1", "T", keywords);
    std::string text = random_string(letters, 14);
    auto by_pcre = detail::pcre2_first_match(filter, text);
    auto by_literal = detail::literal_first_match(filter, text);
    ASSERT_EQ(by_pcre, by_literal) << "source " << detail::filter_regex_source(filter) << " text " << text;
    if (by_pcre) ++pcre_matches;
    // evaluate() tries the regex only where a keyword occurs: that must never rule
    // out a text the regex matches.
    const bool evaluated_match = compile({filter})->evaluate(text, kNow) != "[]";
    ASSERT_EQ(evaluated_match, !text.empty() && by_pcre.has_value())
        << "source " << detail::filter_regex_source(filter) << " text " << text;
    if (ascii_only && !text.empty()) {
      std::regex re(detail::filter_regex_source(filter), std::regex::ECMAScript | std::regex::icase);
      std::smatch m;
      bool found = std::regex_search(text, m, re);
      ASSERT_EQ(found, by_pcre.has_value()) << detail::filter_regex_source(filter) << " text " << text;
      if (found) {
        ASSERT_EQ(static_cast<size_t>(m.position(0)), by_pcre->first) << detail::filter_regex_source(filter);
        ASSERT_EQ(static_cast<size_t>(m.position(0) + m.length(0)), by_pcre->second);
      }
      ++regex_compared;
    }
  }
  EXPECT_GT(pcre_matches, 500);
  EXPECT_GT(regex_compared, 1500);
}

}  // namespace
}  // namespace sluice::gateway
