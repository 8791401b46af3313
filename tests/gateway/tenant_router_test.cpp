// Which instance a request is for (gateway/tenant_router.hpp, docs/hosting.md#routing).
#include <gtest/gtest.h>

#include "gateway/tenant_router.hpp"

namespace sluice::gateway {
namespace {

std::shared_ptr<const Tenants> tenants(std::string_view json) {
  return std::make_shared<const Tenants>(Tenants::parse(json, Env::from_map({})));
}

TEST(TenantRouter, WithoutATenantsFileEveryRequestIsTheEnvironmentsInstance) {
  TenantRouter router;
  EXPECT_TRUE(router.serves(""));
  EXPECT_FALSE(router.serves("social"));
  EXPECT_EQ(router.tenant_for("social.example"), std::optional<std::string>(""));
  EXPECT_EQ(router.tenant_for(std::nullopt), std::optional<std::string>(""));
}

TEST(TenantRouter, TheHostPicksTheTenantAndAnUnknownOrMissingHostNone) {
  TenantRouter router;
  router.update(tenants(R"({"tenants": {"social": {"hosts": ["social.example", "www.social.example"]},
                                        "club": {"hosts": ["club.example"]}}})"));
  EXPECT_TRUE(router.serves("social"));
  EXPECT_FALSE(router.serves(""));
  EXPECT_FALSE(router.serves("nobody"));
  EXPECT_EQ(router.tenant_for("social.example"), std::optional<std::string>("social"));
  EXPECT_EQ(router.tenant_for("WWW.Social.Example:443"), std::optional<std::string>("social"));
  EXPECT_EQ(router.tenant_for("club.example."), std::optional<std::string>("club"));
  EXPECT_EQ(router.tenant_for("nobody.example"), std::nullopt);
  EXPECT_EQ(router.tenant_for(""), std::nullopt);
  EXPECT_EQ(router.tenant_for(std::nullopt), std::nullopt);
}

TEST(TenantRouter, AnUpdateServesTheNewFileAndHandsBackTheOldOne) {
  TenantRouter router;
  EXPECT_EQ(router.update(tenants(R"({"tenants": {"social": {"hosts": ["social.example"]}}})")), nullptr);
  auto previous = router.update(tenants(R"({"tenants": {"club": {"hosts": ["club.example"]}}})"));
  ASSERT_NE(previous, nullptr);
  EXPECT_NE(previous->find("social"), nullptr);
  EXPECT_EQ(previous->find("club"), nullptr);
  EXPECT_EQ(router.tenant_for("social.example"), std::nullopt);
  EXPECT_EQ(router.tenant_for("club.example"), std::optional<std::string>("club"));
  // Back to one instance (the file's variable removed is a restart, but update(nullptr) is defined).
  router.update(nullptr);
  EXPECT_EQ(router.tenant_for("club.example"), std::optional<std::string>(""));
}

}  // namespace
}  // namespace sluice::gateway
