// sluice-bench: load tool for Sluice (and any Mastodon-compatible streaming
// server). The coordinator (this process) parses options, forks client worker
// processes (bench/worker.cpp), waits until every client is connected, verifies
// that the server subscribed the Redis channels, publishes the events itself,
// waits for stragglers, and reports. See docs/benchmarks.md.
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <arpa/inet.h>

#include <algorithm>
#include <cerrno>
#include <cinttypes>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <functional>
#include <stdexcept>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/histogram.hpp"
#include "bench/options.hpp"
#include "bench/plan.hpp"
#include "bench/proc_stats.hpp"
#include "bench/publisher.hpp"
#include "bench/report.hpp"
#include "bench/self_test.hpp"
#include "bench/event_marker.hpp"
#include "bench/util.hpp"
#include "bench/worker.hpp"

namespace sluice_bench {
namespace {

using json = nlohmann::json;

constexpr uint32_t kClientsPerWorker = 15000;

volatile sig_atomic_t g_interrupted = 0;
void on_signal(int) { g_interrupted = 1; }

struct SetupError : std::runtime_error {
  using std::runtime_error::runtime_error;
};

struct WorkerLink {
  pid_t pid = -1;
  int up = -1;    // read end: reports from the worker
  int down = -1;  // write end: commands to the worker
  std::string buffer;
  json progress = json::object();
  json final;
  bool closed = false;  // EOF on `up`
};

bool is_loopback(const sockaddr* addr) {
  if (addr->sa_family == AF_INET) {
    auto* in = reinterpret_cast<const sockaddr_in*>(addr);
    return (ntohl(in->sin_addr.s_addr) >> 24) == 127;
  }
  if (addr->sa_family == AF_INET6) {
    auto* in6 = reinterpret_cast<const sockaddr_in6*>(addr);
    if (IN6_IS_ADDR_LOOPBACK(&in6->sin6_addr)) return true;
    if (IN6_IS_ADDR_V4MAPPED(&in6->sin6_addr)) return in6->sin6_addr.s6_addr[12] == 127;
  }
  return false;
}

class Coordinator {
 public:
  explicit Coordinator(Options options) : o_(std::move(options)) {}
  int run();

 private:
  void resolve_target();
  void fork_workers();
  void poll_workers(uint64_t wait_ns);
  void handle_line(WorkerLink& w, const std::string& line);
  void send_all(const std::string& command);
  uint64_t sum(const char* key) const;
  bool all(const char* key) const;
  // Every worker still running has reported, since the publish counts, each event its
  // clients must get (first receipts; excused and late ones do not count).
  bool every_expected_event_arrived() const;
  bool deadline_passed() const { return monotonic_ns() >= deadline_ns_; }
  bool should_stop() {
    if (g_interrupted && aborted_.empty()) aborted_ = "interrupted";
    if (deadline_passed() && aborted_.empty()) aborted_ = "max-seconds reached";
    return !aborted_.empty();
  }
  void wait_for(uint64_t ns, const std::function<bool()>& done);
  void show_progress(bool force = false);
  void collect_finals();

