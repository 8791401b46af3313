#pragma once
// What SSE and WebSocket connections share once the HTTP exchange is over: the
// socket, the bounded write queue of shared frames, the subscriptions, and the
// read loop that uses no per-connection buffer while idle.
#include <boost/asio/buffer.hpp>
#include <boost/container/static_vector.hpp>
#include <cstdint>
#include <optional>
#include <memory>
#include <string>
#include <vector>

#include "gateway/heartbeat_wheel.hpp"
#include "gateway/access_log.hpp"
#include "gateway/auth_client.hpp"
#include "gateway/connection_limits.hpp"
#include "gateway/clock.hpp"
#include "gateway/frame.hpp"
#include "gateway/socket.hpp"
#include "gateway/status_decision.hpp"
#include "gateway/streams.hpp"
#include "gateway/write_batch.hpp"

namespace sluice::gateway {

class Worker;
struct TenantMetrics;
struct CachedViewer;
class Client;

// One stream subscription of one client (docs/protocol.md#shared-redis-subscriptions: a listener per
// connection/subscription pair).
struct Subscription {
  Client* client = nullptr;
  StreamPlan plan;
  // docs/protocol.md#feed-access-check, docs/protocol.md#language-check.
  SubscriptionRules rules;
  // On a filtered stream, the viewer's entry in its worker's ViewerCache: held from
  // attach to detach, so the fan-out reaches it without a lookup per delivery.
  CachedViewer* viewer = nullptr;
  // Position of this subscription in its worker's list for each plan channel.
  std::vector<uint32_t> slots;
};

enum class ClientKind : uint8_t { eventsource = 0, websocket = 1 };
inline const char* kind_label(ClientKind kind) { return kind == ClientKind::eventsource ? "eventsource" : "websocket"; }

class Client : public std::enable_shared_from_this<Client>, private BatchedWriter {
 public:
  Client(Worker& worker, Socket socket, ConnectionTicket ticket, ClientKind kind, std::shared_ptr<const AuthInfo> auth);
  virtual ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  ClientKind kind() const { return kind_; }
  const AuthInfo& auth() const { return *auth_; }
  bool open() const { return !closed_ && !ending_; }

  // Queues a frame. A client whose queue would pass the bound is disconnected
  // (later, never inside a fan-out loop) and counted.
  void send(const Frame& frame);
  // Abrupt close: the socket is closed and everything released.
  void close_now();
  // `kill` (docs/protocol.md#system-channels): SSE ends the response, WebSocket closes with no status code.
  virtual void end_gracefully() = 0;
  // The worker's periodic call. An open stream gets its keep-alive (heartbeat()). One
  // that is ending, its last bytes queued, is cut once it has taken longer than the lag
  // bound to read them (docs/protocol.md#slow-clients): no send reaches it any more, so
  // it would otherwise hold its place for as long as its peer keeps the write pending.
  void heartbeat_due();
  // The gateway is draining (SIGTERM): SSE ends its response and closes, WebSocket
  // closes with 1001 "going away", so the client reconnects to another gateway.
  virtual void go_away() = 0;

  // The access log's record of the request that opened the stream, for the line
  // written when it ends (docs/protocol.md#access-log); not kept when that log is off.
  void keep_request_record(const RequestRecord& record);

  // Its instance's metric series (docs/hosting.md#observability), null for the
  // environment's one instance; set by the worker when it takes the client.
  TenantMetrics* tenant_metrics = nullptr;

  // Bookkeeping of the worker's ClientRegistry and HeartbeatWheel; only they write it.
  uint32_t registry_slot = 0;
  WheelPlace wheel_place;

 protected:
  // Called with bytes the client sent; may close the client.
  virtual void on_bytes(const char* data, size_t size) = 0;
  // The keep-alive of an open stream: SSE `:thump` (docs/protocol.md#sse-heartbeat),
  // WebSocket ping (docs/protocol.md#keep-alive-and-close). Being a send, it also cuts a
  // client that has been behind for longer than the lag bound, so one that stops reading
  // is cut with no new events.
  virtual void heartbeat() = 0;

  void start_reading();
  // Closes once everything queued has been written.
  void close_after_flush();
  // Once everything queued has been written, hands the socket back to a new HTTP
  // session that waits for the connection's next request.
  void serve_next_request_after_flush();
  void add_subscription(std::unique_ptr<Subscription> subscription);
  void remove_subscription(Subscription* subscription);
  void release_subscriptions();
  const std::vector<std::unique_ptr<Subscription>>& subscriptions() const { return subscriptions_; }

  // Why the stream ends, for the access log; the default is the client leaving.
  void set_end_reason(const char* reason) { end_reason_ = reason; }

  Worker& worker_;
  Socket socket_;
  ConnectionTicket ticket_;
  std::shared_ptr<const AuthInfo> auth_;
  bool ending_ = false;

 private:
  void wait_readable();
  void on_readable();
  void flush();
  // The part of the queue's first `count` frames a write left: how many frames, and how
  // much of the first of them went out. Written frames leave the queue.
  struct Unwritten {
    size_t frames;
    size_t first_offset;
  };
  Unwritten take_written(size_t count, size_t written);
  // The queue's first `count` frames (at most WriteBatch::kMaxGather) as one write's buffers.
  using HeadBuffers = boost::container::static_vector<asio::const_buffer, WriteBatch::kMaxGather>;
  HeadBuffers head_buffers(size_t count) const;
  // Writes the queue's first `count` frames (from `first_offset` into the first) once the
  // socket has room.
  void write_async(size_t count, size_t first_offset);
  // BatchedWriter: the worker's WriteBatch writes the queue during a fan-out step.
  int batched_fd() override;
  size_t gather(iovec* out, size_t max) override;
  void batch_written(long result) override;
  // A frame left the queue: its bytes no longer count against this client's bound.
  void release_own_bytes(const FrameData& frame);
  void finish_flushed();
  void hand_back_to_http();
  // Once per client, on either way out (closed, or handed back to HTTP): the access log's
  // stream line, subscriptions released, nothing more to write. False when it already ended.
  bool end_stream();
  std::optional<const char*> queue_refusal(const Frame& frame);
  void cut_slow(const char* reason);

  ClientKind kind_;
  bool closed_ = false;
  bool close_when_flushed_ = false;
  bool hand_back_when_flushed_ = false;
  bool writing_ = false;
  // In the worker's WriteBatch for this step, with `gathered_` frames to write.
  bool enlisted_ = false;
  size_t gathered_ = 0;
  bool over_limit_ = false;
  // docs/protocol.md#slow-clients: bytes of this client's own frames (shared ones are
  // bounded process-wide), and since when it has had data it could not write at once.
  size_t own_bytes_ = 0;
  SteadyClock::time_point behind_since_{};
  SteadyClock::time_point ending_since_{};  // when close_after_flush() was first asked
  uint64_t bytes_written_ = 0;
  const char* end_reason_ = "client left";
  std::unique_ptr<RequestRecord> request_record_;
  std::vector<Frame> queue_;
  std::vector<Frame> in_flight_;
  std::vector<std::unique_ptr<Subscription>> subscriptions_;
};

}  // namespace sluice::gateway
