// The worker's WriteBatch (gateway/write_batch.hpp) on real sockets: every writer's
// bytes arrive, whole and in order, with one submission per ring's worth of writers;
// a full socket takes what fits and the rest is the writer's; errors reach the writer.
#include <fcntl.h>
#include <gtest/gtest.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <functional>
#include <cerrno>
#include <climits>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "gateway/write_batch.hpp"

namespace sluice::gateway {
namespace {

// One end of a connected pair: the writer's side is written by the batch, the peer's
// read here.
struct SocketPair {
  int writer = -1;
  int peer = -1;
  SocketPair() {
    int fds[2];
    if (socketpair(AF_UNIX, SOCK_STREAM, 0, fds) == 0) {
      writer = fds[0];
      peer = fds[1];
    }
  }
  ~SocketPair() {
    if (writer >= 0) close(writer);
    if (peer >= 0) close(peer);
  }
  // Everything the peer can read now.
  std::string drain() const {
    std::string out;
    char buffer[65536];
    for (;;) {
      ssize_t n = recv(peer, buffer, sizeof buffer, MSG_DONTWAIT);
      if (n <= 0) return out;
      out.append(buffer, static_cast<size_t>(n));
    }
  }
};

class RecordingWriter : public BatchedWriter {
 public:
  RecordingWriter(int fd, std::vector<std::string> chunks) : fd_(fd), chunks_(std::move(chunks)) {}
  int batched_fd() override { return fd_; }
  size_t gather(iovec* out, size_t max) override {
    size_t count = std::min(chunks_.size(), max);
    for (size_t i = 0; i < count; ++i) out[i] = {chunks_[i].data(), chunks_[i].size()};
    return count;
  }
  void batch_written(long result) override {
    results.push_back(result);
  }
  std::vector<long> results;

 private:
  int fd_;
  std::vector<std::string> chunks_;
};

// Raises the soft open-file limit for `writers` socket pairs (two descriptors each: more
// than a common soft limit of 1,024 allows for a ring's worth); false if the hard limit is lower.
bool open_files_for(size_t writers) {
  const rlim_t needed = 2 * writers + 100;
  rlimit files{};
  if (getrlimit(RLIMIT_NOFILE, &files) != 0) return false;
  if (files.rlim_cur >= needed) return true;
  if (files.rlim_max < needed) return false;
  files.rlim_cur = needed;
  return setrlimit(RLIMIT_NOFILE, &files) == 0;
}

// Writers on their own socket pairs, enlisted in a batch: writer i writes chunks_of(i).
struct EnlistedWriters {
  std::vector<std::unique_ptr<SocketPair>> pairs;
  std::vector<std::shared_ptr<RecordingWriter>> writers;

  template <class ChunksOf>
  bool enlist(WriteBatch& batch, int count, ChunksOf chunks_of) {
    for (int i = 0; i < count; ++i) {
      pairs.push_back(std::make_unique<SocketPair>());
      if (pairs.back()->writer < 0) return false;
      writers.push_back(std::make_shared<RecordingWriter>(pairs.back()->writer, chunks_of(i)));
      batch.enlist(writers.back());
    }
    return true;
  }