  Options o_;
  Plan plan_;
  WorkerConfig worker_template_;
  std::vector<WorkerLink> workers_;
  uint64_t start_ns_ = 0;
  uint64_t deadline_ns_ = 0;
  std::string phase_ = "connect";
  std::string aborted_;
  uint64_t last_progress_ns_ = 0;
  uint64_t published_events_ = 0;
  uint64_t planned_expected_ = 0;  // from the plan, for the progress line only
  size_t progress_width_ = 0;
};

void Coordinator::resolve_target() {
  addrinfo hints{};
  hints.ai_family = AF_UNSPEC;
  hints.ai_socktype = SOCK_STREAM;
  addrinfo* res = nullptr;
  const std::string port = std::to_string(o_.port);
  int rc = getaddrinfo(o_.host.c_str(), port.c_str(), &hints, &res);
  if (rc != 0 || !res) throw UsageError("--host " + o_.host + ": " + gai_strerror(rc));
  std::memcpy(&worker_template_.target, res->ai_addr, res->ai_addrlen);
  worker_template_.target_len = res->ai_addrlen;
  freeaddrinfo(res);
  const auto* addr = reinterpret_cast<const sockaddr*>(&worker_template_.target);
  if (!is_loopback(addr) && !o_.allow_remote) {
    throw UsageError("--host " + o_.host +
                     " is not a loopback address; pass --allow-remote to load a server you are entitled to test");
  }
  worker_template_.spread_sources = o_.spread_sources && addr->sa_family == AF_INET && is_loopback(addr);
  const bool v6_literal = o_.host.find(':') != std::string::npos;
  worker_template_.host_header = (v6_literal ? "[" + o_.host + "]" : o_.host) + ":" + port;
}

void Coordinator::fork_workers() {
  const uint32_t count = std::min<uint32_t>(
      o_.clients, o_.workers ? o_.workers : std::max<uint32_t>(1, (o_.clients + kClientsPerWorker - 1) / kClientsPerWorker));
  std::fflush(stdout);
  std::fflush(stderr);
  const pid_t parent = getpid();
  workers_.resize(count);
  for (uint32_t id = 0; id < count; ++id) {
    int up[2], down[2];
    if (pipe2(up, O_CLOEXEC) != 0 || pipe2(down, O_CLOEXEC) != 0) throw SetupError(std::string("pipe: ") + std::strerror(errno));
    pid_t pid = fork();
    if (pid < 0) throw SetupError(std::string("fork: ") + std::strerror(errno));
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);
      if (getppid() != parent) _exit(3);
      signal(SIGINT, SIG_IGN);  // the coordinator decides when to stop
      signal(SIGTERM, SIG_DFL);
      for (uint32_t prev = 0; prev < id; ++prev) {
        ::close(workers_[prev].up);
        ::close(workers_[prev].down);
      }
      ::close(up[0]);
      ::close(down[1]);
      WorkerConfig cfg = worker_template_;
      cfg.id = id;
      cfg.count = count;
      cfg.seed = splitmix64(worker_template_.seed + id);
      cfg.to_parent = up[1];
      cfg.from_parent = down[0];
      int rc = 3;
      try {
        rc = run_worker(cfg);
      } catch (const std::exception& e) {
        std::fprintf(stderr, "\nsluice-bench worker %u: %s\n", id, e.what());
      }
      _exit(rc);
    }
    ::close(up[1]);
    ::close(down[0]);
    workers_[id].pid = pid;
    workers_[id].up = up[0];
    workers_[id].down = down[1];
    fcntl(up[0], F_SETFL, fcntl(up[0], F_GETFL) | O_NONBLOCK);
  }
}

void Coordinator::handle_line(WorkerLink& w, const std::string& line) {
  json j;
  try {
    j = json::parse(line);
  } catch (const std::exception&) {
    return;
  }
  if (j.value("t", "") == "f") {
    w.final = j;
  }
  w.progress = std::move(j);
}

void Coordinator::poll_workers(uint64_t wait_ns) {
  std::vector<pollfd> fds;
  std::vector<size_t> index;
  for (size_t i = 0; i < workers_.size(); ++i) {
    if (workers_[i].closed) continue;
    fds.push_back({workers_[i].up, POLLIN, 0});
    index.push_back(i);
  }
  timespec ts{static_cast<time_t>(wait_ns / 1000000000ull), static_cast<long>(wait_ns % 1000000000ull)};
  if (fds.empty()) {
    nanosleep(&ts, nullptr);
    return;
  }
  int n = ppoll(fds.data(), fds.size(), &ts, nullptr);
  if (n <= 0) return;
  char buf[65536];
  for (size_t k = 0; k < fds.size(); ++k) {
    if (!(fds[k].revents & (POLLIN | POLLHUP | POLLERR))) continue;
    WorkerLink& w = workers_[index[k]];
    for (;;) {
      ssize_t r = ::read(w.up, buf, sizeof buf);
      if (r > 0) {
        w.buffer.append(buf, static_cast<size_t>(r));
        continue;
      }
      if (r < 0 && errno == EINTR) continue;
      if (r == 0) w.closed = true;
      break;
    }
    size_t nl;
    while ((nl = w.buffer.find('\n')) != std::string::npos) {
      std::string line = w.buffer.substr(0, nl);
      w.buffer.erase(0, nl + 1);
      handle_line(w, line);
    }
  }
}

