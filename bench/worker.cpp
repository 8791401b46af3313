#include "bench/worker.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <cmath>
#include <cstring>
#include <ctime>
#include <map>
#include <string_view>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/histogram.hpp"
#include "bench/sse_reader.hpp"
#include "bench/util.hpp"

#ifndef IP_BIND_ADDRESS_NO_PORT
#define IP_BIND_ADDRESS_NO_PORT 24
#endif

namespace sluice_bench {

namespace {

using json = nlohmann::json;

constexpr uint32_t kControlTag = UINT32_MAX;
constexpr size_t kMaxHeaderBytes = 16 * 1024;
constexpr size_t kMaxMessageBytes = 64u << 20;
constexpr uint64_t kReportIntervalNs = 200'000'000;
constexpr int kReadsPerWakeup = 4;
// Client sockets are edge-triggered: a level-triggered socket is polled again at the
// next epoll_wait after every read, which on this 2-core host was CPU taken from the
// server being measured (docs/benchmarks.md#the-tool-edge-triggered). A read shorter
// than the buffer leaves the socket empty, and any later data brings a new edge; but a
// close queued behind data brings no edge of its own once the data's event has told of
// it (EPOLLRDHUP/HUP/ERR), so such a socket is read until it says so.
constexpr uint32_t kClientEvents = EPOLLIN | EPOLLRDHUP | EPOLLET;

enum class State : uint8_t { kIdle, kConnecting, kSending, kHeaders, kStreaming, kClosed };
enum class Body : uint8_t { kChunkSize, kChunkData, kChunkCrlf, kIdentity, kWebSocket };

struct Conn {
  int fd = -1;
  uint32_t client = 0;  // index into Plan::clients
  State state = State::kIdle;
  Body body = Body::kChunkSize;
  bool sse = true;
  bool established = false;  // reached the streaming state at some point
  bool dropped = false;      // the server closed it during the run
  bool writable_armed = false;
  bool unread = false;  // may hold more than kReadsPerWakeup buffers: listed in unread_
  bool peer_closing = false;  // an event told of a close or an error: read to the end
  uint8_t ws_opcode = 0;  // opcode of the fragmented WebSocket message being collected
  uint8_t crlf_left = 0;
  uint64_t chunk_left = 0;
  uint64_t started_ns = 0;  // monotonic, at connect()
  uint64_t last_event_ns = 0;  // realtime, of this client's latest event of the run
  size_t out_off = 0;
  std::string out;  // bytes still to send
  std::string in;   // unparsed input: response head, partial chunk-size line, partial WS frame
  std::string msg;  // partial SSE line or fragmented WS message
  SseEventReader sse_event;  // the SSE event being read, counted at its blank line
};

struct Stats {
  uint64_t ok = 0;
  uint64_t failed = 0;
  uint64_t dropped = 0;
  uint64_t delivered = 0;
  uint64_t foreign = 0;  // messages without this run's marker (other traffic, error frames)
  uint64_t clock_steps = 0;  // receipts timed before their send (the wall clock stepped back)
  uint64_t bytes_in = 0;
  uint64_t pings = 0;
  uint64_t first_rx_ns = 0;  // realtime
  uint64_t last_rx_ns = 0;
  uint64_t longest_gap_ns = 0;  // the longest any client waited between two of its events
  uint64_t first_drop_ns = 0;  // realtime: how the server's cuts spread over time
  uint64_t last_drop_ns = 0;
  std::map<std::string, uint64_t> fail_reasons;
  std::map<std::string, uint64_t> drop_reasons;
  std::string error_sample;  // first {"error":...} frame seen
  LogHistogram latency;
  // Publish to the kernel's receive time of the bytes that completed the event
  // (SO_TIMESTAMPNS): the latency without this tool's own lag in getting round to the
  // socket, which at 10,000 clients per worker is most of `latency`
  // (docs/benchmarks.md#arrival-latency). Where a read holds several events, all take
  // its last segment's time: later, never earlier, than their own.
  LogHistogram arrival;
  LogHistogram connect;
};

class Worker {
 public:
  explicit Worker(const WorkerConfig& cfg) : cfg_(cfg), rng_(cfg.seed), verifier_(*cfg.verify) {
    const uint32_t total = static_cast<uint32_t>(cfg.plan->clients.size());
    for (uint32_t i = cfg.id; i < total; i += cfg.count) {
      conns_.emplace_back();
      conns_.back().client = i;
      conns_.back().sse = cfg.plan->clients[i].sse;
      VerifierClient v;
      v.channels = cfg.plan->heard_channels(i);
      v.websocket = !cfg.plan->clients[i].sse;
      if (v.websocket) v.stream = cfg.plan->stream_echo(i);
      v.filtered = cfg.plan->filtered(i);
      verifier_.add_client(std::move(v));  // slot == index in conns_
    }
    rate_per_ns_ = cfg.options->connect_rate / cfg.count / 1e9;
    scratch_.resize(64 * 1024);
  }

  int run();

 private:
  // connection lifecycle
  void start_connect(Conn& c, uint32_t slot);
  void on_connected(Conn& c, uint32_t slot);
  void on_event(uint32_t slot, uint32_t events);
  void on_readable(Conn& c, uint32_t slot);
  // recv into scratch_, taking the kernel's receive time into arrived_ns_.
  ssize_t receive(int fd);
  void flush(Conn& c, uint32_t slot);
  void fail(Conn& c, const std::string& reason);
  void drop(Conn& c, const std::string& reason);
  void close_conn(Conn& c);
  void set_events(Conn& c, uint32_t slot, bool want_write);

