#include "cli/sse_parser.h"

namespace dlab {

std::vector<SseEvent> SseParser::Feed(std::string_view chunk) {
  std::vector<SseEvent> events;
  for (char c : chunk) {
    if (skip_next_lf_) {
      skip_next_lf_ = false;
      if (c == '\n') continue;
    }
    if (c == '\r' || c == '\n') {
      skip_next_lf_ = c == '\r';
      ProcessLine(line_, &events);
      line_.clear();
    } else {
      line_.push_back(c);
    }
  }
  return events;
}

void SseParser::ProcessLine(std::string_view line, std::vector<SseEvent>* events) {
  if (line.empty()) {
    if (has_data_) {
      SseEvent event;
      if (!event_type_.empty()) event.event = event_type_;
      event.data = std::move(data_);
      event.id = last_id_;
      events->push_back(std::move(event));
    }
    event_type_.clear();
    data_.clear();
    has_data_ = false;
    return;
  }
  if (line.front() == ':') return;  // a comment, e.g. a keep-alive
  std::string_view field = line;
  std::string_view value;
  if (size_t colon = line.find(':'); colon != std::string_view::npos) {
    field = line.substr(0, colon);
    value = line.substr(colon + 1);
    if (!value.empty() && value.front() == ' ') value.remove_prefix(1);
  }
  if (field == "data") {
    if (has_data_) data_.push_back('\n');
    data_.append(value);
    has_data_ = true;
  } else if (field == "event") {
    event_type_ = value;
  } else if (field == "id") {
    if (value.find('\0') == std::string_view::npos) last_id_ = value;
  }
}

}  // namespace dlab
