// sluice-bench: builds realistic status events (shaped like Mastodon's
// PushUpdateWorker / FanOutOnWriteService messages) and PUBLISHes them to Redis
// with hiredis. Each message carries a marker "SLUICEBENCH_<run>_T<send ns>_S<seq>_"
// inside the status content: plain ASCII with no quotes or backslashes, so it
// survives the server's re-serialisation and the WebSocket payload's JSON-string
// escaping unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <string>
#include <vector>

struct redisContext;

namespace sluice_bench {

// A message with fixed-width placeholders overwritten in place for each publish.
class EventTemplate {
 public:
  // remote: author is a remote account (for public:remote streams), else local.
  EventTemplate(const std::string& marker_prefix, uint32_t target_bytes, bool remote);
  // Stamps send time and sequence number; returns the message to publish.
  const std::string& stamp(uint64_t sent_ns, uint64_t seq);
  size_t size() const { return text_.size(); }

 private:
  std::string text_;
  size_t time_pos_ = 0;  // 19 digits
  size_t seq_pos_ = 0;   // 10 digits
};

class RedisPublisher {
 public:
  RedisPublisher(const std::string& host, int port, const std::string& user, const std::string& password,
                 const std::string& ns);
  ~RedisPublisher();
  RedisPublisher(const RedisPublisher&) = delete;
  RedisPublisher& operator=(const RedisPublisher&) = delete;

  // Returns the number of Redis subscribers that received it. Throws on errors.
  long long publish(const std::string& channel, const std::string& message);
  // Pipelining: queue PUBLISH commands, then read their replies (receivers each).
  void append_publish(const std::string& channel, const std::string& message);
  std::vector<long long> collect_replies(size_t count);
  // PUBSUB NUMSUB for each channel (namespace applied).
  std::vector<long long> numsub(const std::vector<std::string>& channels);
  std::string full_name(const std::string& channel) const { return prefix_ + channel; }

 private:
  void check(const char* what);
  redisContext* ctx_ = nullptr;
  std::string prefix_;
};

}  // namespace sluice_bench
