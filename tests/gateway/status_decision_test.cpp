// The one decision of filtered streams, rule by rule, without sockets
// (docs/protocol.md#feed-access-check, #language-check, #relations,
// #drop-pass-or-annotate). Both the immediate fan-out and statuses that waited for a
// viewer's data go through these functions.
#include "gateway/status_decision.hpp"

#include <gtest/gtest.h>

namespace sluice::gateway {
namespace {

sluice::v1::StatusFacts status(int64_t author = 20, const std::string& acct = "author") {
  sluice::v1::StatusFacts facts;
  facts.set_well_formed(true);
  facts.set_account_id(std::to_string(author));
  facts.set_account_id_num(author);
  facts.set_account_username("author");
  facts.set_account_acct(acct);
  facts.set_language("en");
  facts.set_filter_text("Breaking news about cats");
  return facts;
}

std::shared_ptr<const Relations> relations(std::initializer_list<int64_t> blocking = {},
                                           std::initializer_list<int64_t> muting = {},
                                           std::initializer_list<const char*> domains = {}) {
  sluice::v1::RelationsReply reply;
  for (auto id : blocking) reply.add_blocking(id);
  for (auto id : muting) reply.add_muting(id);
  for (auto domain : domains) reply.add_blocked_domains(domain);
  return Relations::from_reply(reply);
}

std::shared_ptr<const CompiledFilters> filters(std::initializer_list<const char*> keywords) {
  sluice::v1::FiltersReply reply;
  if (keywords.size() > 0) {
    auto* filter = reply.add_filters();
    filter->set_id("5");
    filter->set_title("F");
    filter->set_action(0);
    for (auto keyword : keywords) {
      auto* k = filter->add_keywords();
      k->set_keyword(keyword);
      k->set_whole_word(true);
    }
  }
  return CompiledFilters::compile(reply);
}

int evaluations = 0;
std::string last_evaluation;
EvaluateFilters evaluate_at(int64_t now_ms, const sluice::v1::StatusFacts& facts) {
  return [now_ms, &facts](const StatusViewer& viewer) -> const std::string& {
    ++evaluations;
    last_evaluation = evaluate_filters(viewer, FilterSubject(facts.filter_text()), now_ms);
    return last_evaluation;
  };
}

// The decision as the fan-out calls it: with the status's and the viewer's digests.
StatusDecision decide(const sluice::v1::StatusFacts& facts, const Relations& sets, const CompiledFilters& compiled,
                      const EvaluateFilters& evaluate) {
  const RelationsDigest sets_keys = RelationsDigest::of(sets);
  return decide_status(facts, RelationsDigest::of(facts), {sets, sets_keys, compiled, compiled.digest()}, evaluate);
}

FeedCheck check(const sluice::v1::StatusFacts& facts, const SubscriptionRules& rules) {
  return check_feed_and_language(FeedFacts::of(facts), rules);
}

SubscriptionRules choosing(std::optional<std::vector<std::string>> languages) {
  return SubscriptionRules{false, false, ChosenLanguages(languages)};
}

TEST(FeedAndLanguage, MalformedStatusesAreSetApart) {
  auto facts = status();
  facts.set_well_formed(false);
  EXPECT_EQ(check(facts, {}), FeedCheck::malformed);
}

TEST(FeedAndLanguage, LocalAndRemoteFeedsFollowTheSettings) {
  SubscriptionRules no_local{true, false, {}};
  SubscriptionRules no_remote{false, true, {}};
  EXPECT_EQ(check(status(20, "author"), no_local), FeedCheck::drop);
  EXPECT_EQ(check(status(20, "author@remote.example"), no_local), FeedCheck::pass);
  EXPECT_EQ(check(status(20, "author"), no_remote), FeedCheck::pass);
  EXPECT_EQ(check(status(20, "author@remote.example"), no_remote), FeedCheck::drop);
}

TEST(FeedAndLanguage, ChosenLanguagesFilterEvenAnEmptyListAndNullLanguage) {
  auto facts = status();
  EXPECT_EQ(check(facts, choosing(std::nullopt)), FeedCheck::pass);
  EXPECT_EQ(check(facts, choosing(std::vector<std::string>{"en"})), FeedCheck::pass);
  EXPECT_EQ(check(facts, choosing(std::vector<std::string>{})), FeedCheck::drop);
  facts.set_language("de");
  EXPECT_EQ(check(facts, choosing(std::vector<std::string>{"en"})), FeedCheck::drop);
  facts.clear_language();
  EXPECT_EQ(check(facts, choosing(std::vector<std::string>{"en"})), FeedCheck::drop);
  EXPECT_EQ(check(facts, choosing(std::nullopt)), FeedCheck::pass);
}

// The packed comparison must be string equality exactly: codes that share their first
// 8 bytes, codes with a NUL, lists longer than the inline ones and codes longer than
// 8 bytes all take the path that cannot tell them apart by packing.
TEST(FeedAndLanguage, ChosenLanguagesCompareAsStringsWhateverTheirLength) {
  auto facts = status();
  auto with = [&](const std::string& language) {
    facts.set_language(language);
    return facts;
  };
  const std::vector<std::string> short_codes{"en", "de", "fr", "zh-TW"};
  EXPECT_EQ(check(with("zh-TW"), choosing(short_codes)), FeedCheck::pass);
  EXPECT_EQ(check(with("zh"), choosing(short_codes)), FeedCheck::drop);
  EXPECT_EQ(check(with("zh-TWN"), choosing(short_codes)), FeedCheck::drop);
  EXPECT_EQ(check(with(""), choosing(short_codes)), FeedCheck::drop);
  EXPECT_EQ(check(with(""), choosing(std::vector<std::string>{""})), FeedCheck::pass);
  // Eight bytes pack; a ninth does not, and must not match its first eight.
  EXPECT_EQ(check(with("abcdefgh"), choosing(std::vector<std::string>{"abcdefgh"})), FeedCheck::pass);
  EXPECT_EQ(check(with("abcdefghi"), choosing(std::vector<std::string>{"abcdefgh"})), FeedCheck::drop);
  EXPECT_EQ(check(with("abcdefgh"), choosing(std::vector<std::string>{"abcdefghi"})), FeedCheck::drop);
  EXPECT_EQ(check(with("abcdefghi"), choosing(std::vector<std::string>{"en", "abcdefghi"})), FeedCheck::pass);
  // A NUL would pack like the shorter code it pads.
  EXPECT_EQ(check(with(std::string("en\0", 3)), choosing(std::vector<std::string>{"en"})), FeedCheck::drop);
  EXPECT_EQ(check(with("en"), choosing(std::vector<std::string>{std::string("en\0", 3)})), FeedCheck::drop);
  EXPECT_EQ(check(with(std::string("en\0", 3)), choosing(std::vector<std::string>{std::string("en\0", 3)})),
            FeedCheck::pass);
  // More codes than fit inline.
  const std::vector<std::string> many{"en", "de", "fr", "es", "it", "pt"};
  EXPECT_GT(many.size(), ChosenLanguages::kInline);
  EXPECT_EQ(check(with("pt"), choosing(many)), FeedCheck::pass);
  EXPECT_EQ(check(with("en"), choosing(many)), FeedCheck::pass);
  EXPECT_EQ(check(with("nl"), choosing(many)), FeedCheck::drop);
  facts.clear_language();
  EXPECT_EQ(check(facts, choosing(many)), FeedCheck::drop);
}

TEST(Decision, RelationsDropBeforeAnyFilterIsEvaluated) {
  auto facts = status(20);
  auto keyword = filters({"news"});
  evaluations = 0;
  EXPECT_EQ(decide(facts, *relations({20}), *keyword, evaluate_at(0, facts)).verdict,
            StatusVerdict::drop);
  EXPECT_EQ(decide(facts, *relations({}, {20}), *keyword, evaluate_at(0, facts)).verdict,
            StatusVerdict::drop);
  auto remote = status(20, "author@blocked.example");
  EXPECT_EQ(decide(remote, *relations({}, {}, {"blocked.example"}), *keyword, evaluate_at(0, remote))
                .verdict,
            StatusVerdict::drop);
  EXPECT_EQ(evaluations, 0);
}

// The digests decide whether the sets and filters are read at all: given viewer
// digests that rule the status out, the decision does not look at sets that would
// drop it or filters that would match. (The fan-out always passes the digests of the
// same sets and filters; status_filter_test pins that those never rule out a drop or
// a match.)
TEST(Decision, TheSetsAndFiltersAreReadOnlyWhereTheDigestsLeaveItOpen) {
  auto facts = status(20);
  auto blocking = relations({20});
  auto none = filters({});
  const RelationsDigest status_keys = RelationsDigest::of(facts);
  const RelationsDigest blocking_keys = RelationsDigest::of(*blocking);
  const RelationsDigest no_relations;
  ASSERT_TRUE(status_keys.overlaps(blocking_keys));
  ASSERT_FALSE(status_keys.overlaps(no_relations));
  EXPECT_EQ(decide_status(facts, status_keys, {*blocking, blocking_keys, *none, none->digest()}, evaluate_at(0, facts))
                .verdict,
            StatusVerdict::drop);
  EXPECT_EQ(decide_status(facts, status_keys, {*blocking, no_relations, *none, none->digest()}, evaluate_at(0, facts))
                .verdict,
            StatusVerdict::no_filter_match);

  auto news = filters({"news"});
  auto cats = filters({"cats"});
  const KeywordDigest no_keywords;
  auto empty = relations();
  const RelationsDigest empty_keys = RelationsDigest::of(*empty);
  EXPECT_EQ(decide_status(facts, status_keys, {*empty, empty_keys, *news, news->digest()}, evaluate_at(0, facts))
                .verdict,
            StatusVerdict::filter_matches);
  evaluations = 0;
  EXPECT_EQ(decide_status(facts, status_keys, {*empty, empty_keys, *news, no_keywords}, evaluate_at(0, facts)).verdict,
            StatusVerdict::no_filter_match);
  EXPECT_EQ(evaluations, 0);
  // The keywords of another filter set, none of them in the text: ruled out by the
  // digest, so the filters given are not run.
  sluice::v1::StatusFacts without_cats = facts;
  without_cats.set_filter_text("Breaking news");
  EXPECT_EQ(decide_status(without_cats, status_keys, {*empty, empty_keys, *news, cats->digest()},
                          evaluate_at(0, without_cats))
                .verdict,
            StatusVerdict::no_filter_match);
  EXPECT_EQ(evaluations, 1);
  EXPECT_EQ(last_evaluation, "[]");
}

TEST(Decision, PayloadWithFilteredIsForwardedUnchanged) {
  auto facts = status();
  facts.set_has_filtered(true);
  EXPECT_EQ(decide(facts, *relations(), *filters({"news"}), evaluate_at(0, facts)).verdict,
            StatusVerdict::unchanged);
}

TEST(Decision, NoFiltersOrNoMatchShareTheEmptyFilteredFrame) {
  auto facts = status();
  evaluations = 0;
  EXPECT_EQ(decide(facts, *relations(), *filters({}), evaluate_at(0, facts)).verdict,
            StatusVerdict::no_filter_match);
  EXPECT_EQ(evaluations, 0);  // nothing to evaluate
  EXPECT_EQ(decide(facts, *relations(), *filters({"dogs"}), evaluate_at(0, facts)).verdict,
            StatusVerdict::no_filter_match);
  EXPECT_EQ(evaluations, 1);
}

TEST(Decision, AMatchGivesTheViewerItsOwnFilteredArray) {
  auto facts = status();
  auto decision = decide(facts, *relations(), *filters({"news"}), evaluate_at(0, facts));
  EXPECT_EQ(decision.verdict, StatusVerdict::filter_matches);
  EXPECT_NE(decision.filtered_json.find(R"("keyword_matches":["news"])"), std::string::npos) << decision.filtered_json;
}

}  // namespace
}  // namespace sluice::gateway
