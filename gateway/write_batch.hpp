#pragma once
// The socket writes of one fan-out step handed to the kernel together: one io_uring
// submission for every client that got data, instead of one sendmsg system call each.
// On the virtual machines this project is measured on, a system call's entry and exit
// cost about as much as the write it carries, and a fan-out to many clients is mostly
// system calls (docs/benchmarks.md#writes-batched-through-io_uring-2026-12-05).
//
// Each write is non-blocking (MSG_DONTWAIT), exactly as the one it replaces: it takes
// what the socket has room for, at once, and the writer carries on with the rest as
// before (an asynchronous write that waits for room). So the batch only changes how
// the kernel is entered, never what a client receives or when a slow one is cut.
//
// Where io_uring is not there (a kernel without it or without its socket writes, which
// came in 5.6; a seccomp profile that refuses it; SLUICE_GATEWAY_IO_URING=false),
// available() is false and writers write one by one.
// Worker thread only.
#include <sys/socket.h>
#include <sys/uio.h>

#include <cstddef>
#include <exception>
#include <memory>
#include <string>
#include <vector>

struct io_uring_cqe;

namespace sluice::metrics {
class Counter;
}

namespace sluice::gateway {

// What the batch needs of a connection.
class BatchedWriter {
 public:
  virtual ~BatchedWriter() = default;
  virtual int batched_fd() = 0;
  // Fills `out` with up to `max` buffers to write now; 0 when there is nothing to write.
  virtual size_t gather(iovec* out, size_t max) = 0;
  // The result of the write of what gather gave: bytes written, or -errno (-EAGAIN
  // when the socket had no room). Also called, with 0, when gather gave nothing.
  virtual void batch_written(long result) = 0;
};

class WriteBatch {
 public:
  // Buffers gathered into one write, at most.
  static constexpr size_t kMaxGather = 32;

  // Sets up the ring unless `enabled` is false; `why_unavailable` says why it could not.
  // The counters, when given, add up the writes and the system calls that carried them.
  explicit WriteBatch(bool enabled, metrics::Counter* writes_counter = nullptr,
                      metrics::Counter* submissions_counter = nullptr);
  virtual ~WriteBatch();
  WriteBatch(const WriteBatch&) = delete;
  WriteBatch& operator=(const WriteBatch&) = delete;

  bool available() const { return ring_ != nullptr; }
  const std::string& why_unavailable() const { return why_unavailable_; }

  // Between open() and submit(), writers enlist instead of writing (when available).
  void open() { open_ = available(); }
  bool is_open() const { return open_; }
  // Called once per writer per step; the writer is kept alive until its result.
  void enlist(std::shared_ptr<BatchedWriter> writer) { enlisted_.push_back(std::move(writer)); }
  // Closes the step: writes what every enlisted writer gathers and reports each result.
  // Writers that act on their result write one by one from then on. If a writer throws
  // on its result, the others still get theirs, and the first exception is rethrown.
  void submit();

  // System calls that submitted writes, and writes carried, for tests.
  size_t submissions() const { return submissions_; }
  size_t writes() const { return writes_; }

 protected:
  // Waits for the next completion: 0, or -errno (io_uring_wait_cqe). Virtual so a test
  // can make it fail: no real ring fails this wait on demand, since non-blocking writes
  // have completed by the time it is called.
  virtual int wait_for_completion(io_uring_cqe** completion);

 private:
  struct Ring;
  void write_chunk(const std::vector<std::shared_ptr<BatchedWriter>>& writers, size_t first, size_t count,
                   std::exception_ptr& failure);
  void complete(size_t queued);

  std::unique_ptr<Ring> ring_;
  std::string why_unavailable_;
  bool open_ = false;
  std::vector<std::shared_ptr<BatchedWriter>> enlisted_;
  // Per write of a chunk: its buffers, message header and result. Sized once per chunk
  // before any is filled, so the pointers the kernel reads stay put.
  std::vector<iovec> buffers_;
  std::vector<::msghdr> headers_;
  std::vector<long> results_;
  // Indices of the chunk's writes in the order they were queued.
  std::vector<size_t> queued_;
  // Set when the ring itself failed: once this step's results are out, writes go one by one.
  std::string ring_failure_;
  size_t submissions_ = 0;
  size_t writes_ = 0;
  metrics::Counter* writes_counter_;
  metrics::Counter* submissions_counter_;
};

}  // namespace sluice::gateway
