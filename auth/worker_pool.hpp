#pragma once
// Threads that run PostgreSQL work, so that gRPC's own threads never block on the
// database (a cache hit is answered inline; a miss is queued here).
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

namespace sluice {

// The auth tier could not take a lookup: its queue was full, the lookup waited past
// its deadline, or the service is stopping (docs/protocol.md#auth-overload). Reported
// to the gateway as RESOURCE_EXHAUSTED, which answers 503 with Retry-After.
struct WorkRefused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class WorkerPool {
 public:
  // At most `max_queued` tasks wait (0: no bound); beyond, submit refuses.
  explicit WorkerPool(int threads, size_t max_queued = 0);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false when the queue is full or stop() has begun (the caller
  // answers by itself then, with WorkRefused).
  bool submit(std::function<void()> task);
  // Runs what is already queued, then joins the threads. Idempotent.
  void stop();

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  const size_t max_queued_;
  bool stopping_ = false;
  std::mutex join_mutex_;  // stop() may be called from two threads
  std::vector<std::thread> threads_;
};

}  // namespace sluice