  // protocol
  void feed(Conn& c, uint32_t slot, const char* data, size_t size);
  bool parse_head(Conn& c, uint32_t slot);
  void feed_sse(Conn& c, const char* data, size_t size);
  void feed_chunked(Conn& c, const char* data, size_t size);
  void feed_ws(Conn& c, uint32_t slot, const char* data, size_t size);
  size_t parse_ws_frames(Conn& c, uint32_t slot, const char* data, size_t size);
  void on_message(Conn& c, const char* data, size_t size);  // one WebSocket text message
  void on_sse_line(Conn& c, const char* line, size_t len);
  void account(Conn& c, const Verifier::Fed& fed, std::string_view text);
  uint32_t slot_of(const Conn& c) const { return static_cast<uint32_t>(&c - conns_.data()); }
  void queue_ws_frame(Conn& c, uint8_t opcode, const char* payload, size_t size);
  std::string ws_key(uint32_t client) const;

  // coordinator link
  void read_commands();
  void handle_command(const std::string& line);
  void send_line(const json& j);
  void report_progress(bool final);
  void sweep_timeouts(uint64_t now);

  const WorkerConfig& cfg_;
  uint64_t rng_;
  std::vector<Conn> conns_;
  std::vector<char> scratch_;
  // Slots left with data after kReadsPerWakeup full reads: edge-triggered, they get no
  // new event for it, so they are read again after the current batch of events.
  std::vector<uint32_t> unread_;
  // The kernel's receive time (CLOCK_REALTIME ns) of the last read, 0 when it gave none.
  uint64_t arrived_ns_ = 0;
  Stats stats_;
  Verifier verifier_;
  int epoll_ = -1;
  uint32_t next_ = 0;  // next conns_ slot to connect
  uint32_t pending_ = 0;  // connections between connect() and response headers
  double rate_per_ns_ = 0;
  uint64_t started_ns_ = 0;
  bool finishing_ = false;
  bool parent_gone_ = false;
  std::string commands_;
};

void Worker::send_line(const json& j) {
  std::string line = j.dump();
  line += '\n';
  const char* p = line.data();
  size_t left = line.size();
  while (left > 0) {
    ssize_t n = ::write(cfg_.to_parent, p, left);
    if (n < 0) {
      if (errno == EINTR) continue;
      parent_gone_ = true;
      return;
    }
    p += n;
    left -= static_cast<size_t>(n);
  }
}

std::string Worker::ws_key(uint32_t client) const {
  unsigned char raw[16];
  uint64_t a = splitmix64(cfg_.seed ^ (0xA5A5ull << 32) ^ client);
  uint64_t b = splitmix64(a);
  std::memcpy(raw, &a, 8);
  std::memcpy(raw + 8, &b, 8);
  return base64_encode(raw, sizeof raw);
}

void Worker::set_events(Conn& c, uint32_t slot, bool want_write) {
  if (c.writable_armed == want_write) return;
  epoll_event ev{};
  ev.events = kClientEvents | (want_write ? static_cast<uint32_t>(EPOLLOUT) : 0u);
  ev.data.u32 = slot;
  epoll_ctl(epoll_, EPOLL_CTL_MOD, c.fd, &ev);
  c.writable_armed = want_write;
}

void Worker::close_conn(Conn& c) {
  if (c.fd >= 0) {
    ::close(c.fd);  // also removes it from the epoll set
    c.fd = -1;
  }
  if (c.state == State::kConnecting || c.state == State::kSending || c.state == State::kHeaders) --pending_;
  c.state = State::kClosed;
  std::string().swap(c.out);
  std::string().swap(c.in);
  std::string().swap(c.msg);
  c.sse_event.reset();
}

void Worker::fail(Conn& c, const std::string& reason) {
  ++stats_.failed;
  ++stats_.fail_reasons[reason];
  close_conn(c);
}

void Worker::drop(Conn& c, const std::string& reason) {
  if (!finishing_) {
    ++stats_.dropped;
    ++stats_.drop_reasons[reason];
    c.dropped = true;
    const uint64_t now = realtime_ns();
    if (!stats_.first_drop_ns) stats_.first_drop_ns = now;
    stats_.last_drop_ns = now;
  }
  close_conn(c);
}

void Worker::start_connect(Conn& c, uint32_t slot) {
  c.started_ns = monotonic_ns();
  const sockaddr* target = reinterpret_cast<const sockaddr*>(&cfg_.target);
  int fd = ::socket(target->sa_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
  if (fd < 0) {
    ++stats_.failed;
    ++stats_.fail_reasons[std::string("socket: ") + std::strerror(errno)];
    c.state = State::kClosed;
    return;
  }
  c.fd = fd;
  c.state = State::kConnecting;
  ++pending_;
  int one = 1;
  setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
  setsockopt(fd, SOL_SOCKET, SO_TIMESTAMPNS, &one, sizeof one);
  if (cfg_.spread_sources) {
    // Defer the port choice to connect() so the 4-tuple, not the source port
    // alone, must be unique; several source addresses multiply the port space.
    setsockopt(fd, IPPROTO_IP, IP_BIND_ADDRESS_NO_PORT, &one, sizeof one);
    sockaddr_in src{};
    src.sin_family = AF_INET;
    src.sin_port = 0;
    src.sin_addr.s_addr = htonl(0x7F000002u + (c.client % cfg_.options->source_pool));
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      fail(c, std::string("bind: ") + std::strerror(errno));
      return;
    }
  }
  epoll_event ev{};
  ev.events = kClientEvents | EPOLLOUT;
  ev.data.u32 = slot;
  if (epoll_ctl(epoll_, EPOLL_CTL_ADD, fd, &ev) != 0) {
    fail(c, std::string("epoll_ctl: ") + std::strerror(errno));
    return;
  }
  c.writable_armed = true;
  int rc = ::connect(fd, target, cfg_.target_len);
  if (rc == 0) {
    on_connected(c, slot);
  } else if (errno != EINPROGRESS) {
    fail(c, std::string("connect: ") + std::strerror(errno));
  }
}

void Worker::on_connected(Conn& c, uint32_t slot) {
  c.state = State::kSending;
  std::string key = c.sse ? std::string() : ws_key(c.client);
  c.out = cfg_.plan->request_for(c.client, cfg_.host_header, key);
  c.out_off = 0;
  flush(c, slot);
}

void Worker::flush(Conn& c, uint32_t slot) {
  while (c.out_off < c.out.size()) {
    ssize_t n = ::send(c.fd, c.out.data() + c.out_off, c.out.size() - c.out_off, MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN || errno == EWOULDBLOCK) {
        set_events(c, slot, true);
        return;
      }
      std::string reason = std::string("send: ") + std::strerror(errno);
      if (c.state == State::kStreaming) {
        drop(c, reason);
      } else {
        fail(c, reason);
      }
      return;
    }
    c.out_off += static_cast<size_t>(n);
  }
  std::string().swap(c.out);
  c.out_off = 0;
  if (c.state == State::kSending) c.state = State::kHeaders;
  set_events(c, slot, false);
}

void Worker::on_event(uint32_t slot, uint32_t events) {
  Conn& c = conns_[slot];
  if (c.fd < 0) return;
  if (c.state == State::kConnecting) {
    if (!(events & (EPOLLOUT | EPOLLERR | EPOLLHUP))) return;
    int err = 0;
    socklen_t len = sizeof err;
    getsockopt(c.fd, SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      fail(c, std::string("connect: ") + std::strerror(err));
      return;
    }
    on_connected(c, slot);
    if (c.fd < 0) return;
  } else if ((events & EPOLLOUT) && !c.out.empty()) {
    flush(c, slot);
    if (c.fd < 0) return;
  }
  if (events & (EPOLLRDHUP | EPOLLHUP | EPOLLERR)) c.peer_closing = true;
  if (events & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) on_readable(c, slot);
}

ssize_t Worker::receive(int fd) {
  iovec into{scratch_.data(), scratch_.size()};
  alignas(cmsghdr) char control[CMSG_SPACE(sizeof(timespec))];
  msghdr message{};
  message.msg_iov = &into;
  message.msg_iovlen = 1;
  message.msg_control = control;
  message.msg_controllen = sizeof control;
  ssize_t n = ::recvmsg(fd, &message, 0);
  arrived_ns_ = 0;
  if (n <= 0) return n;
  for (cmsghdr* header = CMSG_FIRSTHDR(&message); header != nullptr; header = CMSG_NXTHDR(&message, header)) {
    if (header->cmsg_level == SOL_SOCKET && header->cmsg_type == SCM_TIMESTAMPNS) {
      timespec at;
      std::memcpy(&at, CMSG_DATA(header), sizeof at);
      arrived_ns_ = static_cast<uint64_t>(at.tv_sec) * 1'000'000'000u + static_cast<uint64_t>(at.tv_nsec);
    }
  }
  return n;
}

void Worker::on_readable(Conn& c, uint32_t slot) {
  for (int round = 0; c.fd >= 0; ++round) {
    if (round == kReadsPerWakeup) {  // fair to the other sockets: come back after this batch
      if (!c.unread) unread_.push_back(slot);
      c.unread = true;
      return;
    }
    ssize_t n = receive(c.fd);
    if (n > 0) {
      stats_.bytes_in += static_cast<uint64_t>(n);
      feed(c, slot, scratch_.data(), static_cast<size_t>(n));
      if (static_cast<size_t>(n) < scratch_.size() && !c.peer_closing) return;
      continue;
    }
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) return;
    if (n < 0 && errno == EINTR) continue;
    std::string reason = n == 0 ? "closed by server" : std::string("recv: ") + std::strerror(errno);
    if (c.state == State::kStreaming) {
      drop(c, reason);
    } else {
      fail(c, reason + " before the response");
    }
    return;
  }
}

