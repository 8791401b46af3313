// Keyword filters are user-written and statuses come from the whole fediverse:
// compiling and evaluating any of them must not crash, the result must be JSON, and it
// must report a match exactly where the literal search finds one, and the keyword
// digest must never rule such a match out.
#include <cstddef>
#include <cstdint>
#include <cstdlib>
#include <nlohmann/json.hpp>
#include <string_view>

#include "gateway/status_filter.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view input(reinterpret_cast<const char*>(data), size);
  // Layout: keywords separated by '\n', then a NUL, then the searched text.
  auto split = input.find('\0');
  std::string_view keywords = input.substr(0, split);
  std::string_view text = split == std::string_view::npos ? std::string_view() : input.substr(split + 1);
  sluice::v1::FiltersReply reply;
  auto* filter = reply.add_filters();
  filter->set_id("1");
  filter->set_title("fuzz");
  filter->set_action(static_cast<int>(size % 3));
  size_t pos = 0;
  while (pos <= keywords.size()) {
    size_t end = keywords.find('\n', pos);
    if (end == std::string_view::npos) end = keywords.size();
    auto* keyword = filter->add_keywords();
    std::string_view word = keywords.substr(pos, end - pos);
    keyword->set_whole_word(!word.empty() && word[0] == '!');
    // Protobuf strings must be UTF-8; the auth service only returns such.
    keyword->set_keyword(std::string(word));
    if (end == keywords.size()) break;
    pos = end + 1;
  }
  auto compiled = sluice::gateway::CompiledFilters::compile(reply);
  std::string result = compiled->evaluate(text, 0);
  if (nlohmann::json::parse(result, nullptr, false).is_discarded()) std::abort();
  // evaluate() runs the regex only where a keyword may occur: it must report a match
  // exactly where the independent literal search finds one.
  const bool literal_match = !text.empty() && sluice::gateway::detail::literal_first_match(*filter, text).has_value();
  if ((result != "[]") != literal_match) std::abort();
  // The viewer's keyword digest, which the fan-out asks first, never rules out a match.
  if (literal_match && !compiled->digest().may_match(sluice::gateway::FilterSubject(text))) std::abort();
  return 0;
}
