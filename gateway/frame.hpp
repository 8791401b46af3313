#pragma once
// Bytes ready for the wire (an SSE chunk or a WebSocket frame), encoded once per
// event and stream name and shared by every client of one worker thread. The
// reference count is deliberately NOT atomic: a frame never leaves the worker
// thread that built it, so fan-out to thousands of clients costs no atomic
// read-modify-write on a shared cache line.
//
// Every frame's bytes are counted once in a process-wide total, however many
// clients queue it: that is the memory queues really hold (docs/protocol.md#slow-clients).
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <atomic>
#include <cstdint>
#include <string>

namespace sluice::gateway {

// Bytes of every frame alive in the process.
inline std::atomic<int64_t> g_frame_bytes_alive{0};

struct FrameData {
  FrameData(std::string b, bool is_shared) : bytes(std::move(b)), shared(is_shared) {
    g_frame_bytes_alive.fetch_add(static_cast<int64_t>(bytes.size()), std::memory_order_relaxed);
  }
  ~FrameData() { g_frame_bytes_alive.fetch_sub(static_cast<int64_t>(bytes.size()), std::memory_order_relaxed); }
  FrameData(const FrameData&) = delete;
  FrameData& operator=(const FrameData&) = delete;
  mutable uint32_t refs = 0;
  std::string bytes;
  // Built for many clients (an event's frame per stream echo, heartbeats), as
  // opposed to one client's own (a payload with its filter matches, an error).
  bool shared;
};

inline void intrusive_ptr_add_ref(const FrameData* frame) { ++frame->refs; }
inline void intrusive_ptr_release(const FrameData* frame) {
  if (--frame->refs == 0) delete frame;
}

using Frame = boost::intrusive_ptr<const FrameData>;

// One client's own frame.
inline Frame make_frame(std::string bytes) { return Frame(new FrameData(std::move(bytes), /*is_shared=*/false)); }
// A frame many clients queue.
inline Frame make_shared_frame(std::string bytes) { return Frame(new FrameData(std::move(bytes), /*is_shared=*/true)); }

}  // namespace sluice::gateway