void Coordinator::send_all(const std::string& command) {
  for (auto& w : workers_) {
    if (w.down < 0) continue;
    std::string line = command + "\n";
    const char* p = line.data();
    size_t left = line.size();
    while (left > 0) {
      ssize_t n = ::write(w.down, p, left);
      if (n < 0 && errno == EINTR) continue;
      if (n <= 0) break;
      p += n;
      left -= static_cast<size_t>(n);
    }
  }
}

uint64_t Coordinator::sum(const char* key) const {
  uint64_t total = 0;
  for (const auto& w : workers_) total += w.progress.value(key, uint64_t{0});
  return total;
}

bool Coordinator::every_expected_event_arrived() const {
  for (const auto& w : workers_) {
    if (w.closed) continue;
    if (!w.progress.contains("expected") || !w.progress.contains("received")) return false;
    if (w.progress.value("received", uint64_t{0}) < w.progress.value("expected", uint64_t{0})) return false;
  }
  return true;
}

bool Coordinator::all(const char* key) const {
  for (const auto& w : workers_) {
    if (!w.closed && !w.progress.value(key, false)) return false;
  }
  return true;
}

void Coordinator::wait_for(uint64_t ns, const std::function<bool()>& done) {
  const uint64_t until = monotonic_ns() + ns;
  while (!should_stop()) {
    if (done && done()) return;
    const uint64_t now = monotonic_ns();
    if (now >= until) return;
    poll_workers(std::min<uint64_t>(until - now, 50'000'000));
    show_progress();
  }
}

void Coordinator::show_progress(bool force) {
  if (!o_.progress) return;
  const uint64_t now = monotonic_ns();
  if (!force && now - last_progress_ns_ < 250'000'000) return;
  last_progress_ns_ = now;
  char line[512];
  const double elapsed = static_cast<double>(now - start_ns_) / 1e9;
  const uint64_t delivered = sum("delivered");
  int len;
  if (phase_ == "connect" || phase_ == "settle" || phase_ == "subscribe") {
    len = std::snprintf(line, sizeof line, "[%s] %" PRIu64 "/%u connected, %" PRIu64 " failed, %" PRIu64
                        " pending, %" PRIu64 " dropped | %.1fs",
                        phase_.c_str(), sum("ok"), o_.clients, sum("failed"), sum("pending"), sum("dropped"), elapsed);
  } else {
    const double pct = planned_expected_ ? 100.0 * static_cast<double>(delivered) / static_cast<double>(planned_expected_) : 0.0;
    len = std::snprintf(line, sizeof line, "[%s] %" PRIu64 "/%u events | delivered %" PRIu64 " (%.2f%%) | %" PRIu64
                        " clients, %" PRIu64 " dropped | %.1fs",
                        phase_.c_str(), published_events_, o_.events, delivered, pct, sum("ok") - sum("dropped"),
                        sum("dropped"), elapsed);
  }
  if (len < 0) return;
  std::string text(line, std::min<size_t>(static_cast<size_t>(len), sizeof line - 1));
  if (text.size() < progress_width_) text.append(progress_width_ - text.size(), ' ');
  progress_width_ = std::max(progress_width_, text.size());
  std::fprintf(stderr, "\r%s", text.c_str());
  std::fflush(stderr);
}

void Coordinator::collect_finals() {
  send_all("finish");
  const uint64_t until = monotonic_ns() + 15'000'000'000ull;
  for (;;) {
    bool waiting = false;
    for (const auto& w : workers_) waiting |= w.final.is_null() && !w.closed;
    if (!waiting || monotonic_ns() >= until) break;
    poll_workers(50'000'000);
  }
  for (auto& w : workers_) {
    if (w.down >= 0) ::close(w.down);
    w.down = -1;
  }
  for (auto& w : workers_) {
    int status = 0;
    const uint64_t wait_until = monotonic_ns() + 5'000'000'000ull;
    while (waitpid(w.pid, &status, WNOHANG) == 0) {
      if (monotonic_ns() >= wait_until) {
        kill(w.pid, SIGKILL);
        waitpid(w.pid, &status, 0);
        break;
      }
      timespec ts{0, 20'000'000};
      nanosleep(&ts, nullptr);
    }
    ::close(w.up);
  }
}

