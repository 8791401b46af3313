#include "gateway/write_batch.hpp"

#include <liburing.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>
#include <exception>
#include <utility>

#include "common/log.hpp"
#include "common/metrics.hpp"

namespace sluice::gateway {

namespace {
// Writes per submission. The ring (512 entries and their completions) takes about 50 KiB
// per worker, the buffer lists of a full chunk up to about 290 KiB more, and a fan-out to
// 10,000 clients on two workers still enters the kernel only about ten times per event.
constexpr unsigned kRingEntries = 512;
}  // namespace

struct WriteBatch::Ring {
  io_uring ring{};
  bool set_up = false;
  ~Ring() {
    if (set_up) io_uring_queue_exit(&ring);
  }
};

WriteBatch::WriteBatch(bool enabled, metrics::Counter* writes_counter, metrics::Counter* submissions_counter)
    : writes_counter_(writes_counter), submissions_counter_(submissions_counter) {
  if (!enabled) {
    why_unavailable_ = "SLUICE_GATEWAY_IO_URING is false";
    return;
  }
  auto ring = std::make_unique<Ring>();
  // SUBMIT_ALL: a write that fails at submission (a closed descriptor) does not stop the
  // ones after it. COOP_TASKRUN: completions need no interrupt of the worker, which
  // collects them right away. Kernels before 5.19 know neither: plain then. Neither ties
  // the ring to the thread that sets it up (the gateway's), unlike SINGLE_ISSUER.
  io_uring_params params{};
  params.flags = IORING_SETUP_SUBMIT_ALL | IORING_SETUP_COOP_TASKRUN;
  int error = io_uring_queue_init_params(kRingEntries, &ring->ring, &params);
  if (error == -EINVAL) {
    params = {};
    error = io_uring_queue_init_params(kRingEntries, &ring->ring, &params);
  }
  if (error < 0) {
    why_unavailable_ = std::string("io_uring_setup: ") + std::strerror(-error);
    return;
  }
  ring->set_up = true;
  // A kernel with io_uring but without its socket writes (send from 5.6, sendmsg from
  // 5.3) would fail every write with EINVAL: ask it first.
  io_uring_probe* probe = io_uring_get_probe_ring(&ring->ring);
  bool writes_supported = probe != nullptr && io_uring_opcode_supported(probe, IORING_OP_SEND) &&
                          io_uring_opcode_supported(probe, IORING_OP_SENDMSG);
  if (probe != nullptr) io_uring_free_probe(probe);
  if (!writes_supported) {
    why_unavailable_ = "io_uring without IORING_OP_SEND and IORING_OP_SENDMSG (Linux 5.6 or later)";
    return;
  }
  ring_ = std::move(ring);
}

WriteBatch::~WriteBatch() = default;

int WriteBatch::wait_for_completion(io_uring_cqe** completion) { return io_uring_wait_cqe(&ring_->ring, completion); }

void WriteBatch::submit() {
  open_ = false;
  // Taken out first: whatever a writer does with its result (end its connection, or
  // throw), no writer of this step is left enlisted for the next one.
  std::vector<std::shared_ptr<BatchedWriter>> writers = std::exchange(enlisted_, {});
  // Results are handed out after each chunk; a writer acting on its result may end a
  // connection, but never enlists again in this step (the batch is closed).
  std::exception_ptr failure;
  for (size_t first = 0; first < writers.size(); first += kRingEntries) {
    write_chunk(writers, first, std::min<size_t>(kRingEntries, writers.size() - first), failure);
  }
  // The capacity stays for the next step.
  writers.clear();
  enlisted_ = std::move(writers);
  if (failure) std::rethrow_exception(failure);
}

void WriteBatch::write_chunk(const std::vector<std::shared_ptr<BatchedWriter>>& writers, size_t first, size_t count,
                             std::exception_ptr& failure) {
  buffers_.resize(count * kMaxGather);
  headers_.resize(count);
  results_.assign(count, 0);
  queued_.clear();
  for (size_t i = 0; i < count; ++i) {
    BatchedWriter& writer = *writers[first + i];
    iovec* buffers = &buffers_[i * kMaxGather];
    size_t gathered = writer.gather(buffers, kMaxGather);
    if (gathered == 0) continue;  // result 0: nothing was written
    if (!ring_) {
      // The ring failed in an earlier chunk of this step: these writers wait for room
      // and write themselves, as after a full socket.
      results_[i] = -EAGAIN;
      continue;
    }
    io_uring_sqe* sqe = io_uring_get_sqe(&ring_->ring);  // never null: at most kRingEntries per chunk
    // MSG_NOSIGNAL: a peer that left is an EPIPE result, not a signal (as Asio's writes).
    constexpr int kFlags = MSG_DONTWAIT | MSG_NOSIGNAL;
    if (gathered == 1) {
      io_uring_prep_send(sqe, writer.batched_fd(), buffers[0].iov_base, buffers[0].iov_len, kFlags);
    } else {
      ::msghdr& header = headers_[i];
      header = {};
      header.msg_iov = buffers;
      header.msg_iovlen = gathered;
      io_uring_prep_sendmsg(sqe, writer.batched_fd(), &header, kFlags);
    }
    io_uring_sqe_set_data64(sqe, i);
    queued_.push_back(i);
  }
  if (!queued_.empty()) complete(queued_.size());
  // Every writer gets its result even if one throws on its own (the worker logs it and
  // carries on): a writer left without one would stay enlisted and never write again.
  for (size_t i = 0; i < count; ++i) {
    try {
      writers[first + i]->batch_written(results_[i]);
    } catch (...) {
      if (!failure) failure = std::current_exception();
    }
  }
  if (ring_ && !ring_failure_.empty()) {
    // Every writer has its result; later steps write one by one.
    log::error("io_uring failed; socket writes one system call each from now on", {{"error", ring_failure_}});
    why_unavailable_ = ring_failure_;
    ring_.reset();
    open_ = false;
  }
}

// Submits the queued writes and collects their results. Non-blocking writes complete
// during the submission, so waiting for them returns at once.
void WriteBatch::complete(size_t queued) {
  io_uring* ring = &ring_->ring;
  size_t submitted = 0;
  while (submitted < queued) {
    // A kernel without SUBMIT_ALL stops at a write that fails to submit; the rest are
    // submitted again.
    int n = io_uring_submit(ring);
    if (n == -EINTR) continue;
    if (n <= 0) {
      ring_failure_ = std::string("io_uring_enter: ") + std::strerror(n < 0 ? -n : EIO);
      break;
    }
    ++submissions_;
    if (submissions_counter_) submissions_counter_->inc();
    submitted += static_cast<size_t>(n);
  }
  writes_ += submitted;
  if (writes_counter_) writes_counter_->inc(submitted);
  // Writes are consumed in the order queued: those past `submitted` never went out, and
  // their writers wait for room as after a full socket.
  for (size_t k = submitted; k < queued; ++k) results_[queued_[k]] = -EAGAIN;
  // Marks the writes still waiting for their result (any result, 0 included, replaces it).
  constexpr long kAwaitingResult = LONG_MIN;
  for (size_t k = 0; k < submitted; ++k) results_[queued_[k]] = kAwaitingResult;
  size_t reaped = 0;
  while (reaped < submitted) {
    io_uring_cqe* cqe = nullptr;
    int error = wait_for_completion(&cqe);
    if (error == -EINTR) continue;
    if (error < 0) {
      // Whether these went out is unknown: their connections are ended rather than
      // risk a frame twice or a gap (clients reconnect).
      ring_failure_ = std::string("io_uring_wait_cqe: ") + std::strerror(-error);
      for (size_t k = 0; k < submitted; ++k) {
        if (results_[queued_[k]] == kAwaitingResult) results_[queued_[k]] = -EIO;
      }
      return;
    }
    results_[io_uring_cqe_get_data64(cqe)] = cqe->res;
    io_uring_cqe_seen(ring, cqe);
    ++reaped;
  }
}

}  // namespace sluice::gateway