void Worker::feed(Conn& c, uint32_t slot, const char* data, size_t size) {
  if (c.state == State::kConnecting || c.state == State::kSending || c.state == State::kHeaders) {
    c.in.append(data, size);
    if (c.in.size() > kMaxHeaderBytes && c.in.find("\r\n\r\n") == std::string::npos) {
      fail(c, "response head too large");
      return;
    }
    if (!parse_head(c, slot)) return;
    return;
  }
  if (c.state != State::kStreaming) return;
  switch (c.body) {
    case Body::kWebSocket:
      feed_ws(c, slot, data, size);
      break;
    case Body::kIdentity:
      feed_sse(c, data, size);
      break;
    default:
      feed_chunked(c, data, size);
      break;
  }
}

// What EventSource fails the connection on in a 200's head (the MIME type's essence must
// be text/event-stream); nullptr when it reads on.
const char* sse_head_refusal(std::string_view content_type) {
  const std::string_view essence = trim(content_type.substr(0, content_type.find(';')));
  return iequals(essence, "text/event-stream") ? nullptr : "SSE response without Content-Type: text/event-stream";
}

// What a browser fails the connection on in a 101's head (RFC 6455 4.1: the client asked
// for no extension and no subprotocol); nullptr when it reads on.
const char* websocket_head_refusal(std::string_view accept, std::string_view want_accept, std::string_view upgrade,
                                   std::string_view connection, std::string_view extensions,
                                   std::string_view protocol) {
  if (accept != want_accept) return "wrong Sec-WebSocket-Accept";
  if (!iequals(upgrade, "websocket")) return "WebSocket response without Upgrade: websocket";
  bool upgrade_token = false;
  for (size_t at = 0; at <= connection.size();) {
    const size_t comma = std::min(connection.find(',', at), connection.size());
    upgrade_token = upgrade_token || iequals(trim(connection.substr(at, comma - at)), "upgrade");
    at = comma + 1;
  }
  if (!upgrade_token) return "WebSocket response without Connection: Upgrade";
  if (!extensions.empty()) return "WebSocket extension the client did not ask for";
  if (!protocol.empty()) return "WebSocket subprotocol the client did not ask for";
  return nullptr;
}

