// The tenants file kept current (common/tenants_file.hpp): read at start, read again on
// SIGHUP (reload()) and by its watcher thread; a broken version never replaces a good one.
#include <gtest/gtest.h>

#include <condition_variable>
#include <fstream>
#include <mutex>

#include "common/config_error.hpp"
#include "common/tenants_file.hpp"
#include "tests/support/process.hpp"

namespace sluice {
namespace {

using std::chrono::milliseconds;

const char* kOne = R"({"tenants": {"a": {"hosts": ["a.example"], "env": {"DB_NAME": "a"}}}})";
const char* kTwo = R"({"tenants": {"a": {"hosts": ["a.example"], "env": {"DB_NAME": "a"}},
                                   "b": {"hosts": ["b.example"]}}})";

struct FileFixture {
  testing::TempDir dir;
  std::string path = dir.path() + "/tenants.json";
  void write(const std::string& text) const {
    // Written aside and renamed into place, as a ConfigMap update swaps its files.
    std::string aside = path + ".new";
    std::ofstream(aside, std::ios::trunc) << text;
    ASSERT_EQ(::rename(aside.c_str(), path.c_str()), 0);
  }
  Env env(const std::string& reload_ms = "0") const {
    return Env::from_map({{"SLUICE_TENANTS_FILE", path}, {"SLUICE_TENANTS_RELOAD_MS", reload_ms}});
  }
};

std::vector<std::string> names(const Tenants& tenants) {
  std::vector<std::string> out;
  for (const Tenant& tenant : tenants.all()) out.push_back(tenant.name);
  return out;
}

TEST(TenantsFile, AbsentVariableMeansOneInstanceFromTheEnvironment) {
  EXPECT_EQ(TenantsFile::from_env(Env::from_map({})), nullptr);
  EXPECT_EQ(TenantsFile::from_env(Env::from_map({{"SLUICE_TENANTS_FILE", ""}})), nullptr);
}

TEST(TenantsFile, AMissingOrBrokenFileStopsTheStartWithItsPath) {
  FileFixture file;
  try {
    TenantsFile::from_env(file.env());
    FAIL() << "a missing file was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find(file.path), std::string::npos) << e.what();
  }
  file.write(R"({"tenants": {"a": {"hosts": []}}})");
  try {
    TenantsFile::from_env(file.env());
    FAIL() << "a tenant without hosts was accepted";
  } catch (const ConfigError& e) {
    EXPECT_NE(std::string(e.what()).find("SLUICE_TENANTS_FILE " + file.path + ": "), std::string::npos) << e.what();
  }
  file.write(kOne);
  EXPECT_THROW(TenantsFile::from_env(file.env("soon")), ConfigError);
}

TEST(TenantsFile, ReloadTakesAChangedFileAndKeepsTheLastGoodOneOverABrokenOne) {
  FileFixture file;
  file.write(kOne);
  auto tenants_file = TenantsFile::from_env(file.env());
  ASSERT_NE(tenants_file, nullptr);
  std::vector<std::vector<std::string>> seen;
  tenants_file->watch([&](std::shared_ptr<const Tenants> tenants) { seen.push_back(names(*tenants)); });
  EXPECT_EQ(names(*tenants_file->current()), std::vector<std::string>{"a"});

  EXPECT_FALSE(tenants_file->reload()) << "nothing changed";
  file.write(kTwo);
  EXPECT_TRUE(tenants_file->reload());
  EXPECT_EQ(names(*tenants_file->current()), (std::vector<std::string>{"a", "b"}));

  file.write(R"({"tenants": {"a": {"hosts": ["a.example"]}, "b": {"hosts": ["a.example"]}}})");
  EXPECT_FALSE(tenants_file->reload()) << "a host of two tenants must not replace a good file";
  ::unlink(file.path.c_str());
  EXPECT_FALSE(tenants_file->reload()) << "a vanished file must not replace a good one";
  EXPECT_EQ(names(*tenants_file->current()), (std::vector<std::string>{"a", "b"}));

  file.write(kOne);
  EXPECT_TRUE(tenants_file->reload());
  EXPECT_EQ(seen, (std::vector<std::vector<std::string>>{{"a", "b"}, {"a"}}));
}

TEST(TenantsFile, TheWatcherTakesAChangeWithoutBeingAsked) {
  FileFixture file;
  file.write(kOne);
  auto tenants_file = TenantsFile::from_env(file.env("20"));
  std::mutex mutex;
  std::condition_variable changed;
  std::shared_ptr<const Tenants> latest;
  tenants_file->watch([&](std::shared_ptr<const Tenants> tenants) {
    std::lock_guard lock(mutex);
    latest = std::move(tenants);
    changed.notify_all();
  });
  file.write(kTwo);
  std::unique_lock lock(mutex);
  ASSERT_TRUE(changed.wait_for(lock, std::chrono::seconds(20), [&] { return latest != nullptr; }));
  EXPECT_EQ(names(*latest), (std::vector<std::string>{"a", "b"}));
  lock.unlock();
  tenants_file->stop();
}

}  // namespace
}  // namespace sluice
