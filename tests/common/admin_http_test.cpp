// The tiers' admin listener (common/admin_http.hpp): what probes and scrapers get, and
// that a connection which says nothing, or too many of them, cannot hold the process's
// file descriptors.
#include "common/admin_http.hpp"

#include <arpa/inet.h>
#include <gtest/gtest.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <string>

namespace sluice {
namespace {

using namespace std::chrono_literals;

// A loopback connection to the admin port.
class Peer {
 public:
  explicit Peer(int port) : fd_(::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    sockaddr_in address{};
    address.sin_family = AF_INET;
    address.sin_port = htons(static_cast<uint16_t>(port));
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    connected_ = ::connect(fd_, reinterpret_cast<sockaddr*>(&address), sizeof address) == 0;
  }
  ~Peer() { ::close(fd_); }
  Peer(const Peer&) = delete;
  Peer& operator=(const Peer&) = delete;
  bool connected() const { return connected_; }
  void send(const std::string& bytes) { ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL); }
  // Everything until the server closes, or nullopt-like "" with `*closed` false at the deadline.
  std::string read_until_closed(std::chrono::milliseconds timeout, bool* closed) {
    std::string got;
    auto deadline = std::chrono::steady_clock::now() + timeout;
    *closed = false;
    while (std::chrono::steady_clock::now() < deadline) {
      pollfd p{fd_, POLLIN, 0};
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - std::chrono::steady_clock::now());
      if (::poll(&p, 1, static_cast<int>(std::max<int64_t>(left.count(), 1))) <= 0) continue;
      char buffer[4096];
      ssize_t n = ::recv(fd_, buffer, sizeof buffer, 0);
      if (n <= 0) {
        *closed = true;
        return got;
      }
      got.append(buffer, static_cast<size_t>(n));
    }
    return got;
  }
  std::string get(const std::string& target) {
    send("GET " + target + " HTTP/1.1\r\nHost: x\r\n\r\n");
    bool closed = false;
    return read_until_closed(5s, &closed);
  }

 private:
  int fd_;
  bool connected_ = false;
};

TEST(AdminHttp, AnswersProbesAndScrapes) {
  std::atomic<bool> ready{false};
  AdminHttpServer server("127.0.0.1:0", [&] { return ready.load(); });
  server.start();
  auto status_line = [&](const std::string& target) {
    Peer peer(server.port());
    std::string answer = peer.get(target);
    return answer.substr(0, answer.find("\r\n"));
  };
  EXPECT_EQ(status_line("/healthz"), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line("/readyz"), "HTTP/1.1 503 Service Unavailable");
  ready = true;
  EXPECT_EQ(status_line("/readyz"), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line("/metrics"), "HTTP/1.1 200 OK");
  EXPECT_EQ(status_line("/elsewhere"), "HTTP/1.1 404 Not Found");
}

// Before, such a connection was read for ever.
TEST(AdminHttp, AConnectionThatSendsNothingIsClosedAfterTheExchangeTimeout) {
  AdminHttpServer server("127.0.0.1:0", [] { return true; }, {std::chrono::milliseconds(300), 64});
  server.start();
  Peer silent(server.port());
  ASSERT_TRUE(silent.connected());
  bool closed = false;
  EXPECT_EQ(silent.read_until_closed(20s, &closed), "");
  EXPECT_TRUE(closed) << "still open after 20 s";
  // The listener still serves.
  Peer probe(server.port());
  EXPECT_EQ(probe.get("/healthz").rfind("HTTP/1.1 200 OK", 0), 0u);
}

// Past the limit a connection is closed at once, unanswered; once one of those held goes,
// a probe is served again.
TEST(AdminHttp, ConnectionsPastTheLimitAreClosedAtOnce) {
  AdminHttpServer server("127.0.0.1:0", [] { return true; }, {std::chrono::milliseconds(60000), 2});
  server.start();
  auto first = std::make_unique<Peer>(server.port());
  Peer second(server.port());
  // Both held: each has sent half a request head, so neither is answered yet.
  first->send("GET /healthz HTTP/1.1\r\n");
  second.send("GET /healthz HTTP/1.1\r\n");
  bool closed = false;
  // The third waits its turn in the listen queue only as long as the two above were
  // accepted; the marker that they were: the third is closed unanswered.
  Peer third(server.port());
  EXPECT_EQ(third.read_until_closed(20s, &closed), "");
  EXPECT_TRUE(closed) << "a connection past the limit was kept";
  first.reset();
  // Its handlers notice the close and let its place go.
  std::string answer;
  for (int attempt = 0; attempt < 200 && answer.empty(); ++attempt) {
    Peer probe(server.port());
    answer = probe.get("/healthz");
  }
  EXPECT_EQ(answer.rfind("HTTP/1.1 200 OK", 0), 0u);
  second.send("\r\n");
  EXPECT_EQ(second.read_until_closed(5s, &closed).rfind("HTTP/1.1 200 OK", 0), 0u) << "a held connection was dropped";
}

}  // namespace
}  // namespace sluice