// Returns true when the head was complete and accepted (the body, if any, was fed).
bool Worker::parse_head(Conn& c, uint32_t slot) {
  size_t end = c.in.find("\r\n\r\n");
  if (end == std::string::npos) return false;
  std::string_view head(c.in.data(), end);
  size_t line_end = head.find("\r\n");
  std::string_view status_line = head.substr(0, line_end);
  int code = 0;
  if (status_line.size() >= 12 && status_line.substr(0, 5) == "HTTP/") {
    size_t sp = status_line.find(' ');
    // Three digits, then the reason's space or the line's end ("HTTP/1.1 2000" is no 200).
    if (sp != std::string_view::npos && sp + 4 <= status_line.size() &&
        (sp + 4 == status_line.size() || status_line[sp + 4] == ' ')) {
      for (size_t i = sp + 1; i < sp + 4; ++i) {
        char ch = status_line[i];
        if (ch < '0' || ch > '9') {
          code = 0;
          break;
        }
        code = code * 10 + (ch - '0');
      }
    }
  }
  if (code == 0) {
    fail(c, "malformed HTTP response");
    return false;
  }
  bool chunked = false;
  std::string_view accept, content_type, upgrade, connection, extensions, protocol;
  std::string_view error_message;
  size_t pos = line_end == std::string_view::npos ? head.size() : line_end + 2;
  while (pos < head.size()) {
    size_t next = head.find("\r\n", pos);
    if (next == std::string_view::npos) next = head.size();
    std::string_view line = head.substr(pos, next - pos);
    pos = next + 2;
    size_t colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = trim(line.substr(0, colon));
    std::string_view value = trim(line.substr(colon + 1));
    if (iequals(name, "transfer-encoding")) {
      chunked = value.size() >= 7 && iequals(value.substr(value.size() - 7), "chunked");
      continue;
    }
    const std::pair<std::string_view, std::string_view*> read[] = {
        {"sec-websocket-accept", &accept}, {"content-type", &content_type},
        {"upgrade", &upgrade},             {"connection", &connection},
        {"sec-websocket-extensions", &extensions}, {"sec-websocket-protocol", &protocol},
        {"x-error-message", &error_message}};
    for (const auto& [header, into] : read) {
      if (iequals(name, header)) *into = value;
    }
  }
  const int want = c.sse ? 200 : 101;
  if (code != want) {
    std::string reason = "HTTP " + std::to_string(code);
    if (error_message.empty()) {
      // SSE errors carry {"error":"<message>"} in the body, usually in the same segment.
      static constexpr std::string_view kKey = "\"error\":\"";
      std::string_view body(c.in.data() + end + 4, c.in.size() - end - 4);
      if (size_t at = body.find(kKey); at != std::string_view::npos) {
        std::string_view rest = body.substr(at + kKey.size());
        error_message = rest.substr(0, std::min<size_t>(rest.find('"'), 120));
      }
    }
    if (!error_message.empty()) reason += " " + std::string(error_message);
    fail(c, reason);
    return false;
  }
  if (const char* refusal = c.sse ? sse_head_refusal(content_type)
                                  : websocket_head_refusal(accept, websocket_accept_for(ws_key(c.client)), upgrade,
                                                           connection, extensions, protocol)) {
    fail(c, refusal);
    return false;
  }
  c.body = c.sse ? (chunked ? Body::kChunkSize : Body::kIdentity) : Body::kWebSocket;
  c.state = State::kStreaming;
  c.established = true;
  --pending_;
  ++stats_.ok;
  stats_.connect.record(monotonic_ns() - c.started_ns);
  std::string rest = c.in.substr(end + 4);
  std::string().swap(c.in);
  if (!rest.empty()) feed(c, slot, rest.data(), rest.size());
  return true;
}

