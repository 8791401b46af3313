#pragma once
// Child processes and temporary directories for integration and end-to-end tests.
#include <sys/types.h>

#include <chrono>
#include <thread>
#include <map>
#include <string>
#include <vector>

namespace sluice::testing {

// A directory under $TMPDIR removed (recursively) on destruction.
class TempDir {
 public:
  TempDir();
  ~TempDir();
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const std::string& path() const { return path_; }

 private:
  std::string path_;
};

// A child process; killed (SIGTERM, then SIGKILL) on destruction unless waited for.
class Process {
 public:
  // `env` entries are added to (or override) the current environment.
  // Output goes to `log_path` (stdout and stderr) when given, else to /dev/null.
  Process(std::vector<std::string> argv, std::map<std::string, std::string> env = {},
          std::string log_path = {});
  ~Process();
  Process(const Process&) = delete;
  Process& operator=(const Process&) = delete;

  pid_t pid() const { return pid_; }
  bool running();
  // Sends `signal`; returns the exit status (as from waitpid) or -1 on timeout.
  int stop(int signal, std::chrono::milliseconds timeout = std::chrono::seconds(10));
  int wait(std::chrono::milliseconds timeout);

 private:
  pid_t pid_ = -1;
  int status_ = -1;
};

// Runs a command to completion; returns its exit code and (stdout+stderr) in `output`.
int run_command(const std::vector<std::string>& argv, std::string* output = nullptr);

// A TCP port on 127.0.0.1 that was free a moment ago.
int free_port();
// A whole file as text ("" when it cannot be read).
std::string read_file(const std::string& path);

// Waits until something accepts TCP connections on 127.0.0.1:port.
bool wait_for_port(int port, std::chrono::milliseconds timeout);

// The directory with the project's binaries (SLUICE_BIN_DIR at build time).
std::string bin_dir();
// The project's source root (SLUICE_SOURCE_DIR at build time).
std::string source_dir();

// Polls `predicate` until it holds.
template <typename Predicate>
bool eventually(Predicate predicate, std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (std::chrono::steady_clock::now() < deadline) {
    if (predicate()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(20));
  }
  return predicate();
}

}  // namespace sluice::testing
