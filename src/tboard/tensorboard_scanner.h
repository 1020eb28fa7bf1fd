// TensorBoardScanner: reads the scalars that a job writes as TensorBoard event files (any file
// whose name contains "tfevents", at any depth under a directory), incrementally. Each Poll reads
// only the records completed since the previous one, keeping an offset per file; a partial
// trailing record (a writer mid-write) is left for the next Poll; a file with a checksum
// mismatch is read no further (logged once). Both old-style scalars (simple_value, as torch's
// SummaryWriter.add_scalar writes) and TF2 scalars (a one-value float or double tensor of the
// "scalars" plugin) are returned. Not thread-safe: one owner polls it.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace dlab {

struct ScalarEvent {
  std::string tag;
  int64_t step = 0;
  double wall_time = 0;  // Unix seconds
  double value = 0;
};

class TensorBoardScanner final {
 public:
  explicit TensorBoardScanner(std::string dir);
  TensorBoardScanner(const TensorBoardScanner&) = delete;
  TensorBoardScanner& operator=(const TensorBoardScanner&) = delete;

  // The scalars of the records completed since the previous Poll, file by file (files in path
  // order, records in file order). A missing directory yields nothing; it may appear later.
  std::vector<ScalarEvent> Poll();

  const std::string& dir() const { return dir_; }

 private:
  struct FileState {
    uint64_t offset = 0;  // where the first record not yet read starts
    bool broken = false;  // corrupt at offset: not read further
    bool warned_undecodable = false;
    // Tags whose metadata (written with a tag's first value only) marks them as scalars.
    std::map<std::string, bool> scalar_tags;
  };

  void ReadNewRecords(const std::string& path, FileState& file, std::vector<ScalarEvent>* out);
  void DecodeEvent(const std::string& path, absl::string_view data, FileState& file,
                   std::vector<ScalarEvent>* out);

  std::string dir_;
  std::map<std::string, FileState> files_;  // by path
};

}  // namespace dlab