void Worker::feed_chunked(Conn& c, const char* data, size_t size) {
  while (size > 0 && c.fd >= 0) {
    switch (c.body) {
      case Body::kChunkSize: {
        const char* nl = static_cast<const char*>(std::memchr(data, '\n', size));
        if (!nl) {
          c.in.append(data, size);
          if (c.in.size() > 256) drop(c, "bad chunk size line");
          return;
        }
        c.in.append(data, static_cast<size_t>(nl - data));
        size -= static_cast<size_t>(nl - data) + 1;
        data = nl + 1;
        uint64_t chunk = 0;
        size_t digits = 0;
        for (char ch : c.in) {
          int v = ch >= '0' && ch <= '9' ? ch - '0' : ch >= 'a' && ch <= 'f' ? ch - 'a' + 10 : ch >= 'A' && ch <= 'F' ? ch - 'A' + 10 : -1;
          if (v < 0) break;
          chunk = chunk * 16 + static_cast<uint64_t>(v);
          if (++digits > 15) break;
        }
        c.in.clear();
        if (digits == 0 || digits > 15) {
          drop(c, "bad chunk size line");
          return;
        }
        if (chunk == 0) {
          drop(c, "SSE stream ended by server");
          return;
        }
        c.chunk_left = chunk;
        c.body = Body::kChunkData;
        break;
      }
      case Body::kChunkData: {
        size_t take = static_cast<size_t>(std::min<uint64_t>(c.chunk_left, size));
        feed_sse(c, data, take);
        data += take;
        size -= take;
        c.chunk_left -= take;
        if (c.chunk_left == 0) {
          c.body = Body::kChunkCrlf;
          c.crlf_left = 2;
        }
        break;
      }
      case Body::kChunkCrlf: {
        // Expect "\r\n"; tolerate a bare "\n".
        while (size > 0 && c.crlf_left > 0) {
          char ch = *data;
          if (ch == '\n') {
            c.crlf_left = 0;
          } else if (ch == '\r' && c.crlf_left == 2) {
            c.crlf_left = 1;
          } else {
            drop(c, "bad chunk terminator");
            return;
          }
          ++data;
          --size;
        }
        if (c.crlf_left == 0) c.body = Body::kChunkSize;
        break;
      }
      default:
        return;
    }
  }
}

void Worker::feed_sse(Conn& c, const char* data, size_t size) {
  while (size > 0) {
    const char* nl = static_cast<const char*>(std::memchr(data, '\n', size));
    if (!nl) {
      c.msg.append(data, size);
      if (c.msg.size() > kMaxMessageBytes) drop(c, "SSE line too long");
      return;
    }
    size_t len = static_cast<size_t>(nl - data);
    const char* line = data;
    if (!c.msg.empty()) {
      c.msg.append(data, len);
      line = c.msg.data();
      len = c.msg.size();
    }
    on_sse_line(c, line, len);
    if (c.fd < 0) return;  // dropped
    if (!c.msg.empty()) c.msg.clear();
    size -= static_cast<size_t>(nl - data) + 1;
    data = nl + 1;
  }
  if (c.msg.capacity() > 4096 && c.msg.empty()) std::string().swap(c.msg);
}

void Worker::feed_ws(Conn& c, uint32_t slot, const char* data, size_t size) {
  if (c.in.empty()) {
    size_t used = parse_ws_frames(c, slot, data, size);
    if (c.fd >= 0 && used < size) c.in.assign(data + used, size - used);
    return;
  }
  c.in.append(data, size);
  size_t used = parse_ws_frames(c, slot, c.in.data(), c.in.size());
  if (c.fd < 0) return;
  if (used == c.in.size()) {
    if (c.in.capacity() > 4096) {
      std::string().swap(c.in);
    } else {
      c.in.clear();
    }
  } else {
    c.in.erase(0, used);
  }
}

// What a browser fails the connection on in a WebSocket frame's head (RFC 6455 5.2, 5.4,
// 5.5, 7.1.5), before its payload is read; nullptr when it reads on. `in_message`: a
// fragmented data message has begun.
const char* websocket_frame_refusal(uint8_t first_byte, uint64_t length, bool masked, bool in_message) {
  const uint8_t opcode = first_byte & 0x0F;
  const bool fin = first_byte & 0x80;
  if (first_byte & 0x70) return "WebSocket reserved bits set (no extension was agreed)";
  if (masked) return "WebSocket frame masked by the server";
  if (opcode & 0x08) {
    if (!fin || length > 125) return "WebSocket control frame fragmented or longer than 125 bytes";
    if (opcode == 0x8 && length == 1) return "WebSocket close with a one-byte body";
    return nullptr;
  }
  if ((opcode == 0x1 || opcode == 0x2) && in_message) return "WebSocket data frame inside a fragmented message";
  if (opcode == 0x0 && !in_message) return "WebSocket continuation without a start";
  return nullptr;
}

