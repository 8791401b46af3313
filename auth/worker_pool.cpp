#include "auth/worker_pool.hpp"

#include <string>

#include "common/thread_name.hpp"

namespace sluice {

WorkerPool::WorkerPool(int threads, size_t max_queued, size_t lane_max_queued)
    : max_queued_(max_queued), lane_max_queued_(lane_max_queued) {
  if (threads < 1) threads = 1;
  threads_.reserve(static_cast<size_t>(threads));
  for (int i = 0; i < threads; ++i) {
    threads_.emplace_back([this, i] {
      name_this_thread("auth-db-" + std::to_string(i));
      work();
    });
  }
}

WorkerPool::~WorkerPool() { stop(); }

std::exception_ptr WorkerPool::refusal() {
  std::lock_guard lock(mutex_);
  if (stopping_) return std::make_exception_ptr(service_stopping());
  return std::make_exception_ptr(WorkRefused("the auth service is busy"));
}

bool WorkerPool::submit(std::function<void()> task, Lane lane) {
  {
    std::lock_guard lock(mutex_);
    if (stopping_ || (max_queued_ != 0 && queued_ >= max_queued_)) return false;
    Queue& queue = queues_[lane.key];
    size_t lane_bound = lane.max_queued;
    if (lane_max_queued_ != 0 && (lane_bound == 0 || lane_bound > lane_max_queued_)) lane_bound = lane_max_queued_;
    if (lane_bound != 0 && queue.tasks.size() >= lane_bound) return false;
    queue.max_running = lane.max_running;
    queue.tasks.push_back(std::move(task));
    ++queued_;
    offer_turn_locked(lane.key, queue);
  }
  wake_.notify_one();
  return true;
}

void WorkerPool::offer_turn_locked(const void* key, Queue& queue) {
  if (queue.in_turn || queue.tasks.empty()) return;
  if (queue.max_running > 0 && queue.running >= queue.max_running) return;
  queue.in_turn = true;
  turns_.push_back(key);
}

void WorkerPool::stop() {
  {
    std::lock_guard lock(mutex_);
    stopping_ = true;
  }
  wake_.notify_all();
  std::lock_guard join_lock(join_mutex_);
  for (auto& thread : threads_) {
    if (thread.joinable()) thread.join();
  }
}

void WorkerPool::work() {
  for (;;) {
    std::function<void()> task;
    const void* key = nullptr;
    {
      std::unique_lock lock(mutex_);
      wake_.wait(lock, [this] { return !turns_.empty() || (stopping_ && queued_ == 0); });
      if (turns_.empty()) return;  // stopping and drained
      key = turns_.front();
      turns_.pop_front();
      Queue& queue = queues_[key];
      queue.in_turn = false;
      task = std::move(queue.tasks.front());
      queue.tasks.pop_front();
      --queued_;
      ++queue.running;
      // Its next task waits for the other lanes' turns.
      offer_turn_locked(key, queue);
    }
    task();
    bool offered = false, drained = false;
    {
      std::lock_guard lock(mutex_);
      auto it = queues_.find(key);
      Queue& queue = it->second;
      --queue.running;
      const size_t turns = turns_.size();
      offer_turn_locked(key, queue);  // a lane at its limit has room again
      offered = turns_.size() > turns;
      if (queue.tasks.empty() && queue.running == 0) queues_.erase(it);
      drained = stopping_ && queued_ == 0;
    }
    if (offered) wake_.notify_one();
    if (drained) wake_.notify_all();  // stopping threads may go
  }
}

}  // namespace sluice
