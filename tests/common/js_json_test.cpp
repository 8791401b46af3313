// JSON.stringify semantics (docs/protocol.md#payload-serialisation). Expected strings are what node 20
// prints for the same input.
#include "common/js_json.hpp"

#include <cmath>
#include <limits>
#include <string>

#include <gtest/gtest.h>

namespace sluice {
namespace {

using json = nlohmann::ordered_json;

std::string stringify_text(std::string_view text) { return js_stringify(json::parse(text)); }

std::string number(double value) {
  std::string out;
  append_js_number(out, value);
  return out;
}

std::string literal(std::string_view text) {
  std::string out;
  append_js_string_literal(out, text);
  return out;
}

// ---- structure ----

TEST(JsStringify, IsCompactAndKeepsInsertionOrder) {
  EXPECT_EQ(stringify_text(R"( { "z" : 1 , "a" : [ 1 , 2 , { } , [ ] ] , "m" : null } )"),
            R"({"z":1,"a":[1,2,{},[]],"m":null})");
}

TEST(JsStringify, DuplicateKeyKeepsFirstPositionAndLastValue) {
  EXPECT_EQ(stringify_text(R"({"a":1,"b":2,"a":3})"), R"({"a":3,"b":2})");
  EXPECT_EQ(stringify_text(R"({"a":{"x":1},"b":2,"a":"last"})"), R"({"a":"last","b":2})");
}

// docs/protocol.md#payload-serialisation: array-index keys first, ascending, as a JS object lists them.
TEST(JsStringify, ArrayIndexKeysComeFirstInAscendingOrder) {
  EXPECT_EQ(stringify_text(R"({"b":1,"10":2,"a":3,"2":4,"0":5})"), R"({"0":5,"2":4,"10":2,"b":1,"a":3})");
  // Not array indices: leading zeros, signs, fractions, 2^32-1 and beyond keep their place.
  EXPECT_EQ(stringify_text(R"({"b":1,"01":2,"-1":3,"1.5":4,"4294967295":5,"4294967294":6,"":7})"),
            R"({"4294967294":6,"b":1,"01":2,"-1":3,"1.5":4,"4294967295":5,"":7})");
  EXPECT_EQ(stringify_text(R"({"x":{"b":1,"1":2}})"), R"({"x":{"1":2,"b":1}})") << "at every depth";
}

TEST(JsStringify, LiteralsAsIs) {
  EXPECT_EQ(stringify_text("[true,false,null]"), "[true,false,null]");
  EXPECT_EQ(stringify_text("true"), "true");
  EXPECT_EQ(stringify_text("\"x\""), "\"x\"");
}

TEST(JsStringify, AppendsToExistingOutput) {
  std::string out = "data: ";
  append_js_stringify(out, json::parse(R"({"a":"b"})"));
  EXPECT_EQ(out, R"(data: {"a":"b"})");
}

TEST(JsStringify, BuiltValuesWithNonFiniteNumbersPrintNull) {
  json value = json::object();
  value["nan"] = std::numeric_limits<double>::quiet_NaN();
  value["inf"] = std::numeric_limits<double>::infinity();
  EXPECT_EQ(js_stringify(value), R"({"nan":null,"inf":null})");
}

TEST(JsStringify, DiscardedValuePrintsNull) { EXPECT_EQ(js_stringify(json(json::value_t::discarded)), "null"); }

// ---- strings ----

TEST(JsStringLiteral, EscapesOnlyQuoteBackslashAndControlCharacters) {
  EXPECT_EQ(literal("a\"b\\c"), R"("a\"b\\c")");
  EXPECT_EQ(literal("\b\f\n\r\t"), R"("\b\f\n\r\t")");
  EXPECT_EQ(literal(std::string_view("\x00\x01\x0b\x1f", 4)), R"("\u0000\u0001\u000b\u001f")");
  EXPECT_EQ(literal("\x1a\x1e"), R"("\u001a\u001e")");  // lowercase hex
}

TEST(JsStringLiteral, LeavesSlashHtmlDelAndNonAsciiRaw) {
  EXPECT_EQ(literal("</script>&amp;<p>"), "\"</script>&amp;<p>\"");
  EXPECT_EQ(literal("\x7f"), "\"\x7f\"");
  EXPECT_EQ(literal("caf\xC3\xA9 \xE2\x80\xA8 \xF0\x9F\x98\x80"), "\"caf\xC3\xA9 \xE2\x80\xA8 \xF0\x9F\x98\x80\"");
}

TEST(JsStringLiteral, EmptyString) { EXPECT_EQ(literal(""), "\"\""); }

TEST(JsStringLiteral, AppendsAfterExistingText) {
  std::string out = R"({"payload":)";
  append_js_string_literal(out, R"({"id":"1"})");
  EXPECT_EQ(out, R"({"payload":"{\"id\":\"1\"}")");
}

TEST(JsStringLiteral, InvalidUtf8BecomesReplacementCharacters) {
  // One U+FFFD per maximal ill-formed subpart, as Node decodes bytes.
  EXPECT_EQ(literal("a\xFF" "b"), "\"a\xEF\xBF\xBD" "b\"");
  EXPECT_EQ(literal("\xE2\x82"), "\"\xEF\xBF\xBD\"");                                  // truncated 3-byte
  EXPECT_EQ(literal("\xE2\x82x"), "\"\xEF\xBF\xBDx\"");
  EXPECT_EQ(literal("\xC0\xAF"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\"");                      // overlong
  EXPECT_EQ(literal("\xED\xA0\x80"), "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");      // surrogate
  EXPECT_EQ(literal("\xF4\x90\x80\x80"),
            "\"\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\"");                     // > U+10FFFF
  EXPECT_EQ(literal("\xF0\x9F\x98"), "\"\xEF\xBF\xBD\"");
}

TEST(JsStringify, RailsEscapesComeOutRaw) {
  EXPECT_EQ(stringify_text(R"({"content":"\u003cp\u003eA \u0026amp; B\u003c/p\u003e","u":"a\/b"})"),
            R"({"content":"<p>A &amp; B</p>","u":"a/b"})");
}

TEST(JsStringify, UnicodeEscapesBecomeRawUtf8ExceptControls) {
  EXPECT_EQ(stringify_text(R"(["\ud83d\ude00","\u2028","\u00e9","\u0007","\u001F"])"),
            "[\"\xF0\x9F\x98\x80\",\"\xE2\x80\xA8\",\"\xC3\xA9\",\"\\u0007\",\"\\u001f\"]");
}

TEST(JsStringify, KeysAreEscapedLikeValues) {
  EXPECT_EQ(stringify_text(R"({"a\"b\n":1})"), R"({"a\"b\n":1})");
}

// ---- numbers ----

TEST(JsNumber, Integers) {
  EXPECT_EQ(number(0), "0");
  EXPECT_EQ(number(-0.0), "0");
  EXPECT_EQ(number(1), "1");
  EXPECT_EQ(number(-1), "-1");
  EXPECT_EQ(number(100), "100");
  EXPECT_EQ(number(1e20), "100000000000000000000");
  EXPECT_EQ(number(123456789012345680000.0), "123456789012345680000");
  EXPECT_EQ(number(9007199254740992.0), "9007199254740992");
}

TEST(JsNumber, Fractions) {
  EXPECT_EQ(number(1.5), "1.5");
  EXPECT_EQ(number(-1.5), "-1.5");
  EXPECT_EQ(number(0.1), "0.1");
  EXPECT_EQ(number(0.1 + 0.2), "0.30000000000000004");
  EXPECT_EQ(number(12345.6789), "12345.6789");
  EXPECT_EQ(number(1.7777777777777777), "1.7777777777777777");
  EXPECT_EQ(number(4.35), "4.35");
}

TEST(JsNumber, SmallNumbersSwitchToExponentBelowOneMillionth) {
  EXPECT_EQ(number(1e-6), "0.000001");
  EXPECT_EQ(number(0.000001234), "0.000001234");
  EXPECT_EQ(number(1e-7), "1e-7");
  EXPECT_EQ(number(1.5e-7), "1.5e-7");
  EXPECT_EQ(number(-1.5e-7), "-1.5e-7");
  EXPECT_EQ(number(1.23e-18), "1.23e-18");
  EXPECT_EQ(number(5e-324), "5e-324");
}

TEST(JsNumber, LargeNumbersSwitchToExponentAt1e21) {
  EXPECT_EQ(number(1e21), "1e+21");
  EXPECT_EQ(number(-1e21), "-1e+21");
  EXPECT_EQ(number(1.5e21), "1.5e+21");
  EXPECT_EQ(number(999999999999999900000.0), "999999999999999900000");
  EXPECT_EQ(number(1.7976931348623157e308), "1.7976931348623157e+308");
}

TEST(JsNumber, NonFiniteIsNull) {
  EXPECT_EQ(number(std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(number(-std::numeric_limits<double>::infinity()), "null");
  EXPECT_EQ(number(std::numeric_limits<double>::quiet_NaN()), "null");
}

TEST(JsStringify, ParsedNumbersPrintAsJavaScriptDoes) {
  EXPECT_EQ(stringify_text("[1.0,-0,-0.0,1E2,1e-7,0.5e1,120e-1]"), "[1,0,0,100,1e-7,5,12]");
}

TEST(JsStringify, IntegersAbove2To53LosePrecisionLikeJs) {
  EXPECT_EQ(stringify_text("[9007199254740993]"), "[9007199254740992]");
  EXPECT_EQ(stringify_text("[18446744073709551615]"), "[18446744073709552000]");
  EXPECT_EQ(stringify_text("[-9223372036854775808]"), "[-9223372036854776000]");
  EXPECT_EQ(stringify_text("[113999000000000001]"), "[113999000000000000]");
  EXPECT_EQ(stringify_text("[123456789012345678901234567890]"), "[1.2345678901234568e+29]");
}

// ---- String() and truthiness ----

TEST(JsToString, MatchesJavaScriptString) {
  EXPECT_EQ(js_to_string(json::parse("\"update\"")), "update");
  EXPECT_EQ(js_to_string(json::parse("42")), "42");
  EXPECT_EQ(js_to_string(json::parse("1.5e-7")), "1.5e-7");
  EXPECT_EQ(js_to_string(json(std::numeric_limits<double>::infinity())), "Infinity");
  EXPECT_EQ(js_to_string(json(-std::numeric_limits<double>::infinity())), "-Infinity");
  EXPECT_EQ(js_to_string(json(std::numeric_limits<double>::quiet_NaN())), "NaN");
  EXPECT_EQ(js_to_string(json::parse("true")), "true");
  EXPECT_EQ(js_to_string(json::parse("false")), "false");
  EXPECT_EQ(js_to_string(json::parse("null")), "null");
  EXPECT_EQ(js_to_string(json::parse(R"({"a":1})")), "[object Object]");
  EXPECT_EQ(js_to_string(json::parse(R"([1,null,"a",[2,3],{}])")), "1,,a,2,3,[object Object]");
  EXPECT_EQ(js_to_string(json::parse("[]")), "");
}

TEST(JsTruthy, FalsyValues) {
  for (const char* text : {"null", "false", "0", "-0", "0.0", "\"\""}) {
    EXPECT_FALSE(js_truthy(json::parse(text))) << text;
  }
  EXPECT_FALSE(js_truthy(json(std::numeric_limits<double>::quiet_NaN())));
  EXPECT_FALSE(js_truthy(json()));
}

TEST(JsTruthy, TruthyValues) {
  for (const char* text : {"true", "1", "-1", "0.5", "\"0\"", "\" \"", "{}", "[]", "18446744073709551615"}) {
    EXPECT_TRUE(js_truthy(json::parse(text))) << text;
  }
  EXPECT_TRUE(js_truthy(json(std::numeric_limits<double>::infinity())));
}

// ---- nesting pre-scan ----

TEST(JsonNesting, CountsBracketsOutsideStrings) {
  EXPECT_FALSE(json_nesting_exceeds("[[[]]]", 3));
  EXPECT_TRUE(json_nesting_exceeds("[[[[]]]]", 3));
  EXPECT_TRUE(json_nesting_exceeds(R"({"a":{"b":{"c":{}}}})", 3));
  EXPECT_FALSE(json_nesting_exceeds(R"(["[[[[[[", "{{{{{{"])", 1));
  EXPECT_FALSE(json_nesting_exceeds(R"(["\"[[[[[[\\", []])", 2));
  EXPECT_TRUE(json_nesting_exceeds(R"(["\\", [[]]])", 2));  // escaped backslash ends before the quote
  EXPECT_FALSE(json_nesting_exceeds("[][][][][]", 1));
  EXPECT_FALSE(json_nesting_exceeds("]]]]][", 1));  // stray closers never go below zero
}

TEST(JsonNesting, DeepInputIsFlaggedWithoutRecursion) {
  const std::string deep(1'000'000, '[');
  EXPECT_TRUE(json_nesting_exceeds(deep, 512));
  EXPECT_FALSE(json_nesting_exceeds(std::string(512, '['), 512));
}

// ---- UTF-8 ----

TEST(Utf8, SequenceLengths) {
  EXPECT_EQ(utf8_sequence_length("a", 0), 1u);
  EXPECT_EQ(utf8_sequence_length("\xC3\xA9", 0), 2u);
  EXPECT_EQ(utf8_sequence_length("\xE2\x82\xAC", 0), 3u);
  EXPECT_EQ(utf8_sequence_length("\xF0\x9F\x98\x80", 0), 4u);
  EXPECT_EQ(utf8_sequence_length("\xF4\x8F\xBF\xBF", 0), 4u);  // U+10FFFF
  EXPECT_EQ(utf8_sequence_length("\xC1\xBF", 0), 0u);          // overlong
  EXPECT_EQ(utf8_sequence_length("\xE0\x9F\xBF", 0), 0u);      // overlong
  EXPECT_EQ(utf8_sequence_length("\xF0\x8F\xBF\xBF", 0), 0u);  // overlong
  EXPECT_EQ(utf8_sequence_length("\xED\xBF\xBF", 0), 0u);      // surrogate
  EXPECT_EQ(utf8_sequence_length("\x80", 0), 0u);
  EXPECT_EQ(utf8_sequence_length("\xE2\x82", 0), 0u);
  EXPECT_EQ(utf8_sequence_length("a", 1), 0u);
}

TEST(JsonString, FindsTheFirstQuoteBackslashOrControlCharacterAtAnyOffset) {
  for (std::size_t at = 0; at < 20; ++at) {
    for (char special : {'"', '\\', '\n', '\x1f', '\0'}) {
      std::string text(at, 'a');
      text += "\xC3\xA9\x7f";  // non-ASCII and DEL are plain
      const std::size_t expected = text.size();
      text.push_back(special);
      text += "zz\"";
      EXPECT_EQ(find_json_string_special(text, 0), expected) << at << " " << int(special);
      EXPECT_EQ(find_json_string_special(text, expected + 1), text.size() - 1);
    }
  }
  EXPECT_EQ(find_json_string_special("plain text, all of it", 0), 21u);
  EXPECT_EQ(find_json_string_special("", 0), 0u);
}

TEST(Utf8, Validity) {
  EXPECT_TRUE(is_valid_utf8(""));
  EXPECT_TRUE(is_valid_utf8("plain ascii"));
  EXPECT_TRUE(is_valid_utf8("caf\xC3\xA9 \xE2\x82\xAC \xF0\x9F\x98\x80 \xEF\xBF\xBF"));
  EXPECT_TRUE(is_valid_utf8(std::string_view("\0", 1)));
  EXPECT_FALSE(is_valid_utf8("\xFF"));
  EXPECT_FALSE(is_valid_utf8("ok\xC3"));
  EXPECT_FALSE(is_valid_utf8("\xED\xA0\x80"));
  EXPECT_FALSE(is_valid_utf8("\xF5\x80\x80\x80"));
}

TEST(Utf8, WellFormedCopyReplacesMaximalSubparts) {
  EXPECT_EQ(to_well_formed_utf8("caf\xC3\xA9"), "caf\xC3\xA9");
  EXPECT_EQ(to_well_formed_utf8("a\x80\x80" "b"), "a\xEF\xBF\xBD\xEF\xBF\xBD" "b");
  EXPECT_EQ(to_well_formed_utf8("\xF0\x9F\x98" "a"), "\xEF\xBF\xBD" "a");
  EXPECT_EQ(to_well_formed_utf8("\xE0\x80"), "\xEF\xBF\xBD\xEF\xBF\xBD");
}

TEST(JsStringify, LongStringsAreCopiedExactly) {
  std::string long_text(100'000, 'x');
  long_text[50'000] = '"';
  std::string expected = "\"" + long_text.substr(0, 50'000) + "\\\"" + long_text.substr(50'001) + "\"";
  EXPECT_EQ(literal(long_text), expected);
}

}  // namespace
}  // namespace sluice