size_t Worker::parse_ws_frames(Conn& c, uint32_t slot, const char* data, size_t size) {
  size_t off = 0;
  while (c.fd >= 0 && size - off >= 2) {
    const auto* p = reinterpret_cast<const unsigned char*>(data + off);
    const bool fin = p[0] & 0x80;
    const uint8_t opcode = p[0] & 0x0F;
    const bool masked = p[1] & 0x80;
    uint64_t len = p[1] & 0x7F;
    size_t header = 2;
    if (len == 126) {
      if (size - off < 4) break;
      len = (uint64_t{p[2]} << 8) | p[3];
      header = 4;
    } else if (len == 127) {
      if (size - off < 10) break;
      len = 0;
      for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
      header = 10;
    }
    if (masked) header += 4;
    if (const char* refusal = websocket_frame_refusal(p[0], len, masked, c.ws_opcode != 0)) {
      drop(c, refusal);
      break;
    }
    if (len > kMaxMessageBytes) {
      drop(c, "WebSocket frame too large");
      break;
    }
    if (size - off < header + len) break;
    const char* payload = data + off + header;
    off += header + static_cast<size_t>(len);
    const size_t n = static_cast<size_t>(len);
    switch (opcode) {
      case 0x1:
      case 0x2:
        if (fin) {
          if (opcode == 0x1) {
            on_message(c, payload, n);
          } else {
            ++stats_.foreign;
          }
        } else {
          c.ws_opcode = opcode;
          c.msg.assign(payload, n);
        }
        break;
      case 0x0:
        c.msg.append(payload, n);
        if (c.msg.size() > kMaxMessageBytes) {
          drop(c, "WebSocket message too large");
          break;
        }
        if (fin) {
          if (c.ws_opcode == 0x1) {
            on_message(c, c.msg.data(), c.msg.size());
          } else {
            ++stats_.foreign;
          }
          std::string().swap(c.msg);
          c.ws_opcode = 0;
        }
        break;
      case 0x8: {
        unsigned code = n >= 2 ? (static_cast<unsigned>(static_cast<unsigned char>(payload[0])) << 8) |
                                     static_cast<unsigned char>(payload[1])
                               : 1005;
        // What a browser fails the connection on (Chromium; Firefox checks the reason
        // only): the codes RFC 6455 7.4.1 reserves for an endpoint's own use (1005, 1006,
        // 1015), and a reason that is not UTF-8. Other codes close it as usual.
        const bool reserved_code = n >= 2 && (code == 1005 || code == 1006 || code == 1015);
        if (reserved_code || (n > 2 && !valid_utf8(std::string_view(payload + 2, n - 2)))) {
          drop(c, "WebSocket close with a reserved code, or a reason that is not UTF-8");
          break;
        }
        queue_ws_frame(c, 0x8, payload, std::min<size_t>(n, 2));
        flush(c, slot);
        if (c.fd >= 0) drop(c, "WebSocket close " + std::to_string(code));
        break;
      }
      case 0x9:
        ++stats_.pings;
        queue_ws_frame(c, 0xA, payload, std::min<size_t>(n, 125));
        flush(c, slot);
        break;
      case 0xA:
        break;
      default:
        drop(c, "WebSocket opcode " + std::to_string(opcode));
        break;
    }
  }
  return off;
}

void Worker::queue_ws_frame(Conn& c, uint8_t opcode, const char* payload, size_t size) {
  // Client frames are always masked (RFC 6455 §5.3); control payloads are <= 125 bytes.
  rng_ = splitmix64(rng_);
  unsigned char mask[4];
  std::memcpy(mask, &rng_, 4);
  if (c.out_off > 0 && c.out_off == c.out.size()) {
    c.out.clear();
    c.out_off = 0;
  }
  c.out += static_cast<char>(0x80 | opcode);
  if (size < 126) {
    c.out += static_cast<char>(0x80 | size);
  } else {
    c.out += static_cast<char>(0x80 | 126);
    c.out += static_cast<char>((size >> 8) & 0xFF);
    c.out += static_cast<char>(size & 0xFF);
  }
  c.out.append(reinterpret_cast<const char*>(mask), 4);
  for (size_t i = 0; i < size; ++i) c.out += static_cast<char>(payload[i] ^ mask[i & 3]);
}

void Worker::on_sse_line(Conn& c, const char* line, size_t len) {
  // Only at the blank line ending an event would a browser see it, so only then is it
  // counted and timed (bench/sse_reader.hpp).
  SseEventReader& reader = c.sse_event;
  if (reader.line(std::string_view(line, len))) {
    account(c, verifier_.feed_sse(slot_of(c), reader.event(), reader.data()), reader.data());
  } else if (reader.data().size() > kMaxMessageBytes) {
    drop(c, "SSE event too long");  // data lines that no blank line ends
  }
}

void Worker::on_message(Conn& c, const char* data, size_t size) {
  const std::string_view text(data, size);
  if (!valid_utf8(text)) {
    drop(c, "WebSocket text message that is not UTF-8");  // RFC 6455 8.1: as a browser does
    return;
  }
  account(c, verifier_.feed_ws(slot_of(c), text), text);
}

