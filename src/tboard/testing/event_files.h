// For tests: TensorBoard event-file records built with the generated Event classes, and a helper
// that appends bytes to a file the way a writer would.
#pragma once

#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "tboard/event.pb.h"
#include "tboard/tfrecord.h"

namespace dlab::testing {

// The first record of every event file.
inline std::string VersionRecord() {
  tfevent::Event event;
  event.set_wall_time(1700000000.0);
  event.set_file_version("brain.Event:2");
  return EncodeTfRecord(event.SerializeAsString());
}

// One event with old-style scalars (simple_value), as torch's SummaryWriter.add_scalar writes.
inline std::string ScalarsRecord(int64_t step, double wall_time,
                                 const std::vector<std::pair<std::string, float>>& values) {
  tfevent::Event event;
  event.set_wall_time(wall_time);
  event.set_step(step);
  for (const auto& [tag, value] : values) {
    tfevent::Summary::Value* v = event.mutable_summary()->add_value();
    v->set_tag(tag);
    v->set_simple_value(value);
  }
  return EncodeTfRecord(event.SerializeAsString());
}

// Appends bytes to the file at path, creating it and its directories.
inline void AppendToFile(const std::filesystem::path& path, const std::string& bytes) {
  std::filesystem::create_directories(path.parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::app);
  out << bytes;
}

}  // namespace dlab::testing
