#include "gateway/client.hpp"

#include <boost/asio/write.hpp>
#include <boost/container/static_vector.hpp>

#include "common/log.hpp"
#include "gateway/gateway_context.hpp"
#include "gateway/http_session.hpp"
#include "gateway/worker.hpp"

namespace sluice::gateway {

Client::Client(Worker& worker, Socket socket, ConnectionTicket ticket, ClientKind kind,
               std::shared_ptr<const AuthInfo> auth)
    : worker_(worker), socket_(std::move(socket)), ticket_(std::move(ticket)), auth_(std::move(auth)), kind_(kind) {}

Client::~Client() = default;

// docs/protocol.md#slow-clients: a client is cut for what it really costs, not for a
// burst it keeps reading. Shared frames are stored once whatever the number of clients
// queueing them, so they count against the process-wide bound; a client's own frames
// and its queue entries count against its own bound; and a client that has not caught
// up for SLUICE_CLIENT_MAX_LAG_SECONDS is cut however little it holds.
std::optional<const char*> Client::queue_refusal(const Frame& frame) {
  const auto& config = worker_.context().config;
  if (own_bytes_ + (frame->shared ? 0 : frame->bytes.size()) + (queue_.size() + 1) * sizeof(Frame) >
      config.client_queue_bytes) {
    return "slow client: own queue";
  }
  if (behind_since_ == SteadyClock::time_point{}) return std::nullopt;  // caught up: never cut
  if (g_frame_bytes_alive.load(std::memory_order_relaxed) > static_cast<int64_t>(config.queued_bytes_max)) {
    return "slow client: process queue memory";
  }
  if (worker_.context().now() - behind_since_ > config.client_max_lag) return "slow client: lag";
  return std::nullopt;
}

void Client::cut_slow(const char* reason) {
  // Never close inside the fan-out loop that called us: it iterates listener lists.
  over_limit_ = true;
  set_end_reason(reason);
  worker_.context().metrics.slow_client_disconnects[static_cast<int>(kind_)]->inc();
  asio::post(worker_.io(), [self = shared_from_this()] { self->close_now(); });
}

void Client::send(const Frame& frame) {
  if (closed_ || close_when_flushed_ || over_limit_) return;
  if (auto refusal = queue_refusal(frame)) return cut_slow(*refusal);
  if (!frame->shared) own_bytes_ += frame->bytes.size();
  // Data arriving while a write is still out marks the moment the client fell behind.
  if (writing_ && behind_since_ == SteadyClock::time_point{}) behind_since_ = worker_.context().now();
  queue_.push_back(frame);
  if (writing_ || enlisted_) return;
  // In a fan-out step, the write joins the worker's batch (gateway/write_batch.hpp).
  if (WriteBatch& batch = worker_.write_batch(); batch.is_open()) {
    enlisted_ = true;
    batch.enlist(std::shared_ptr<BatchedWriter>(shared_from_this(), static_cast<BatchedWriter*>(this)));
    return;
  }
  flush();
}

void Client::flush() {
  while (!closed_ && !writing_ && !enlisted_) {
    if (queue_.empty()) {
      behind_since_ = {};
      if (queue_.capacity() > 64) queue_.shrink_to_fit();
      if (close_when_flushed_) finish_flushed();
      return;
    }
    size_t count = std::min(queue_.size(), WriteBatch::kMaxGather);
    if (!socket_.non_blocking()) return write_async(count, 0);
    // Usually the socket has room: one sendmsg now, and no completion to post and
    // run per delivery (docs/benchmarks.md, "Where the time goes"). An error is left
    // to the asynchronous write, which reports it outside the fan-out loop that may
    // have called us.
    boost::system::error_code ec;
    Unwritten rest = take_written(count, socket_.write_some(head_buffers(count), ec));
    if (ec || rest.frames > 0) return write_async(rest.frames, rest.first_offset);
  }
}

Client::HeadBuffers Client::head_buffers(size_t count) const {
  HeadBuffers buffers;
  for (size_t i = 0; i < count; ++i) buffers.emplace_back(queue_[i]->bytes.data(), queue_[i]->bytes.size());
  return buffers;
}

Client::Unwritten Client::take_written(size_t count, size_t written) {
  bytes_written_ += written;
  size_t done = 0;
  while (done < count && written >= queue_[done]->bytes.size()) {
    written -= queue_[done]->bytes.size();
    release_own_bytes(*queue_[done]);
    ++done;
  }
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(done));
  return {count - done, done < count ? written : 0};
}

void Client::write_async(size_t count, size_t first_offset) {
  HeadBuffers buffers = head_buffers(count);
  if (!buffers.empty()) buffers.front() += first_offset;  // the part of the first frame already sent
  in_flight_.assign(std::make_move_iterator(queue_.begin()), std::make_move_iterator(queue_.begin() + count));
  queue_.erase(queue_.begin(), queue_.begin() + static_cast<std::ptrdiff_t>(count));
  writing_ = true;
  asio::async_write(socket_, buffers, [self = shared_from_this()](const boost::system::error_code& ec, size_t written) {
    self->writing_ = false;
    self->bytes_written_ += written;
    for (const auto& frame : self->in_flight_) self->release_own_bytes(*frame);
    self->in_flight_.clear();
    if (ec) {
      self->close_now();
      return;
    }
    self->flush();
  });
}

int Client::batched_fd() { return socket_.native_handle(); }