void Worker::account(Conn& c, const Verifier::Fed& fed, std::string_view text) {
  if (!fed.marked) {
    ++stats_.foreign;
    if (stats_.error_sample.empty() && text.substr(0, 9) == "{\"error\":") stats_.error_sample = std::string(text.substr(0, 200));
    return;
  }
  ++stats_.delivered;
  const uint64_t now = realtime_ns();
  // A receipt or a kernel arrival before the send time means CLOCK_REALTIME stepped
  // back: counted apart, in neither histogram (recording 0 would flatter them, and the
  // two would no longer count the same receipts).
  if (fed.sent_ns != 0) {
    if (now < fed.sent_ns || (arrived_ns_ != 0 && arrived_ns_ < fed.sent_ns)) {
      ++stats_.clock_steps;
    } else {
      stats_.latency.record(now - fed.sent_ns);
      if (arrived_ns_ != 0) stats_.arrival.record(arrived_ns_ - fed.sent_ns);
    }
  }
  if (stats_.first_rx_ns == 0) stats_.first_rx_ns = now;
  stats_.last_rx_ns = now;
  if (c.last_event_ns != 0 && now > c.last_event_ns) {
    stats_.longest_gap_ns = std::max(stats_.longest_gap_ns, now - c.last_event_ns);
  }
  c.last_event_ns = now;
}

void Worker::sweep_timeouts(uint64_t now) {
  if (pending_ == 0) return;
  const uint64_t limit = uint64_t{cfg_.options->connect_timeout_ms} * 1'000'000;
  for (uint32_t slot = 0; slot < next_ && pending_ > 0; ++slot) {
    Conn& c = conns_[slot];
    if ((c.state == State::kConnecting || c.state == State::kSending || c.state == State::kHeaders) &&
        now - c.started_ns > limit) {
      fail(c, c.state == State::kConnecting ? "connect timeout" : "response timeout");
    }
  }
}

void Worker::read_commands() {
  char buf[4096];
  for (;;) {
    ssize_t n = ::read(cfg_.from_parent, buf, sizeof buf);
    if (n > 0) {
      commands_.append(buf, static_cast<size_t>(n));
      continue;
    }
    if (n < 0 && errno == EINTR) continue;
    if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) break;
    parent_gone_ = true;  // EOF or error: the coordinator is gone
    break;
  }
  size_t nl;
  while ((nl = commands_.find('\n')) != std::string::npos) {
    std::string line = commands_.substr(0, nl);
    commands_.erase(0, nl + 1);
    handle_command(line);
  }
}

void Worker::handle_command(const std::string& line) {
  if (line == "finish") {
    finishing_ = true;
  } else if (line.rfind("excuse ", 0) == 0) {
    // {"<channel>": [seq, ...], ...}: events Redis may never have had (--redis-outages).
    try {
      json excused = json::parse(line.substr(7));
      std::vector<std::vector<uint32_t>> per_channel;
      for (const auto& [channel, seqs] : excused.items()) {
        const auto c = static_cast<size_t>(std::stoul(channel));
        if (per_channel.size() <= c) per_channel.resize(c + 1);
        for (const auto& seq : seqs) per_channel[c].push_back(seq.get<uint32_t>());
      }
      verifier_.set_excused(std::move(per_channel));
    } catch (const std::exception&) {
      // Malformed command: nothing is excused, so the loss figures stay strict.
    }
  } else if (line.rfind("expect ", 0) == 0) {
    try {
      json counts = json::parse(line.substr(7));
      std::vector<uint64_t> per_channel;
      for (const auto& v : counts) per_channel.push_back(v.get<uint64_t>());
      verifier_.set_published(std::move(per_channel));
    } catch (const std::exception&) {
      // Malformed command: ignore; the final report then has no per-client loss figures.
    }
  }
}