  // Opens the batch and enlists `count` writers of "event <i>", the open-file limit
  // raised for them first. False only when the limit cannot be raised far enough (the
  // caller skips); a socket pair that cannot be made is a failure.
  bool enlist_events(WriteBatch& batch, int count) {
    if (!open_files_for(static_cast<size_t>(count))) return false;
    batch.open();
    EXPECT_TRUE(enlist(batch, count, [](int i) { return std::vector<std::string>{"event " + std::to_string(i)}; }))
        << "a socket pair could not be made";
    return true;
  }
};

#define SKIP_WITHOUT_IO_URING(batch) \
  if (!(batch).available()) GTEST_SKIP() << "io_uring unavailable here: " << (batch).why_unavailable()

TEST(WriteBatch, EveryWriterOfAStepIsWrittenWholeInOneSubmission) {
  WriteBatch batch(true);
  SKIP_WITHOUT_IO_URING(batch);
  constexpr int kWriters = 100;
  EnlistedWriters enlisted;
  auto& [pairs, writers] = enlisted;
  batch.open();
  ASSERT_TRUE(batch.is_open());
  ASSERT_TRUE(enlisted.enlist(batch, kWriters, [](int i) {
    // One frame for some, several gathered into one write for others.
    std::vector<std::string> chunks{"first " + std::to_string(i) + "\n"};
    for (int k = 0; k < i % 4; ++k) chunks.push_back("more " + std::to_string(k) + "\n");
    return chunks;
  }));
  batch.submit();
  EXPECT_FALSE(batch.is_open());
  EXPECT_EQ(batch.submissions(), 1u);
  EXPECT_EQ(batch.writes(), static_cast<size_t>(kWriters));
  for (int i = 0; i < kWriters; ++i) {
    std::string expected = "first " + std::to_string(i) + "\n";
    for (int k = 0; k < i % 4; ++k) expected += "more " + std::to_string(k) + "\n";
    ASSERT_EQ(writers[i]->results.size(), 1u) << "writer " << i;
    EXPECT_EQ(writers[i]->results[0], static_cast<long>(expected.size())) << "writer " << i;
    EXPECT_EQ(pairs[i]->drain(), expected) << "writer " << i;
  }
}

TEST(WriteBatch, MoreWritersThanTheRingHoldsTakeOneSubmissionPerRingful) {
  WriteBatch batch(true);
  SKIP_WITHOUT_IO_URING(batch);
  constexpr int kWriters = 1100;  // 512 + 512 + 76
  EnlistedWriters enlisted;
  auto& [pairs, writers] = enlisted;
  if (!enlisted.enlist_events(batch, kWriters)) GTEST_SKIP() << "open-file limit too low for " << kWriters << " socket pairs";
  batch.submit();
  EXPECT_EQ(batch.submissions(), 3u);
  EXPECT_EQ(batch.writes(), static_cast<size_t>(kWriters));
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_EQ(writers[i]->results.size(), 1u) << "writer " << i;
    EXPECT_EQ(pairs[i]->drain(), "event " + std::to_string(i)) << "writer " << i;
  }
}

TEST(WriteBatch, AFullSocketTakesWhatFitsAndThenNothingWithoutBlocking) {
  WriteBatch batch(true);
  SKIP_WITHOUT_IO_URING(batch);
  SocketPair pair;
  ASSERT_GE(pair.writer, 0);
  int small = 4096;
  ASSERT_EQ(setsockopt(pair.writer, SOL_SOCKET, SO_SNDBUF, &small, sizeof small), 0);
  const std::string big(1 << 20, 'x');
  auto first = std::make_shared<RecordingWriter>(pair.writer, std::vector<std::string>{big});
  batch.open();
  batch.enlist(first);
  batch.submit();
  ASSERT_EQ(first->results.size(), 1u);
  EXPECT_GT(first->results[0], 0) << "some of it fits";
  EXPECT_LT(first->results[0], static_cast<long>(big.size())) << "not a megabyte into a 4 KiB buffer";
  // Nothing read meanwhile: the next write finds no room and says so at once.
  auto second = std::make_shared<RecordingWriter>(pair.writer, std::vector<std::string>{"more"});
  batch.open();
  batch.enlist(second);
  batch.submit();
  ASSERT_EQ(second->results.size(), 1u);
  EXPECT_EQ(second->results[0], -EAGAIN);
  EXPECT_EQ(pair.drain(), big.substr(0, static_cast<size_t>(first->results[0])));
}

TEST(WriteBatch, APeerThatLeftIsTheWritersErrorAndTheOthersAreStillWritten) {
  WriteBatch batch(true);
  SKIP_WITHOUT_IO_URING(batch);
  SocketPair left, stays;
  ASSERT_GE(left.writer, 0);
  ASSERT_GE(stays.writer, 0);
  close(left.peer);
  left.peer = -1;
  auto gone = std::make_shared<RecordingWriter>(left.writer, std::vector<std::string>{"lost"});
  auto served = std::make_shared<RecordingWriter>(stays.writer, std::vector<std::string>{"kept"});
  batch.open();
  batch.enlist(gone);
  batch.enlist(served);
  batch.submit();  // MSG_NOSIGNAL: no SIGPIPE ends this test
  ASSERT_EQ(gone->results.size(), 1u);
  EXPECT_EQ(gone->results[0], -EPIPE);
  ASSERT_EQ(served->results.size(), 1u);
  EXPECT_EQ(served->results[0], 4);
  EXPECT_EQ(stays.drain(), "kept");
}

TEST(WriteBatch, AWriterWithNothingToWriteIsToldSoWithoutASubmission) {
  WriteBatch batch(true);
  SKIP_WITHOUT_IO_URING(batch);
  SocketPair pair;
  auto idle = std::make_shared<RecordingWriter>(pair.writer, std::vector<std::string>{});
  batch.open();
  batch.enlist(idle);
  batch.submit();
  ASSERT_EQ(idle->results.size(), 1u);
  EXPECT_EQ(idle->results[0], 0);
  EXPECT_EQ(batch.submissions(), 0u);
  EXPECT_EQ(batch.writes(), 0u);
}

// A writer that throws on its result (the worker logs it and carries on) must not cost
// the others theirs, nor stay in the batch for the next step.
TEST(WriteBatch, AWriterThatThrowsOnItsResultLeavesTheOthersTheirsAndTheNextStepClean) {
  WriteBatch batch(true);
  SKIP_WITHOUT_IO_URING(batch);
  struct ThrowingWriter : RecordingWriter {
    using RecordingWriter::RecordingWriter;
    void batch_written(long result) override {
      RecordingWriter::batch_written(result);
      throw std::runtime_error("writer failed");
    }
  };
  SocketPair first, second, third;
  auto thrower = std::make_shared<ThrowingWriter>(first.writer, std::vector<std::string>{"one"});
  auto after = std::make_shared<RecordingWriter>(second.writer, std::vector<std::string>{"two"});
  batch.open();
  batch.enlist(thrower);
  batch.enlist(after);
  EXPECT_THROW(batch.submit(), std::runtime_error);
  ASSERT_EQ(after->results.size(), 1u);
  EXPECT_EQ(after->results[0], 3);
  EXPECT_EQ(second.drain(), "two");
  auto next = std::make_shared<RecordingWriter>(third.writer, std::vector<std::string>{"three"});
  batch.open();
  batch.enlist(next);
  batch.submit();
  EXPECT_EQ(thrower->results.size(), 1u) << "the thrower was left in the batch";
  EXPECT_EQ(after->results.size(), 1u);
  ASSERT_EQ(next->results.size(), 1u);
  EXPECT_EQ(third.drain(), "three");
  EXPECT_EQ(first.drain(), "one");
}

// The ring's descriptors in this process ("anon_inode:[io_uring]" in /proc/self/fd).
std::vector<int> io_uring_descriptors() {
  std::vector<int> found;
  for (const auto& entry : std::filesystem::directory_iterator("/proc/self/fd")) {
    std::error_code error;
    auto target = std::filesystem::read_symlink(entry.path(), error);
    if (!error && target.string() == "anon_inode:[io_uring]") found.push_back(std::stoi(entry.path().filename().string()));
  }
  return found;
}

// How many of this process's mappings are io_uring rings (their queues are mapped from
// the ring's file, which stays alive while mapped even once its descriptor is gone).
int io_uring_mappings() {
  std::ifstream maps("/proc/self/maps");
  int found = 0;
  for (std::string line; std::getline(maps, line);) found += line.find("[io_uring]") != std::string::npos;
  return found;
}

// The ring itself failing mid-step, for real: its descriptor is made /dev/null, so the
// kernel refuses io_uring_enter. No write of the step went out, so each writer must be
// told "no room" (-EAGAIN: it keeps its bytes and writes them itself), none an error
// (which would end its connection) or a count (which would drop its bytes); and from
// then on the batch is unavailable, so later steps write one by one.
TEST(WriteBatch, WhenTheRingFailsEveryWriterKeepsItsBytesAndLaterStepsWriteOneByOne) {
  const std::vector<int> before = io_uring_descriptors();
  const int mappings_before = io_uring_mappings();
  WriteBatch batch(true);
  SKIP_WITHOUT_IO_URING(batch);
  ASSERT_GT(io_uring_mappings(), mappings_before) << "the ring's queues should be mapped";
  std::vector<int> ring_fds;
  for (int fd : io_uring_descriptors()) {
    if (std::find(before.begin(), before.end(), fd) == before.end()) ring_fds.push_back(fd);
  }
  ASSERT_EQ(ring_fds.size(), 1u) << "the batch should own exactly one ring";
  int null_fd = open("/dev/null", O_RDWR | O_CLOEXEC);
  ASSERT_GE(null_fd, 0);
  ASSERT_EQ(dup2(null_fd, ring_fds[0]), ring_fds[0]);  // the ring's teardown closes it
  close(null_fd);

  constexpr int kWriters = 3;
  EnlistedWriters enlisted;
  auto& [pairs, writers] = enlisted;
  batch.open();
  ASSERT_TRUE(batch.is_open());
  ASSERT_TRUE(enlisted.enlist(batch, kWriters, [](int i) { return std::vector<std::string>{"frame " + std::to_string(i) + "\n"}; }));
  batch.submit();
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_EQ(writers[i]->results.size(), 1u) << "writer " << i;
    EXPECT_EQ(writers[i]->results[0], -EAGAIN) << "writer " << i;
    EXPECT_EQ(pairs[i]->drain(), "") << "writer " << i << ": nothing went out, so nothing may arrive";
  }
  EXPECT_EQ(batch.submissions(), 0u);
  EXPECT_EQ(batch.writes(), 0u);
  EXPECT_FALSE(batch.available());
  EXPECT_NE(batch.why_unavailable().find("io_uring_enter"), std::string::npos) << batch.why_unavailable();
  batch.open();
  EXPECT_FALSE(batch.is_open()) << "after a ring failure, writers write themselves";
  // Released: its descriptor (now /dev/null's, so no longer listed as a ring) closed,
  // and its queues unmapped. Nothing opened since could have taken that number.
  errno = 0;
  EXPECT_EQ(fcntl(ring_fds[0], F_GETFD), -1) << "the failed ring's descriptor is still open";
  EXPECT_EQ(errno, EBADF);
  EXPECT_EQ(io_uring_mappings(), mappings_before) << "the failed ring's queues are still mapped";
}

