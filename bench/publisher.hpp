// sluice-bench: builds realistic events (shaped like Mastodon's PushUpdateWorker /
// FanOutOnWriteService messages) and PUBLISHes them to Redis with hiredis. Each
// message carries a marker (bench/event_marker.hpp) inside the status content, or
// as the deleted id of a `delete`: plain ASCII with no quotes or backslashes, so it
// survives the server's re-serialisation and the WebSocket payload's JSON-string
// escaping unchanged.
#pragma once

#include <cstdint>
#include <memory>
#include <stdexcept>
#include <string>
#include <vector>

#include "bench/verifier.hpp"

struct redisContext;
struct timeval;

namespace sluice_bench {

// Event names the publisher can send (--event-mix): update, status.update, delete.
bool known_event_name(const std::string& name);
bool is_status_event(const std::string& name);  // update, status.update

// One kind of message (event name, local or remote author) with the marker body
// overwritten in place for each publish, and the exact payload text a client
// must receive for it (JavaScript's JSON.stringify of the object payload, as the
// server re-serialises it; the string itself for `delete`), with the marker body
// as zeros. Filtered streams append `"filtered":[...]` to status payloads; that
// is the verifier's business (bench/verifier.hpp).
class EventTemplate {
 public:
  // marker_prefix: "SLUICEBENCH_<run id>_"; remote: the author is a remote account
  // (for public:remote streams), else local.
  EventTemplate(const std::string& marker_prefix, uint32_t target_bytes, bool remote, const std::string& event,
                uint64_t run_seed);
  // Stamps send time, per-channel sequence number and channel; returns the message to publish.
  const std::string& stamp(uint64_t sent_ns, uint32_t seq, uint32_t channel);
  size_t size() const { return text_.size(); }
  const std::string& event() const { return event_; }
  bool remote() const { return remote_; }
  // What a client must receive, marker body zeroed, and where the marker prefix starts in it.
  const std::string& client_payload() const { return client_payload_; }
  size_t client_marker_at() const { return client_marker_at_; }

 private:
  std::string event_;
  bool remote_ = false;
  uint64_t run_seed_ = 0;
  std::string text_;
  size_t body_pos_ = 0;  // marker body in text_
  std::string client_payload_;
  size_t client_marker_at_ = 0;
};

// One template per (author, event of the mix): index remote * mix.size() + k.
std::vector<EventTemplate> make_event_templates(const std::string& marker_prefix, uint32_t payload_bytes,
                                                const std::vector<std::string>& mix, uint64_t run_seed);
// What the verifier must know about them; channel_remote: per plan channel.
VerifierSetup make_verifier_setup(const std::vector<EventTemplate>& templates, size_t mix_size,
                                  const std::string& marker_prefix, uint64_t run_seed, std::vector<bool> channel_remote);

// The connection to Redis failed or was lost: whether the commands in flight
// reached Redis is unknown.
struct RedisLost : std::runtime_error {
  using std::runtime_error::runtime_error;
};

class RedisPublisher {
 public:
  RedisPublisher(const std::string& host, int port, const std::string& user, const std::string& password,
                 const std::string& ns);
  ~RedisPublisher();
  RedisPublisher(const RedisPublisher&) = delete;
  RedisPublisher& operator=(const RedisPublisher&) = delete;

  // Whether the connection is usable; false after a connection-level failure
  // (RedisLost), until reconnect() succeeds.
  bool connected() const { return ctx_ != nullptr; }
  // One attempt to connect again (AUTH, PING), bounded by a short timeout; false
  // while Redis does not answer (or is still loading). Throws only when Redis
  // refuses the credentials.
  bool reconnect();

  // Returns the number of Redis subscribers that received it. Throws on errors.
  long long publish(const std::string& channel, const std::string& message);
  // Pipelining: queue PUBLISH commands, then read their replies (receivers each).
  void append_publish(const std::string& channel, const std::string& message);
  std::vector<long long> collect_replies(size_t count);
  // PUBSUB NUMSUB for each channel (namespace applied).
  std::vector<long long> numsub(const std::vector<std::string>& channels);
  std::string full_name(const std::string& channel) const { return prefix_ + channel; }

 private:
  void connect(timeval timeout);
  [[noreturn]] void check(const char* what);
  std::string host_, user_, password_;
  int port_ = 0;
  redisContext* ctx_ = nullptr;
  std::string prefix_;
};

}  // namespace sluice_bench