void Worker::report_progress(bool final) {
  json j;
  j["t"] = final ? "f" : "p";
  j["w"] = cfg_.id;
  j["ok"] = stats_.ok;
  j["failed"] = stats_.failed;
  j["pending"] = pending_;
  j["not_started"] = static_cast<uint64_t>(conns_.size() - next_);
  j["dropped"] = stats_.dropped;
  j["delivered"] = stats_.delivered;
  j["connecting_done"] = next_ == conns_.size() && pending_ == 0;
  j["distinct"] = verifier_.distinct();
  uint64_t complete = 0, short_clients = 0, over = 0, silent = 0, with_errors = 0;
  if (verifier_.published_known()) {
    // `received`: the expected events that arrived (first receipts, excused and late ones
    // left out); the drain ends when it reaches `expected` in every worker.
    uint64_t expected = 0, received = 0;
    for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
      if (!conns_[slot].established) continue;
      const Verifier::PerClient r = verifier_.client_result(slot);
      expected += r.expected;
      received += r.received;
      if (!final) continue;
      if (r.errors > 0) ++with_errors;
      if (r.missing > 0) {
        ++short_clients;
        if (r.received == 0) ++silent;
      } else if (r.errors > 0) {
        ++over;
      } else {
        ++complete;
      }
    }
    j["expected"] = expected;
    j["received"] = received;
  }
  if (final) {
    j["clients_complete"] = complete;
    j["clients_short"] = short_clients;
    j["clients_silent"] = silent;
    j["clients_over"] = over;
    j["clients_with_errors"] = with_errors;
    j["verify_samples"] = verifier_.samples();
    j["verify"] = verifier_.totals([this](uint32_t slot) { return conns_[slot].established; }).to_json();
    // What the clients the server never cut missed (a fault's effect on everyone else).
    j["missing_never_dropped"] =
        verifier_.totals([this](uint32_t slot) { return conns_[slot].established && !conns_[slot].dropped; }).missing;
    j["foreign_messages"] = stats_.foreign;
    j["clock_steps"] = stats_.clock_steps;
    j["pings"] = stats_.pings;
    j["bytes_in"] = stats_.bytes_in;
    rusage usage{};
    getrusage(RUSAGE_SELF, &usage);
    j["cpu_seconds"] = static_cast<double>(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
                       static_cast<double>(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
    j["first_rx_ns"] = stats_.first_rx_ns;
    j["last_rx_ns"] = stats_.last_rx_ns;
    j["longest_gap_ns"] = stats_.longest_gap_ns;
    j["first_drop_ns"] = stats_.first_drop_ns;
    j["last_drop_ns"] = stats_.last_drop_ns;
    j["fail_reasons"] = stats_.fail_reasons;
    j["drop_reasons"] = stats_.drop_reasons;
    j["error_sample"] = stats_.error_sample;
    j["latency"] = stats_.latency.to_json();
    j["arrival"] = stats_.arrival.to_json();
    j["connect"] = stats_.connect.to_json();
  }
  send_line(j);
}

int Worker::run() {
  epoll_ = epoll_create1(EPOLL_CLOEXEC);
  if (epoll_ < 0) return 3;
  fcntl(cfg_.from_parent, F_SETFL, fcntl(cfg_.from_parent, F_GETFL) | O_NONBLOCK);
  epoll_event ev{};
  ev.events = EPOLLIN;
  ev.data.u32 = kControlTag;
  epoll_ctl(epoll_, EPOLL_CTL_ADD, cfg_.from_parent, &ev);

  std::vector<epoll_event> events(1024);
  started_ns_ = monotonic_ns();
  uint64_t next_report = started_ns_ + kReportIntervalNs;
  while (!finishing_ && !parent_gone_) {
    uint64_t now = monotonic_ns();
    if (now >= cfg_.deadline_mono_ns) break;
    // Open the connections that are due, a bounded number per turn so that reads
    // are not starved when the rate is high.
    if (next_ < conns_.size()) {
      const double due_d = std::floor(static_cast<double>(now - started_ns_) * rate_per_ns_) + 1.0;
      const uint64_t due = std::min<uint64_t>(conns_.size(), static_cast<uint64_t>(due_d));
      for (int burst = 0; next_ < due && burst < 256; ++burst, ++next_) start_connect(conns_[next_], next_);
    }
    int timeout_ms = 100;
    if (next_ < conns_.size()) {
      const double next_due_ns = static_cast<double>(next_) / rate_per_ns_;
      const double wait_ns = next_due_ns - static_cast<double>(monotonic_ns() - started_ns_);
      timeout_ms = wait_ns <= 0 ? 0 : std::min(100, static_cast<int>(wait_ns / 1e6) + 1);
    }
    if (!unread_.empty()) timeout_ms = 0;
    int n = epoll_wait(epoll_, events.data(), static_cast<int>(events.size()), timeout_ms);
    if (n < 0 && errno != EINTR) break;
    for (int i = 0; i < n; ++i) {
      if (events[i].data.u32 == kControlTag) {
        read_commands();
      } else {
        on_event(events[i].data.u32, events[i].events);
      }
    }
    if (!unread_.empty()) {
      std::vector<uint32_t> again;
      again.swap(unread_);
      for (uint32_t slot : again) {
        Conn& c = conns_[slot];
        c.unread = false;
        if (c.fd >= 0) on_readable(c, slot);
      }
    }
    now = monotonic_ns();
    if (now >= next_report) {
      sweep_timeouts(now);
      report_progress(false);
      next_report = now + kReportIntervalNs;
    }
  }
  finishing_ = true;
  // Say goodbye politely to WebSocket servers (best effort), then close everything.
  static const char kNormalClosure[2] = {0x03, static_cast<char>(0xE8)};  // 1000
  for (uint32_t slot = 0; slot < conns_.size(); ++slot) {
    Conn& c = conns_[slot];
    if (c.fd < 0) continue;
    if (c.state == State::kStreaming && !c.sse && c.out.empty()) {
      queue_ws_frame(c, 0x8, kNormalClosure, 2);
      ::send(c.fd, c.out.data(), c.out.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    }
    close_conn(c);
  }
  if (!parent_gone_) report_progress(true);
  ::close(epoll_);
  return 0;
}

void raise_file_limit(size_t needed) {
  rlimit lim{};
  if (getrlimit(RLIMIT_NOFILE, &lim) != 0) return;
  rlim_t want = static_cast<rlim_t>(needed);
  if (lim.rlim_max != RLIM_INFINITY && lim.rlim_max < want) {
    rlimit raised{want, want};
    if (setrlimit(RLIMIT_NOFILE, &raised) == 0) return;  // privileged: raised the hard limit too
  }
  lim.rlim_cur = lim.rlim_max;
  setrlimit(RLIMIT_NOFILE, &lim);
  getrlimit(RLIMIT_NOFILE, &lim);
  if (lim.rlim_cur != RLIM_INFINITY && lim.rlim_cur < want) {
    std::fprintf(stderr,
                 "\nsluice-bench: worker limited to %llu open files but needs about %zu; use more --workers\n",
                 static_cast<unsigned long long>(lim.rlim_cur), needed);
  }
}

}  // namespace

int run_worker(const WorkerConfig& config) {
  const size_t mine = (config.plan->clients.size() + config.count - 1 - config.id) / config.count;
  raise_file_limit(mine + 64);
  Worker worker(config);
  return worker.run();
}

}  // namespace sluice_bench