// A batch whose waits for completions are decided by the test: `interrupt` for wait n
// returns -errno for it instead of waiting (0: wait for real). The only way to reach
// the wait's failures, since a real ring has every non-blocking write complete before
// the wait.
class BatchWithScriptedWaits : public WriteBatch {
 public:
  explicit BatchWithScriptedWaits(std::function<int(size_t wait)> interrupt)
      : WriteBatch(true), interrupt_(std::move(interrupt)) {}

 protected:
  int wait_for_completion(io_uring_cqe** completion) override {
    if (int error = interrupt_(waits_++); error != 0) return error;
    return WriteBatch::wait_for_completion(completion);
  }

 private:
  std::function<int(size_t)> interrupt_;
  size_t waits_ = 0;
};

// A wait interrupted by a signal (EINTR) is simply waited again: every writer gets
// its own byte count and the ring stays.
TEST(WriteBatch, AnInterruptedWaitIsRepeatedAndEveryWriterGetsItsResult) {
  BatchWithScriptedWaits batch([](size_t wait) { return wait == 1 ? -EINTR : 0; });
  SKIP_WITHOUT_IO_URING(batch);
  constexpr int kWriters = 3;
  EnlistedWriters enlisted;
  auto& [pairs, writers] = enlisted;
  batch.open();
  auto frame = [](int i) { return "frame " + std::to_string(i) + "\n"; };
  ASSERT_TRUE(enlisted.enlist(batch, kWriters, [&](int i) { return std::vector<std::string>{frame(i)}; }));
  batch.submit();
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_EQ(writers[i]->results.size(), 1u) << "writer " << i;
    EXPECT_EQ(writers[i]->results[0], static_cast<long>(frame(i).size())) << "writer " << i;
    EXPECT_EQ(pairs[i]->drain(), frame(i)) << "writer " << i;
  }
  EXPECT_TRUE(batch.available()) << batch.why_unavailable();
}

