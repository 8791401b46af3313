// fanout-floor-ws: the bare fan-out floor of ../shared/tools/fanout-floor.cpp, over
// WebSocket: what one WebSocket delivery costs on this machine under the same load tool.
// It exists because that floor speaks only SSE, so comparing Sluice's WebSocket
// figures with it also compared the load tool reading WebSocket (decoding every
// payload from its JSON string) with it reading SSE, on the cores the servers use
// (docs/benchmarks.md#a-websocket-floor-2026-12-05).
//
// As the SSE floor: no auth, no HTTP parsing beyond the end of the request head and its
// Sec-WebSocket-Key, one frame and one write() per client per event, no queue (a short
// write drops the client), one thread, epoll, nothing read from clients after the
// handshake. Unlike it, each event's frame is what a client must receive: once per event
// (not per delivery) the Redis message is parsed and the frame written as the reference
// writes it, JSON.stringify({stream, event, payload}) with the payload re-serialised
// (Rails' \u003c escapes become "<"). So the load tool verifies the floor's frames as it
// does Sluice's and spends the same on each (docs/benchmarks.md#what-the-tool-spends-on-a-websocket-frame).
// The frame's stream echo is the STREAM argument. A yardstick, not a product: it is
// built beside sluice-bench (bench/CMakeLists.txt) and run with
// `bench/run.sh --floor build-release/bin/fanout-floor-ws`.
//
// usage: fanout-floor-ws PORT REDIS_PORT CHANNEL [STREAM]   (loopback only; Redis without
// AUTH; STREAM defaults to `user`)
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cctype>
#include <csignal>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <unordered_map>
#include <vector>

#include <nlohmann/json.hpp>

#include "bench/util.hpp"  // the accept key, as the load tool checks it

namespace {

void set_non_blocking(int fd) { fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK); }

// The value of the Sec-WebSocket-Key header of a request head, "" without one.
std::string websocket_key(const std::string& head) {
  static const std::string kName = "sec-websocket-key:";
  std::string lower(head);
  for (char& c : lower) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  size_t at = lower.find(kName);
  if (at == std::string::npos) return "";
  size_t begin = head.find_first_not_of(' ', at + kName.size());
  size_t end = head.find("\r\n", begin);
  if (begin == std::string::npos || end == std::string::npos) return "";
  return head.substr(begin, end - begin);
}

// The frame text the reference sends for one Redis message (`{"event":...,"payload":...}`):
// a string payload as it is, an object payload re-serialised compactly. "" when the
// message is not one.
std::string event_frame_text(const std::string& message, const std::string& stream) {
  using ojson = nlohmann::ordered_json;
  const ojson m = ojson::parse(message, nullptr, false);
  if (!m.is_object() || !m.contains("event") || !m["event"].is_string() || !m.contains("payload")) return "";
  const ojson& payload = m["payload"];
  // (A parsed value is valid UTF-8; only STREAM, from the command line, might not be.)
  constexpr auto kReplace = ojson::error_handler_t::replace;
  const std::string text = payload.is_string() ? payload.get<std::string>() : payload.dump(-1, ' ', false, kReplace);
  return ojson{{"stream", ojson::array({stream})}, {"event", m["event"]}, {"payload", text}}.dump(-1, ' ', false, kReplace);
}

