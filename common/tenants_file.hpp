#pragma once
// The tenants file named by SLUICE_TENANTS_FILE (docs/hosting.md#tenants), kept
// current: read at start (a bad file stops the process with one clear line), then
// read again every SLUICE_TENANTS_RELOAD_MS and on SIGHUP. A changed file that
// parses replaces the tenants the tiers serve; one that does not is logged and the
// last good version stays, so a typo in a ConfigMap never takes instances down.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <thread>

#include "common/env.hpp"
#include "common/tenants.hpp"

namespace sluice {

class TenantsFile {
 public:
  using Changed = std::function<void(std::shared_ptr<const Tenants>)>;

  // nullptr when SLUICE_TENANTS_FILE is unset or empty: the deployment serves the one
  // instance its environment describes. Throws ConfigError when the file cannot be
  // read or parsed, or SLUICE_TENANTS_RELOAD_MS is not a plain integer.
  static std::unique_ptr<TenantsFile> from_env(const Env& env);

  TenantsFile(std::string path, Env base, std::chrono::milliseconds reload_interval);
  ~TenantsFile();
  TenantsFile(const TenantsFile&) = delete;
  TenantsFile& operator=(const TenantsFile&) = delete;

  const std::string& path() const { return path_; }
  std::shared_ptr<const Tenants> current() const;

  // Starts the thread that re-reads the file; `changed` runs on it with every new
  // version that parses. Call once.
  void watch(Changed changed);
  // Reads the file now (SIGHUP; tests). Returns true when a new version was taken.
  bool reload();
  // Stops the thread. Idempotent.
  void stop();

 private:
  // The file's text, or ConfigError naming the path.
  std::string read_text() const;

  const std::string path_;
  const Env base_;
  const std::chrono::milliseconds reload_interval_;

  mutable std::mutex mutex_;  // guards everything below
  std::string text_;          // what current_ was parsed from
  std::shared_ptr<const Tenants> current_;
  Changed changed_;
  bool stopping_ = false;
  std::condition_variable wake_;
  std::mutex reload_mutex_;  // one reload at a time: the thread's and SIGHUP's
  std::thread thread_;
};

// The tenants a tier starts with: the file's, or nullptr without one (the one instance
// the environment describes).
inline std::shared_ptr<const Tenants> starting_tenants(const TenantsFile* file) {
  return file ? file->current() : nullptr;
}

// Follows a TenantsFile's new versions into `changed` for as long as it lives (nothing
// without a file). Declared after the objects `changed` calls into, it stops the
// watcher before they are destroyed, on every path out of a scope (a start that throws
// included).
class FollowTenants {
 public:
  FollowTenants(TenantsFile* file, TenantsFile::Changed changed) : file_(file) {
    if (file_) file_->watch(std::move(changed));
  }
  ~FollowTenants() {
    if (file_) file_->stop();
  }
  FollowTenants(const FollowTenants&) = delete;
  FollowTenants& operator=(const FollowTenants&) = delete;

 private:
  TenantsFile* file_;
};

// Waits for SIGTERM or SIGINT and returns it. SIGHUP reads `tenants_file` again; without
// one (nullptr) it stops the process as before. The file is no longer watched on return.
int wait_for_termination_reloading(TenantsFile* tenants_file);

}  // namespace sluice
