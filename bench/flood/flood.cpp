// sluice-flood: connection attempts with random (invalid) tokens at a fixed rate,
// each claiming a different client address through X-Forwarded-For, as a token
// flood through a trusted proxy looks to Sluice (docs/reliability.md#token-flood).
// Counts the answers by status and prints one JSON object.
//
//   sluice-flood --port P [--host 127.0.0.1] [--rate 10000] [--seconds 30]
//                [--addresses 50000] [--max-in-flight 4000] [--path /api/v1/streaming/user]
#include <boost/asio.hpp>

#include <algorithm>
#include <chrono>
#include <functional>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using Clock = std::chrono::steady_clock;

namespace {

struct Options {
  std::string host = "127.0.0.1";
  int port = 0;
  double rate = 10000;
  double seconds = 30;
  uint32_t addresses = 50000;
  uint32_t max_in_flight = 4000;
  std::string path = "/api/v1/streaming/user";
};

struct Stats {
  uint64_t attempted = 0, answered = 0, failed = 0, skipped = 0;
  std::map<int, uint64_t> statuses;
  std::vector<double> latency_ms;
};

class Attempt : public std::enable_shared_from_this<Attempt> {
 public:
  Attempt(asio::io_context& io, Stats& stats, uint32_t& in_flight)
      : socket_(io), timer_(io), stats_(stats), in_flight_(in_flight) {}

  void start(const tcp::endpoint& target, std::string request) {
    request_ = std::move(request);
    started_ = Clock::now();
    ++in_flight_;
    timer_.expires_after(std::chrono::seconds(10));
    timer_.async_wait([self = shared_from_this()](const boost::system::error_code& ec) {
      if (!ec) self->socket_.close();
    });
    socket_.async_connect(target, [self = shared_from_this()](const boost::system::error_code& ec) {
      if (ec) return self->finish(0);
      asio::async_write(self->socket_, asio::buffer(self->request_),
                        [self](const boost::system::error_code& write_ec, size_t) {
                          if (write_ec) return self->finish(0);
                          self->read_status();
                        });
    });
  }

 private:
  void read_status() {
    asio::async_read_until(socket_, asio::dynamic_buffer(response_), "\r\n",
                           [self = shared_from_this()](const boost::system::error_code& ec, size_t) {
                             int status = 0;
                             if (!ec && self->response_.rfind("HTTP/1.1 ", 0) == 0 && self->response_.size() >= 12) {
                               status = std::atoi(self->response_.substr(9, 3).c_str());
                             }
                             self->finish(status);
                           });
  }
  void finish(int status) {
    if (done_) return;
    done_ = true;
    --in_flight_;
    timer_.cancel();
    boost::system::error_code ignored;
    socket_.close(ignored);
    if (status == 0) {
      ++stats_.failed;
    } else {
      ++stats_.answered;
      ++stats_.statuses[status];
      stats_.latency_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - started_).count());
    }
  }

  tcp::socket socket_;
  asio::steady_timer timer_;
  Stats& stats_;
  uint32_t& in_flight_;
  std::string request_;
  std::string response_;
  Clock::time_point started_;
  bool done_ = false;
};

Options parse(int argc, char** argv) {
  Options o;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string key = argv[i], value = argv[i + 1];
    if (key == "--host") o.host = value;
    else if (key == "--port") o.port = std::atoi(value.c_str());
    else if (key == "--rate") o.rate = std::atof(value.c_str());
    else if (key == "--seconds") o.seconds = std::atof(value.c_str());
    else if (key == "--addresses") o.addresses = static_cast<uint32_t>(std::atoi(value.c_str()));
    else if (key == "--max-in-flight") o.max_in_flight = static_cast<uint32_t>(std::atoi(value.c_str()));
    else if (key == "--path") o.path = value;
    else {
      std::fprintf(stderr, "sluice-flood: unknown option %s\n", key.c_str());
      std::exit(2);
    }
  }
  if (o.port <= 0 || o.rate <= 0 || o.seconds <= 0 || o.addresses == 0) {
    std::fprintf(stderr, "usage: sluice-flood --port P [--rate R] [--seconds S] [--addresses N] [--max-in-flight M]\n");
    std::exit(2);
  }
  return o;
}

}  // namespace

int main(int argc, char** argv) {
  Options options = parse(argc, argv);
  asio::io_context io;
  tcp::endpoint target(asio::ip::make_address(options.host), static_cast<unsigned short>(options.port));
  Stats stats;
  uint32_t in_flight = 0;
  std::mt19937_64 random(std::random_device{}());
  const char* alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

  auto start = Clock::now();
  auto end = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(options.seconds));
  asio::steady_timer pacer(io);
  // Every millisecond, start the attempts due by now.
  std::function<void()> tick = [&] {
    auto now = Clock::now();
    if (now >= end) return;
    double elapsed = std::chrono::duration<double>(now - start).count();
    auto due = static_cast<uint64_t>(elapsed * options.rate);
    while (stats.attempted + stats.skipped < due) {
      if (in_flight >= options.max_in_flight) {
        ++stats.skipped;  // the server is not keeping up: counted, not queued
        continue;
      }
      ++stats.attempted;
      std::string token(43, 'x');
      for (auto& c : token) c = alphabet[random() % 64];
      uint32_t address = static_cast<uint32_t>(random() % options.addresses);
      // 198.18.0.0/15 is reserved for benchmarks (RFC 2544).
      std::string forwarded = "198." + std::to_string(18 + (address >> 16) % 2) + "." +
                              std::to_string((address >> 8) & 0xff) + "." + std::to_string(address & 0xff);
      std::string request = "GET " + options.path + " HTTP/1.1\r\nHost: flood\r\nAuthorization: Bearer " + token +
                            "\r\nX-Forwarded-For: " + forwarded + "\r\nConnection: close\r\n\r\n";
      std::make_shared<Attempt>(io, stats, in_flight)->start(target, std::move(request));
    }
    pacer.expires_after(std::chrono::milliseconds(1));
    pacer.async_wait([&](const boost::system::error_code& ec) {
      if (!ec) tick();
    });
  };
  tick();
  io.run();

  double seconds = std::chrono::duration<double>(Clock::now() - start).count();
  std::sort(stats.latency_ms.begin(), stats.latency_ms.end());
  auto percentile = [&](double p) {
    if (stats.latency_ms.empty()) return 0.0;
    return stats.latency_ms[static_cast<size_t>(p * static_cast<double>(stats.latency_ms.size() - 1))];
  };
  std::printf("{\"attempted\":%llu,\"answered\":%llu,\"failed\":%llu,\"skipped_in_flight_cap\":%llu,"
              "\"seconds\":%.1f,\"attempts_per_second\":%.0f,\"p50_ms\":%.1f,\"p99_ms\":%.1f,\"statuses\":{",
              static_cast<unsigned long long>(stats.attempted), static_cast<unsigned long long>(stats.answered),
              static_cast<unsigned long long>(stats.failed), static_cast<unsigned long long>(stats.skipped), seconds,
              static_cast<double>(stats.attempted) / options.seconds, percentile(0.5), percentile(0.99));
  bool first = true;
  for (const auto& [status, count] : stats.statuses) {
    std::printf("%s\"%d\":%llu", first ? "" : ",", status, static_cast<unsigned long long>(count));
    first = false;
  }
  std::printf("}}\n");
  return 0;
}
