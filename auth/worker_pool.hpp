#pragma once
// Threads that run PostgreSQL work, so that gRPC's own threads never block on the
// database (a cache hit is answered inline; a miss is queued here).
#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace sluice {

class WorkerPool {
 public:
  explicit WorkerPool(int threads);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false once stop() has begun (the caller answers by itself then).
  bool submit(std::function<void()> task);
  // Runs what is already queued, then joins the threads. Idempotent.
  void stop();

 private:
  void work();

  std::mutex mutex_;
  std::condition_variable wake_;
  std::deque<std::function<void()>> queue_;
  bool stopping_ = false;
  std::mutex join_mutex_;  // stop() may be called from two threads
  std::vector<std::thread> threads_;
};

}  // namespace sluice
