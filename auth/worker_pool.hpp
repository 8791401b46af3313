#pragma once
// Threads that run PostgreSQL work, so that gRPC's own threads never block on the
// database (a cache hit is answered inline; a miss is queued here).
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <unordered_map>
#include <vector>

#include "common/auth_stopping.hpp"

namespace sluice {

// The auth tier could not take a lookup: its queue was full, or the lookup waited past
// its deadline (docs/protocol.md#auth-overload). Reported to the gateway as
// RESOURCE_EXHAUSTED, which answers 503 with Retry-After.
struct WorkRefused : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The auth service is stopping (a rolling restart): reported as UNAVAILABLE, which the
// gateways' retry policy sends to another replica (docs/scale-out.md#auth-replicas).
struct ServiceStopping : WorkRefused {
  using WorkRefused::WorkRefused;
};

// What every refusal of a stopping tier carries: the message gateways recognise.
inline ServiceStopping service_stopping() { return ServiceStopping(std::string(kAuthStoppingMessage)); }

// Whose work a task is: tasks of one lane run in the order submitted, lanes take turns
// for free threads, at most `max_running` tasks of a lane run at once and at most
// `max_queued` wait, so one instance whose database hangs can neither hold every thread
// nor fill the queue while another's lookups wait (docs/hosting.md#databases). The
// default lane has no limits of its own.
struct WorkerLane {
  const void* key = nullptr;
  int max_running = 0;    // 0: as many as there are threads
  size_t max_queued = 0;  // 0: only the pool's bound
};

class WorkerPool {
 public:
  using Lane = WorkerLane;

  // At most `max_queued` tasks wait (0: no bound); beyond, submit refuses. A lane's
  // own bound is at most `lane_max_queued` (0: none), whatever the lane asks.
  explicit WorkerPool(int threads, size_t max_queued = 0, size_t lane_max_queued = 0);
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // Queues `task`; false when the pool's queue or the lane's is full, or stop() has
  // begun (the caller answers by itself then, with WorkRefused).
  bool submit(std::function<void()> task, Lane lane = {});
  // Why submit refuses now: ServiceStopping once stop() has begun, else WorkRefused.
  std::exception_ptr refusal();
  // Runs what is already queued, then joins the threads. Idempotent.
  void stop();

 private:
  void work();

  struct Queue {
    std::deque<std::function<void()>> tasks;
    int running = 0;
    int max_running = 0;
    bool in_turn = false;  // listed in turns_
  };
  // Lists the lane for a turn if it has work and room to run it. Under mutex_.
  void offer_turn_locked(const void* key, Queue& queue);

  std::mutex mutex_;
  std::condition_variable wake_;
  std::unordered_map<const void*, Queue> queues_;
  std::deque<const void*> turns_;  // lanes with a task that may start, in turn order
  size_t queued_ = 0;
  const size_t max_queued_;
  const size_t lane_max_queued_;
  bool stopping_ = false;
  std::mutex join_mutex_;  // stop() may be called from two threads
  std::vector<std::thread> threads_;
};

}  // namespace sluice
