#include "common/tenants_file.hpp"

#include <fstream>
#include <sstream>

#include "common/config_error.hpp"
#include "common/log.hpp"
#include "common/signals.hpp"
#include "common/thread_name.hpp"

namespace sluice {

std::unique_ptr<TenantsFile> TenantsFile::from_env(const Env& env) {
  auto path = env.non_empty("SLUICE_TENANTS_FILE");
  if (!path) return nullptr;
  auto interval = std::chrono::milliseconds(env.non_negative("SLUICE_TENANTS_RELOAD_MS", 10000));
  return std::make_unique<TenantsFile>(*path, env, interval);
}

TenantsFile::TenantsFile(std::string path, Env base, std::chrono::milliseconds reload_interval)
    : path_(std::move(path)), base_(std::move(base)), reload_interval_(reload_interval) {
  text_ = read_text();
  try {
    current_ = std::make_shared<const Tenants>(Tenants::parse(text_, base_));
  } catch (const ConfigError& e) {
    throw ConfigError("SLUICE_TENANTS_FILE " + path_ + ": " + e.what());
  }
}

TenantsFile::~TenantsFile() { stop(); }

std::string TenantsFile::read_text() const {
  std::ifstream in(path_, std::ios::binary);
  if (!in) throw ConfigError("SLUICE_TENANTS_FILE " + path_ + " cannot be read");
  std::ostringstream text;
  text << in.rdbuf();
  if (in.bad()) throw ConfigError("SLUICE_TENANTS_FILE " + path_ + " cannot be read");
  return std::move(text).str();
}

std::shared_ptr<const Tenants> TenantsFile::current() const {
  std::lock_guard lock(mutex_);
  return current_;
}

bool TenantsFile::reload() {
  std::lock_guard one_at_a_time(reload_mutex_);
  std::string text;
  std::shared_ptr<const Tenants> parsed;
  try {
    text = read_text();
    {
      std::lock_guard lock(mutex_);
      if (text == text_) return false;
    }
    parsed = std::make_shared<const Tenants>(Tenants::parse(text, base_));
  } catch (const ConfigError& e) {
    log::error("tenants file not reloaded; the last good version stays", {{"path", path_}, {"error", e.what()}});
    return false;
  }
  Changed changed;
  {
    std::lock_guard lock(mutex_);
    text_ = std::move(text);
    current_ = parsed;
    changed = changed_;
  }
  log::info("tenants file reloaded", {{"path", path_}, {"tenants", static_cast<int64_t>(parsed->all().size())}});
  // Under reload_mutex_ only: versions reach `changed` in the order they were read.
  if (changed) changed(parsed);
  return true;
}

void TenantsFile::watch(Changed changed) {
  {
    std::lock_guard lock(mutex_);
    changed_ = std::move(changed);
  }
  if (reload_interval_.count() == 0) return;  // SIGHUP only
  thread_ = std::thread([this] {
    name_this_thread("tenants-file");
    std::unique_lock lock(mutex_);
    while (!wake_.wait_for(lock, reload_interval_, [this] { return stopping_; })) {
      lock.unlock();
      reload();
      lock.lock();
    }
  });
}

void TenantsFile::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  if (thread_.joinable()) thread_.join();
}

int wait_for_termination_reloading(TenantsFile* tenants_file) {
  std::function<void()> reload;
  if (tenants_file) reload = [tenants_file] { tenants_file->reload(); };
  int signal = wait_for_termination_signal(reload);
  if (tenants_file) tenants_file->stop();
  return signal;
}

}  // namespace sluice
