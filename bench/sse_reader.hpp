#pragma once
// Server-Sent Events read as a browser's EventSource reads them (the WHATWG event
// stream interpretation): a line `event:` sets the event's type, `data:` lines are
// joined with "\n", a line starting with ":" is a comment, and an event exists only at
// the blank line that ends it. So a server that leaves out the blank line between two
// events, or holds it back, is seen as a browser would see it: one event with both
// data lines, or an event not there yet.
#include <string>
#include <string_view>

namespace sluice_bench {

class SseEventReader {
 public:
  // One line without its "\n" (a "\r" before it is dropped). True when it is the blank
  // line ending an event that had data: event() and data() hold that event until the
  // next call.
  bool line(std::string_view text) {
    if (ended_) reset();
    if (!text.empty() && text.back() == '\r') text.remove_suffix(1);
    if (text.empty()) {
      ended_ = true;
      return has_data_;
    }
    if (text.front() == ':') return false;  // a comment (the server's `:thump`)
    const size_t colon = text.find(':');
    const std::string_view field = text.substr(0, colon);
    std::string_view value = colon == std::string_view::npos ? std::string_view() : text.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    if (field == "event") {
      event_.assign(value);
    } else if (field == "data") {
      if (has_data_) data_ += '\n';
      data_.append(value);
      has_data_ = true;
    }
    return false;
  }

  std::string_view event() const { return event_; }
  std::string_view data() const { return data_; }

  // Forgets the event being read; memory held for a large one is let go.
  void reset() {
    event_.clear();
    if (data_.capacity() > 4096) {
      std::string().swap(data_);
    } else {
      data_.clear();
    }
    has_data_ = false;
    ended_ = false;
  }

 private:
  std::string event_;
  std::string data_;
  bool has_data_ = false;
  bool ended_ = false;
};

}  // namespace sluice_bench
