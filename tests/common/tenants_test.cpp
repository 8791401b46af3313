// The tenants file (common/tenants.hpp): hosts to instances, each with its own variables.
#include <gtest/gtest.h>

#include "common/config_error.hpp"
#include "common/tenants.hpp"

namespace sluice {
namespace {

const Env kBase = Env::from_map({{"REDIS_HOST", "redis-shared"}, {"DB_POOL", "10"}, {"NODE_ENV", "production"}});

std::string error_of(std::string_view text) {
  try {
    Tenants::parse(text, kBase);
  } catch (const ConfigError& e) {
    return e.what();
  }
  return "(no error)";
}

TEST(Tenants, HostsFindTheirTenantWhateverThePortCaseOrTrailingDot) {
  const Tenants tenants = Tenants::parse(R"({"tenants": {
      "social": {"hosts": ["social.example", "WWW.Social.Example"], "env": {"REDIS_NAMESPACE": "social"}},
      "club":   {"hosts": ["club.example"]}}})",
                                         kBase);
  ASSERT_EQ(tenants.all().size(), 2u);
  const Tenant* social = tenants.for_host("social.example");
  ASSERT_NE(social, nullptr);
  EXPECT_EQ(social->name, "social");
  EXPECT_EQ(tenants.for_host("Social.EXAMPLE:443"), social);
  EXPECT_EQ(tenants.for_host("www.social.example."), social);
  EXPECT_EQ(tenants.for_host("www.social.example:4000"), social);
  EXPECT_EQ(tenants.for_host("club.example")->name, "club");
  EXPECT_EQ(tenants.for_host("other.example"), nullptr);
  EXPECT_EQ(tenants.for_host(""), nullptr);
  EXPECT_EQ(tenants.for_host("evil.example@social.example"), nullptr);
  EXPECT_EQ(social->hosts, (std::vector<std::string>{"social.example", "www.social.example"}));
}

TEST(Tenants, ATenantsVariablesOverrideTheEnvironmentAndOnlyForThatTenant) {
  const Tenants tenants = Tenants::parse(R"({"tenants": {
      "a": {"hosts": ["a.example"], "env": {"REDIS_HOST": "redis-a", "DB_NAME": "a_production"}},
      "b": {"hosts": ["b.example"]}}})",
                                         kBase);
  const Env& a = tenants.for_host("a.example")->env;
  const Env& b = tenants.for_host("b.example")->env;
  EXPECT_EQ(a.get("REDIS_HOST"), "redis-a");
  EXPECT_EQ(a.get("DB_NAME"), "a_production");
  EXPECT_EQ(a.get("DB_POOL"), "10") << "what the tenant does not set comes from the environment";
  EXPECT_EQ(b.get("REDIS_HOST"), "redis-shared");
  EXPECT_EQ(b.get("DB_NAME"), std::nullopt);
}

TEST(Tenants, MistakesAreRefusedWithWhereTheyAre) {
  struct Case {
    const char* text;
    const char* says;
  };
  const Case cases[] = {
      {"{", "not valid JSON"},
      {"[]", "expected an object with a \"tenants\" object"},
      {R"({"tenants": {}})", "no tenants"},
      {R"({"tenants": {"Social": {"hosts": ["s.example"]}}})", "tenant \"Social\": the name must be"},
      {R"({"tenants": {"s": {"hosts": []}}})", "tenant \"s\": \"hosts\" must be a non-empty array"},
      {R"({"tenants": {"s": {"env": {}}}})", "tenant \"s\": \"hosts\" must be a non-empty array"},
      {R"({"tenants": {"s": {"hosts": ["s.example:443"]}}})", "\"s.example:443\" is not a host name"},
      {R"({"tenants": {"s": {"hosts": ["https://s.example"]}}})", "is not a host name"},
      {R"({"tenants": {"s": {"hosts": [7]}}})", "every host must be a string"},
      {R"({"tenants": {"a": {"hosts": ["x.example"]}, "b": {"hosts": ["X.example"]}}})",
       "tenant \"b\": host \"x.example\" is also served by tenant \"a\""},
      // Found by fuzz_tenants: the same host twice in one tenant read past the tenants parsed so far.
      {R"({"tenants": {"s": {"hosts": ["s.example", "www.s.example", "WWW.s.example"]}}})",
       "tenant \"s\": host \"www.s.example\" is listed twice"},
      {R"({"tenants": {"s": {"hosts": ["s.example"], "env": {"redis_url": "x"}}}})",
       "\"redis_url\" is not an environment variable name"},
      {R"({"tenants": {"s": {"hosts": ["s.example"], "env": {"DB_POOL": 5}}}})", "DB_POOL must be a string"},
      {R"({"tenants": {"s": {"hosts": ["s.example"], "redis": "x"}}})", "unknown field \"redis\""},
      // A copied block not renamed: only the last would be served.
      {R"({"tenants": {"a": {"hosts": ["x.example"]}, "a": {"hosts": ["y.example"]}}})",
       "\"a\" is given twice in one object"},
      {R"({"tenants": {"s": {"hosts": ["s.example"], "env": {"DB_NAME": "a", "DB_NAME": "b"}}}})",
       "\"DB_NAME\" is given twice"},
  };
  for (const Case& c : cases) {
    const std::string error = error_of(c.text);
    EXPECT_NE(error.find("Invalid tenants file: "), std::string::npos) << c.text << " -> " << error;
    EXPECT_NE(error.find(c.says), std::string::npos) << c.text << " -> " << error;
  }
}

TEST(Tenants, HostHeadersAreNormalised) {
  EXPECT_EQ(normalized_host("Social.Example"), "social.example");
  EXPECT_EQ(normalized_host("social.example:4000"), "social.example");
  EXPECT_EQ(normalized_host("[::1]:4000"), "[::1]");
  EXPECT_EQ(normalized_host("[::1"), "");
  EXPECT_EQ(normalized_host("a b"), "");
  EXPECT_EQ(normalized_host(std::string_view("a\0b", 3)), "");
  EXPECT_EQ(normalized_host("\xC3\xA9.example"), "") << "not ASCII: IDNs arrive as punycode";
}

}  // namespace
}  // namespace sluice
