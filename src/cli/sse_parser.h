// An incremental parser for Server-Sent Events (text/event-stream), fed with the chunks that
// arrive from the network however they are split. Not thread-safe: one parser per stream.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace dlab {

struct SseEvent {
  std::string event = "message";  // the `event:` field, "message" when absent
  std::string data;               // `data:` lines joined with '\n'
  std::string id;                 // the last `id:` seen on the stream
};

class SseParser final {
 public:
  // Consumes the next bytes of the stream and returns the events they complete, in order.
  // Lines may end in "\n", "\r\n" or "\r", and a chunk may end anywhere, even inside "\r\n".
  std::vector<SseEvent> Feed(std::string_view chunk);

 private:
  void ProcessLine(std::string_view line, std::vector<SseEvent>* events);

  std::string line_;           // the incomplete line carried over from the previous chunk
  bool skip_next_lf_ = false;  // the last chunk ended in '\r', so a leading '\n' is its pair
  std::string event_type_;
  std::string data_;
  bool has_data_ = false;
  std::string last_id_;
};

}  // namespace dlab
