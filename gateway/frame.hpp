#pragma once
// Bytes ready for the wire (an SSE chunk or a WebSocket frame), encoded once per
// event and stream name and shared by every client of one worker thread. The
// reference count is deliberately NOT atomic: a frame never leaves the worker
// thread that built it, so fan-out to thousands of clients costs no atomic
// read-modify-write on a shared cache line.
#include <boost/smart_ptr/intrusive_ptr.hpp>
#include <cstdint>
#include <string>

namespace sluice::gateway {

struct FrameData {
  explicit FrameData(std::string b) : bytes(std::move(b)) {}
  mutable uint32_t refs = 0;
  std::string bytes;
};

inline void intrusive_ptr_add_ref(const FrameData* frame) { ++frame->refs; }
inline void intrusive_ptr_release(const FrameData* frame) {
  if (--frame->refs == 0) delete frame;
}

using Frame = boost::intrusive_ptr<const FrameData>;

inline Frame make_frame(std::string bytes) { return Frame(new FrameData(std::move(bytes))); }

}  // namespace sluice::gateway