// The wait for results failing after the writes were submitted: whether each went out
// is then unknown (here all did, as the peers show). A writer whose result came gets it; each of the
// others is told -EIO, which ends its connection (the client reconnects) rather than
// risk a frame twice or a gap. From then on the batch is unavailable and its ring gone.
TEST(WriteBatch, WhenWaitingForResultsFailsWritersWithoutOneAreEndedAndLaterStepsWriteOneByOne) {
  const size_t rings_before = io_uring_descriptors().size();
  BatchWithScriptedWaits batch([](size_t wait) { return wait >= 1 ? -EBADF : 0; });
  SKIP_WITHOUT_IO_URING(batch);
  ASSERT_EQ(io_uring_descriptors().size(), rings_before + 1);

  constexpr int kWriters = 3;
  EnlistedWriters enlisted;
  auto& [pairs, writers] = enlisted;
  batch.open();
  ASSERT_TRUE(batch.is_open());
  auto frame = [](int i) { return "frame " + std::to_string(i) + "\n"; };
  ASSERT_TRUE(enlisted.enlist(batch, kWriters, [&](int i) { return std::vector<std::string>{frame(i)}; }));
  batch.submit();
  int counted = 0;
  int ended = 0;
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_EQ(writers[i]->results.size(), 1u) << "writer " << i;
    const long result = writers[i]->results[0];
    if (result == static_cast<long>(frame(i).size())) {
      ++counted;
    } else if (result == -EIO) {
      ++ended;
    } else {
      ADD_FAILURE() << "writer " << i << " was told " << result;
    }
    EXPECT_EQ(pairs[i]->drain(), frame(i)) << "writer " << i;
  }
  EXPECT_EQ(counted, 1) << "the one completion collected before the failure is its writer's";
  EXPECT_EQ(ended, kWriters - 1);
  EXPECT_EQ(batch.submissions(), 1u);
  EXPECT_EQ(batch.writes(), static_cast<size_t>(kWriters));
  EXPECT_FALSE(batch.available());
  EXPECT_NE(batch.why_unavailable().find("io_uring_wait_cqe"), std::string::npos) << batch.why_unavailable();
  batch.open();
  EXPECT_FALSE(batch.is_open()) << "after a ring failure, writers write themselves";
  EXPECT_EQ(io_uring_descriptors().size(), rings_before) << "the failed ring was not released";
}