int Coordinator::run() {
  resolve_target();
  plan_ = build_plan(o_);
  for (pid_t pid : o_.server_pids) {
    if (!sample_process(pid)) throw SetupError("--server-pid " + std::to_string(pid) + ": no such process (or /proc unreadable)");
  }
  RedisPublisher redis(o_.redis_host, o_.redis_port, o_.redis_user, o_.redis_password, o_.redis_namespace);

  const uint64_t run_seed = random_seed();
  char run_id[17];
  std::snprintf(run_id, sizeof run_id, "%016" PRIx64, run_seed);
  const std::string marker = marker_prefix_for(run_id);
  if (plan_.channels.size() >= kMaxMarkerChannels) throw UsageError("too many Redis channels for the event marker");
  // templates[remote * mix + k]: the s-th event on a channel uses k = s mod mix.
  std::vector<EventTemplate> templates = make_event_templates(marker, o_.payload_bytes, o_.event_mix, run_seed);
  const size_t mix = o_.event_mix.size();
  const VerifierSetup verify = make_verifier_setup(templates, mix, marker, run_seed, plan_.remote_channel);

  worker_template_.options = &o_;
  worker_template_.plan = &plan_;
  worker_template_.verify = &verify;
  worker_template_.seed = run_seed;

  struct sigaction sa{};
  sa.sa_handler = on_signal;
  sigemptyset(&sa.sa_mask);
  sigaction(SIGINT, &sa, nullptr);
  sigaction(SIGTERM, &sa, nullptr);
  signal(SIGPIPE, SIG_IGN);

  Report r;
  r.options = &o_;
  r.plan = &plan_;
  r.run_id = run_id;
  for (const EventTemplate& t : templates) r.message_bytes = std::max(r.message_bytes, t.size());  // the largest of the mix

  start_ns_ = monotonic_ns();
  deadline_ns_ = start_ns_ + static_cast<uint64_t>(o_.max_seconds * 1e9);
  // The workers stop by themselves shortly after the hard bound, even if this process hangs.
  worker_template_.deadline_mono_ns = deadline_ns_ + 20'000'000'000ull;
  r.proc_before_connect = sample_processes(o_.server_pids);
  r.loadavg_start = read_loadavg();

  fork_workers();
  r.workers = static_cast<uint32_t>(workers_.size());

  // 1. Connect every client.
  const uint64_t connect_start = monotonic_ns();
  for (;;) {
    poll_workers(50'000'000);
    show_progress();
    bool everyone_reported = true;
    for (const auto& w : workers_) everyone_reported &= w.closed || w.progress.contains("connecting_done");
    if (everyone_reported && all("connecting_done")) break;
    bool any_alive = false;
    for (const auto& w : workers_) any_alive |= !w.closed;
    if (!any_alive) {
      aborted_ = "every worker exited";
      break;
    }
    if (should_stop()) break;
  }
  r.connect_seconds = static_cast<double>(monotonic_ns() - connect_start) / 1e9;
  r.proc_after_connect_cpu = sample_processes(o_.server_pids);

  // 2. Let the server finish its subscriptions, then measure memory.
  phase_ = "settle";
  const uint64_t settle_start = monotonic_ns();
  wait_for(uint64_t{o_.settle_ms} * 1'000'000, nullptr);
  r.settle_seconds = static_cast<double>(monotonic_ns() - settle_start) / 1e9;
  r.proc_after_connect = sample_processes(o_.server_pids);

  // 3. Check with Redis that the server subscribed every channel we will publish to.
  phase_ = "subscribe";
  const uint64_t subscribe_start = monotonic_ns();
  std::vector<long long> numsub(plan_.channels.size(), 0);
  if (o_.events > 0 && sum("ok") > 0 && aborted_.empty()) {
    const uint64_t until = monotonic_ns() + uint64_t{o_.subscribe_timeout_ms} * 1'000'000;
    for (;;) {
      try {
        numsub = redis.numsub(plan_.channels);
      } catch (const std::exception& e) {
        aborted_ = e.what();
        break;
      }
      if (std::all_of(numsub.begin(), numsub.end(), [](long long n) { return n > 0; })) break;
      if (monotonic_ns() >= until || should_stop()) break;
      wait_for(100'000'000, nullptr);
    }
  }
  r.subscribe_seconds = static_cast<double>(monotonic_ns() - subscribe_start) / 1e9;
  for (size_t i = 0; i < numsub.size(); ++i) {
    if (numsub[i] > 0) {
      ++r.subscribed_channels;
    } else if (o_.events > 0) {
      r.unsubscribed_examples.push_back(redis.full_name(plan_.channels[i]));
    }
  }

  // 4. Publish. Event k is due at start + k / rate (open loop: a late publisher
  // catches up instead of silently lowering the rate).
  phase_ = "publish";
  std::vector<uint64_t> per_channel(plan_.channels.size(), 0);
  json excused = json::object();  // "<channel>": [seq, ...] the verifier must not require
  OutageExcuses outage_excuses(plan_.channels.size());
  r.proc_before_publish = sample_processes(o_.server_pids);
  const uint64_t publish_start = monotonic_ns();
  r.first_publish_realtime_ns = realtime_ns();
  const double interval_ns = 1e9 / o_.rate;
  if (sum("ok") == 0 && aborted_.empty()) aborted_ = "no client connected";
  for (uint32_t k = 0; k < o_.events && !should_stop(); ++k) {
    const uint64_t due = publish_start + static_cast<uint64_t>(std::llround(k * interval_ns));
    for (uint64_t now = monotonic_ns(); now < due && !should_stop(); now = monotonic_ns()) {
      poll_workers(due - now);
      show_progress();
    }
    if (should_stop()) break;
    const size_t first = o_.round_robin_channels ? k % plan_.channels.size() : 0;
    const size_t last = o_.round_robin_channels ? first + 1 : plan_.channels.size();
    // --redis-outages: an event whose seq is consumed without a positive reply is
    // excused (the verifier does not require it), and the publisher moves on.
    auto excuse = [&](size_t c, uint64_t& counter) {
      excused[std::to_string(c)].push_back(per_channel[c]);
      ++per_channel[c];
      ++counter;
    };
    try {
      // Pipelined in small batches, so that many channels (one per account) do not
      // cost a round trip each, while a stamp is never far ahead of its send.
      constexpr size_t kBatch = 32;
      for (size_t batch = first; batch < last; batch += kBatch) {
        const size_t end = std::min(last, batch + kBatch);
        if (o_.redis_outages && !redis.connected()) {
          if (!redis.reconnect()) {
            // Redis is down: nothing more of this event reaches it.
            for (size_t c = batch; c < last; ++c) excuse(c, r.publishes_unsent);
            break;
          }
          r.redis_outages.back().answered_realtime_ns = realtime_ns();
          outage_excuses.answered();
        }
        try {
          for (size_t c = batch; c < end; ++c) {
            const uint64_t seq = per_channel[c];  // sequence number on this channel
            EventTemplate& event = templates[(plan_.remote_channel[c] ? mix : 0) + seq % mix];
            redis.append_publish(plan_.channels[c],
                                 event.stamp(realtime_ns(), static_cast<uint32_t>(seq), static_cast<uint32_t>(c)));
          }
          std::vector<long long> receivers = redis.collect_replies(end - batch);
          for (size_t c = batch; c < end; ++c) {
            ++r.publishes;
            const bool heard = receivers[c - batch] > 0;
            if (heard) outage_excuses.heard(c);
            // Redis had it and nobody to give it to, on a channel not heard since Redis
            // came back (a broker still re-subscribing it).
            if (!heard && o_.redis_outages && outage_excuses.excuses_unheard(c)) {
              excuse(c, r.publishes_without_subscriber);
              continue;
            }
            if (!heard) ++r.publishes_without_subscriber;
            ++per_channel[c];
            planned_expected_ += plan_.clients_per_channel[c];
          }
        } catch (const RedisLost&) {
          if (!o_.redis_outages) throw;
          // Whether Redis received the batch in flight is unknown.
          for (size_t c = batch; c < end; ++c) excuse(c, r.publishes_unknown);
          r.redis_outages.push_back({realtime_ns(), 0, 0});
          outage_excuses.lost();
        }
      }
    } catch (const std::exception& e) {
      aborted_ = e.what();
      break;
    }
    if (!r.redis_outages.empty() && r.redis_outages.back().answered_realtime_ns &&
        !r.redis_outages.back().resumed_realtime_ns && outage_excuses.every_channel_heard()) {
      r.redis_outages.back().resumed_realtime_ns = realtime_ns();
    }
    ++published_events_;
  }
  r.publish_seconds = static_cast<double>(monotonic_ns() - publish_start) / 1e9;
  r.published_events = published_events_;
  if (!excused.empty()) send_all("excuse " + excused.dump());
  send_all("expect " + json(per_channel).dump());

  // 5. Wait for stragglers: until every worker has all it expects, or the drain timeout.
  phase_ = "drain";
  const uint64_t drain_start = monotonic_ns();
  if (aborted_.empty() && published_events_ > 0) {
    wait_for(uint64_t{o_.drain_ms} * 1'000'000, [&] { return every_expected_event_arrived(); });
  }
  r.drain_seconds = static_cast<double>(monotonic_ns() - drain_start) / 1e9;
  r.proc_after_run = sample_processes(o_.server_pids);
  r.loadavg_end = read_loadavg();
  // Then keep reading (outside the measured window): the drain ends at the last expected
  // event, and a duplicate or stray event behind it would otherwise go unread. Only when
  // everything arrived: after a drain that timed out, an event arriving now would count
  // as delivered, and "missing" would no longer mean "not there within --drain-ms".
  phase_ = "linger";
  const uint64_t linger_start = monotonic_ns();
  if (aborted_.empty() && published_events_ > 0 && every_expected_event_arrived()) {
    wait_for(uint64_t{o_.linger_ms} * 1'000'000, nullptr);
  }
  r.linger_seconds = static_cast<double>(monotonic_ns() - linger_start) / 1e9;
  should_stop();  // an interrupt during the drain still marks the run
  show_progress(true);
  if (o_.progress) std::fprintf(stderr, "\n");

  // 6. Close the clients and collect the workers' reports.
  phase_ = "finish";
  collect_finals();
  r.total_seconds = static_cast<double>(monotonic_ns() - start_ns_) / 1e9;
  for (const auto& w : workers_) {
    if (w.final.is_null()) {
      ++r.workers_lost;
    } else {
      r.finals.push_back(w.final);
    }
  }
  if (r.workers_lost > 0 && aborted_.empty()) aborted_ = std::to_string(r.workers_lost) + " worker(s) sent no report";
  r.aborted = aborted_;

  json result = r.to_json();
  if (!o_.json_only) print_table(result);
  std::printf("SLUICE_BENCH_RESULT %s\n", result.dump().c_str());
  std::fflush(stdout);
  if (!result.value("ok", false)) return 1;
  if (o_.fail_on_mismatch && !result["delivery"].value("verified", false)) return 4;
  return 0;
}

}  // namespace
}  // namespace sluice_bench

int main(int argc, char** argv) {
  using namespace sluice_bench;
  try {
    Options options = parse_options(argc, argv);
    if (options.self_test) return run_self_test();
    Coordinator coordinator(std::move(options));
    return coordinator.run();
  } catch (const UsageError& e) {
    std::fprintf(stderr, "sluice-bench: %s\n", e.what());
    return 2;
  } catch (const std::exception& e) {
    std::fprintf(stderr, "\nsluice-bench: %s\n", e.what());
    return 3;
  }
}