size_t Client::gather(iovec* out, size_t max) {
  gathered_ = 0;
  if (closed_ || writing_) return 0;
  gathered_ = std::min(queue_.size(), max);
  for (size_t i = 0; i < gathered_; ++i) {
    out[i].iov_base = const_cast<char*>(queue_[i]->bytes.data());
    out[i].iov_len = queue_[i]->bytes.size();
  }
  return gathered_;
}

void Client::batch_written(long result) {
  enlisted_ = false;
  if (closed_) return;
  if (result < 0 && result != -EAGAIN && result != -EWOULDBLOCK) {
    // The peer left (EPIPE, ECONNRESET) or the write failed: as an asynchronous write's
    // error, the connection ends.
    close_now();
    return;
  }
  Unwritten rest = take_written(gathered_, result > 0 ? static_cast<size_t>(result) : 0);
  if (rest.frames > 0) return write_async(rest.frames, rest.first_offset);
  flush();  // what arrived after the gather, or the close that waited for it
}

void Client::release_own_bytes(const FrameData& frame) {
  if (!frame.shared) own_bytes_ -= std::min(own_bytes_, frame.bytes.size());
}

void Client::close_after_flush() {
  if (!close_when_flushed_) ending_since_ = worker_.context().now();
  close_when_flushed_ = true;
  flush();
}

void Client::heartbeat_due() {
  if (closed_ || over_limit_) return;
  if (!close_when_flushed_) return heartbeat();
  // Counted from when it fell behind, if that was earlier: ending does not restart the bound.
  const SteadyClock::time_point since =
      behind_since_ != SteadyClock::time_point{} ? std::min(behind_since_, ending_since_) : ending_since_;
  if (worker_.context().now() - since > worker_.context().config.client_max_lag) cut_slow("slow client: lag");
}

void Client::serve_next_request_after_flush() {
  hand_back_when_flushed_ = true;
  close_after_flush();
}

void Client::finish_flushed() {
  if (hand_back_when_flushed_) {
    hand_back_to_http();
  } else {
    close_now();
  }
}

void Client::keep_request_record(const RequestRecord& record) {
  if (log::enabled(log::Level::info)) request_record_ = std::make_unique<RequestRecord>(record);
}

bool Client::end_stream() {
  if (closed_) return false;
  closed_ = true;
  if (request_record_) {
    gateway::log_stream_end(*request_record_, kind_label(kind_), bytes_written_, end_reason_);
    request_record_.reset();
  }
  release_subscriptions();
  queue_.clear();
  return true;
}

void Client::hand_back_to_http() {
  if (!end_stream()) return;
  // The pending readiness wait completes as aborted and finds the client closed.
  boost::system::error_code ignored;
  socket_.cancel(ignored);
  socket_.non_blocking(false, ignored);
  auto next = std::make_shared<HttpSession>(worker_, std::move(socket_), ticket_);
  next->serve_next_request();
  // Last: this may drop the final reference to the client.
  worker_.remove_client(*this);
}

void Client::start_reading() {
  boost::system::error_code ec;
  socket_.non_blocking(true, ec);
  wait_readable();
}

// Waits for readability instead of reading into a buffer of our own, so an idle
// connection holds no read buffer at all; bytes are read into the worker's.
void Client::wait_readable() {
  socket_.async_wait(Socket::wait_read, [self = shared_from_this()](const boost::system::error_code& ec) {
    if (ec) {
      self->close_now();
      return;
    }
    self->on_readable();
  });
}

void Client::on_readable() {
  // A response that is ending leaves what the client sends next (its next request)
  // to the HTTP session that takes the socket over.
  if (hand_back_when_flushed_) return;
  auto& buffer = worker_.read_buffer();
  // A few buffers a turn: a client that keeps the socket full (pongs, SSE bytes, which
  // answer nothing and so meet no queue bound) waits behind the worker's other work
  // instead of holding its loop. Its next turn is posted: the bytes are known to be
  // there, no epoll round trip is needed to learn it.
  constexpr int kReadsPerTurn = 4;
  bool drained = false;
  for (int reads = 0; reads < kReadsPerTurn && !drained; ++reads) {
    if (closed_) return;
    boost::system::error_code ec;
    size_t n = socket_.read_some(asio::buffer(buffer), ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      drained = true;
      break;
    }
    if (ec) {  // EOF or reset: the client left (docs/protocol.md#sse-errors-and-end: release everything)
      close_now();
      return;
    }
    on_bytes(buffer.data(), n);
    drained = n < buffer.size();
  }
  if (closed_) return;
  if (drained) return wait_readable();
  asio::post(worker_.io(), [self = shared_from_this()] { self->on_readable(); });
}

void Client::add_subscription(std::unique_ptr<Subscription> subscription) {
  subscription->client = this;
  if (request_record_) request_record_->add_stream(subscription->plan.name);
  worker_.attach(*subscription);
  subscriptions_.push_back(std::move(subscription));
}

void Client::remove_subscription(Subscription* subscription) {
  for (auto it = subscriptions_.begin(); it != subscriptions_.end(); ++it) {
    if (it->get() != subscription) continue;
    worker_.detach(**it);
    subscriptions_.erase(it);
    return;
  }
}

void Client::release_subscriptions() {
  for (auto& subscription : subscriptions_) worker_.detach(*subscription);
  subscriptions_.clear();
}

void Client::close_now() {
  if (!end_stream()) return;
  boost::system::error_code ignored;
  socket_.shutdown(Socket::shutdown_both, ignored);
  socket_.close(ignored);
  worker_.remove_client(*this);
}

}  // namespace sluice::gateway
