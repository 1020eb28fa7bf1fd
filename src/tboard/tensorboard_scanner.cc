#include "tboard/tensorboard_scanner.h"

#include <spdlog/spdlog.h>

#include <algorithm>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>

#include "tboard/event.pb.h"
#include "tboard/tfrecord.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

constexpr uint64_t kReadChunk = 1 << 20;
// Bounds the memory and time one Poll spends on a large file; the rest is read by later Polls.
constexpr uint64_t kMaxBytesPerPoll = uint64_t{64} << 20;

constexpr int kDtFloat = 1;   // tensorflow.DataType DT_FLOAT
constexpr int kDtDouble = 2;  // DT_DOUBLE
constexpr int kDataClassScalar = 1;

std::vector<std::string> EventFiles(const std::string& dir) {
  std::vector<std::string> paths;
  std::error_code ec;
  for (fs::recursive_directory_iterator it(dir, fs::directory_options::skip_permission_denied, ec),
       end;
       !ec && it != end; it.increment(ec)) {
    std::error_code file_ec;
    if (it->is_regular_file(file_ec) &&
        it->path().filename().string().find("tfevents") != std::string::npos) {
      paths.push_back(it->path().string());
    }
  }
  std::sort(paths.begin(), paths.end());
  return paths;
}

template <typename T>
std::optional<double> FromContent(const std::string& content) {
  if (content.size() != sizeof(T)) return std::nullopt;
  T v;
  std::memcpy(&v, content.data(), sizeof(T));  // little-endian, as the host
  return static_cast<double>(v);
}

// The value of a tensor that holds a single float or double.
std::optional<double> TensorScalar(const tfevent::TensorProto& t) {
  if (t.dtype() == kDtFloat) {
    if (t.float_val_size() == 1) return t.float_val(0);
    return FromContent<float>(t.tensor_content());
  }
  if (t.dtype() == kDtDouble) {
    if (t.double_val_size() == 1) return t.double_val(0);
    return FromContent<double>(t.tensor_content());
  }
  return std::nullopt;
}

}  // namespace

TensorBoardScanner::TensorBoardScanner(std::string dir) : dir_(std::move(dir)) {}

std::vector<ScalarEvent> TensorBoardScanner::Poll() {
  std::vector<ScalarEvent> out;
  std::map<std::string, FileState> seen;
  for (const std::string& path : EventFiles(dir_)) {
    auto node = files_.extract(path);
    FileState& file = seen[path];
    if (!node.empty()) file = std::move(node.mapped());
    ReadNewRecords(path, file, &out);
  }
  files_ = std::move(seen);  // forgets files that were removed
  return out;
}

void TensorBoardScanner::ReadNewRecords(const std::string& path, FileState& file,
                                        std::vector<ScalarEvent>* out) {
  std::error_code ec;
  const uint64_t size = fs::file_size(path, ec);
  if (ec) return;
  if (size < file.offset) {
    spdlog::info("tensorboard: {} shrank below what was read; reading it again", path);
    file = FileState{};
  }
  if (file.broken || size == file.offset) return;
  std::ifstream in(path, std::ios::binary);
  if (!in || !in.seekg(static_cast<std::streamoff>(file.offset))) return;
  const uint64_t stop_after = file.offset + kMaxBytesPerPoll;
  std::string buffer;
  size_t pos = 0;  // of the next record in buffer; buffer[pos] is at file.offset in the file
  for (;;) {
    TfRecordView record = ParseTfRecord(absl::string_view(buffer).substr(pos));
    if (record.status == TfRecordStatus::kOk) {
      DecodeEvent(path, record.data, file, out);
      pos += record.size;
      file.offset += record.size;
      continue;
    }
    if (record.status == TfRecordStatus::kCorrupt) {
      spdlog::warn("tensorboard: {}: {} in the record at offset {}; skipping the rest of the file",
                   path, record.error, file.offset);
      file.broken = true;
      return;
    }
    const uint64_t buffered = buffer.size() - pos;
    const uint64_t unread = size - (file.offset + buffered);
    if (unread == 0 || file.offset >= stop_after) return;  // the rest waits for the next Poll
    buffer.erase(0, pos);
    pos = 0;
    const uint64_t want = std::min(unread, std::max(kReadChunk, record.size - buffered));
    const size_t old_size = buffer.size();
    buffer.resize(old_size + want);
    in.read(buffer.data() + old_size, static_cast<std::streamsize>(want));
    buffer.resize(old_size + static_cast<size_t>(in.gcount()));
    if (in.gcount() == 0) return;
  }
}

void TensorBoardScanner::DecodeEvent(const std::string& path, absl::string_view data,
                                     FileState& file, std::vector<ScalarEvent>* out) {
  tfevent::Event event;
  if (!event.ParseFromArray(data.data(), static_cast<int>(data.size()))) {
    if (!file.warned_undecodable) {
      spdlog::warn("tensorboard: {}: a record at offset {} is not an Event; skipped", path,
                   file.offset);
      file.warned_undecodable = true;
    }
    return;
  }
  if (!event.has_summary()) return;
  for (const tfevent::Summary::Value& v : event.summary().value()) {
    if (v.has_metadata()) {
      file.scalar_tags[v.tag()] = v.metadata().plugin_data().plugin_name() == "scalars" ||
                                  v.metadata().data_class() == kDataClassScalar;
    }
    std::optional<double> value;
    if (v.value_case() == tfevent::Summary::Value::kSimpleValue) {
      value = v.simple_value();
    } else if (v.value_case() == tfevent::Summary::Value::kTensor) {
      auto it = file.scalar_tags.find(v.tag());
      if (it != file.scalar_tags.end() && it->second) value = TensorScalar(v.tensor());
    }
    if (value) {
      out->push_back(
          {.tag = v.tag(), .step = event.step(), .wall_time = event.wall_time(), .value = *value});
    }
  }
}

}  // namespace dlab