// One unmasked final text frame (RFC 6455 section 5.2).
std::string text_frame(const std::string& text) {
  std::string frame(1, '\x81');
  if (text.size() < 126) {
    frame += static_cast<char>(text.size());
  } else if (text.size() < 65536) {
    frame += '\x7e';
    frame += static_cast<char>(text.size() >> 8);
    frame += static_cast<char>(text.size() & 0xff);
  } else {
    frame += '\x7f';
    for (int shift = 56; shift >= 0; shift -= 8) frame += static_cast<char>((text.size() >> shift) & 0xff);
  }
  return frame + text;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 4) {
    std::fprintf(stderr, "usage: fanout-floor-ws PORT REDIS_PORT CHANNEL [STREAM]\n");
    return 2;
  }
  std::signal(SIGPIPE, SIG_IGN);
  const int port = std::atoi(argv[1]), redis_port = std::atoi(argv[2]);
  const std::string channel = argv[3];
  const std::string stream = argc > 4 ? argv[4] : "user";

  int listener = socket(AF_INET, SOCK_STREAM, 0), one = 1;
  setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
  sockaddr_in address{};
  address.sin_family = AF_INET;
  address.sin_port = htons(static_cast<uint16_t>(port));
  address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (bind(listener, reinterpret_cast<sockaddr*>(&address), sizeof address) || listen(listener, 4096)) {
    std::perror("listen");
    return 1;
  }
  set_non_blocking(listener);
  int redis = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in redis_address{};
  redis_address.sin_family = AF_INET;
  redis_address.sin_port = htons(static_cast<uint16_t>(redis_port));
  redis_address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (connect(redis, reinterpret_cast<sockaddr*>(&redis_address), sizeof redis_address)) {
    std::perror("redis");
    return 1;
  }
  std::string subscribe = "*2\r\n$9\r\nSUBSCRIBE\r\n$" + std::to_string(channel.size()) + "\r\n" + channel + "\r\n";
  if (write(redis, subscribe.data(), subscribe.size()) < 0) return 1;
  set_non_blocking(redis);

  int poller = epoll_create1(0);
  epoll_event event{};
  event.events = EPOLLIN;
  event.data.fd = listener;
  epoll_ctl(poller, EPOLL_CTL_ADD, listener, &event);
  event.data.fd = redis;
  epoll_ctl(poller, EPOLL_CTL_ADD, redis, &event);
  std::unordered_map<int, std::string> heads;  // connections still sending their request head
  std::vector<int> clients;
  std::string redis_buffer;
  std::vector<epoll_event> ready(1024);
  char buffer[65536];
  for (;;) {
    int count = epoll_wait(poller, ready.data(), static_cast<int>(ready.size()), -1);
    for (int i = 0; i < count; ++i) {
      int fd = ready[i].data.fd;
      if (fd == listener) {
        for (;;) {
          int client = accept4(listener, nullptr, nullptr, SOCK_NONBLOCK);
          if (client < 0) break;
          setsockopt(client, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
          heads[client];
          event.events = EPOLLIN;
          event.data.fd = client;
          epoll_ctl(poller, EPOLL_CTL_ADD, client, &event);
        }
      } else if (fd == redis) {
        ssize_t got;
        while ((got = read(redis, buffer, sizeof buffer)) > 0) redis_buffer.append(buffer, static_cast<size_t>(got));
        // RESP: *3 $7 message $<n> channel $<n> body. Take each body.
        for (;;) {
          size_t m = redis_buffer.find("$7\r\nmessage\r\n");
          if (m == std::string::npos) break;
          size_t channel_line_end = redis_buffer.find("\r\n", m + 13);
          if (channel_line_end == std::string::npos) break;
          size_t channel_size = std::strtoul(redis_buffer.c_str() + m + 14, nullptr, 10);
          size_t body_line = channel_line_end + 2 + channel_size + 2;
          if (body_line >= redis_buffer.size()) break;
          size_t body_line_end = redis_buffer.find("\r\n", body_line);
          if (body_line_end == std::string::npos) break;
          size_t body_size = std::strtoul(redis_buffer.c_str() + body_line + 1, nullptr, 10);
          if (redis_buffer.size() < body_line_end + 2 + body_size + 2) break;
          std::string body = redis_buffer.substr(body_line_end + 2, body_size);
          redis_buffer.erase(0, body_line_end + 2 + body_size + 2);
          const std::string text = event_frame_text(body, stream);
          if (text.empty()) {
            std::fprintf(stderr, "fanout-floor-ws: not an event, dropped: %.80s\n", body.c_str());
            continue;
          }
          const std::string frame = text_frame(text);
          size_t kept = 0;
          for (size_t j = 0; j < clients.size(); ++j) {
            if (write(clients[j], frame.data(), frame.size()) == static_cast<ssize_t>(frame.size())) {
              clients[kept++] = clients[j];
            } else {
              close(clients[j]);  // the floor does not queue: a short write ends the client
            }
          }
          clients.resize(kept);
        }
      } else {
        auto it = heads.find(fd);
        if (it == heads.end()) continue;
        ssize_t got = read(fd, buffer, sizeof buffer);
        if (got <= 0) {
          close(fd);
          heads.erase(it);
          continue;
        }
        it->second.append(buffer, static_cast<size_t>(got));
        if (it->second.find("\r\n\r\n") == std::string::npos) continue;
        // Nothing is read after the handshake (pings go unanswered, as in the SSE floor).
        epoll_ctl(poller, EPOLL_CTL_DEL, fd, nullptr);
        std::string key = websocket_key(it->second);
        heads.erase(it);
        std::string response = key.empty() ? std::string("HTTP/1.1 400 Bad Request\r\nConnection: close\r\n\r\n")
                                           : "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                                             "Connection: Upgrade\r\nSec-WebSocket-Accept: " +
                                                 sluice_bench::websocket_accept_for(key) + "\r\n\r\n";
        if (!key.empty() && write(fd, response.data(), response.size()) == static_cast<ssize_t>(response.size())) {
          clients.push_back(fd);
        } else {
          if (key.empty()) (void)!write(fd, response.data(), response.size());
          close(fd);
        }
      }
    }
  }
}