// A ring that fails in one chunk of a step leaves the step's later chunks to their
// writers: each is told "no room" (-EAGAIN), so it keeps its bytes and writes them
// itself; nothing of theirs went into the failed ring.
TEST(WriteBatch, AfterTheRingFailsTheStepsLaterChunksAreLeftToTheirWriters) {
  BatchWithScriptedWaits batch([](size_t) { return -EBADF; });
  SKIP_WITHOUT_IO_URING(batch);
  constexpr int kRingful = 512;
  constexpr int kWriters = kRingful + 2;
  EnlistedWriters enlisted;
  auto& [pairs, writers] = enlisted;
  if (!enlisted.enlist_events(batch, kWriters)) GTEST_SKIP() << "open-file limit too low for " << kWriters << " socket pairs";
  batch.submit();
  EXPECT_EQ(batch.submissions(), 1u);
  EXPECT_EQ(batch.writes(), static_cast<size_t>(kRingful));
  for (int i = 0; i < kWriters; ++i) {
    ASSERT_EQ(writers[i]->results.size(), 1u) << "writer " << i;
    if (i < kRingful) {
      EXPECT_EQ(writers[i]->results[0], -EIO) << "writer " << i << ", in the chunk whose wait failed";
    } else {
      EXPECT_EQ(writers[i]->results[0], -EAGAIN) << "writer " << i << ", in a later chunk";
      EXPECT_EQ(pairs[i]->drain(), "") << "writer " << i << ": its bytes are still its own";
    }
  }
  EXPECT_FALSE(batch.available());
}

TEST(WriteBatch, SwitchedOffItIsNeverOpenSoWritersWriteThemselves) {
  WriteBatch batch(false);
  EXPECT_FALSE(batch.available());
  EXPECT_NE(batch.why_unavailable().find("SLUICE_GATEWAY_IO_URING"), std::string::npos);
  batch.open();
  EXPECT_FALSE(batch.is_open());
}

}  // namespace
}  // namespace sluice::gateway
