#include "tboard/tfrecord.h"

#include "absl/strings/str_cat.h"
#include "tboard/crc32c.h"

namespace dlab {
namespace {

constexpr size_t kHeaderBytes = 12;  // length and its CRC
constexpr size_t kFooterBytes = 4;   // the data's CRC

uint64_t LoadLittleEndian(const char* p, int bytes) {
  uint64_t v = 0;
  for (int i = bytes - 1; i >= 0; --i) v = (v << 8) | static_cast<unsigned char>(p[i]);
  return v;
}

void AppendLittleEndian(uint64_t v, int bytes, std::string* out) {
  for (int i = 0; i < bytes; ++i) out->push_back(static_cast<char>((v >> (8 * i)) & 0xff));
}

}  // namespace

TfRecordView ParseTfRecord(absl::string_view buffer) {
  TfRecordView view;
  if (buffer.size() < kHeaderBytes) {
    view.size = kHeaderBytes;
    return view;
  }
  const uint64_t length = LoadLittleEndian(buffer.data(), 8);
  const uint32_t length_crc = static_cast<uint32_t>(LoadLittleEndian(buffer.data() + 8, 4));
  if (MaskCrc32c(Crc32c(buffer.substr(0, 8))) != length_crc) {
    view.status = TfRecordStatus::kCorrupt;
    view.error = "length checksum mismatch";
    return view;
  }
  if (length > kMaxTfRecordBytes) {
    view.status = TfRecordStatus::kCorrupt;
    view.error = absl::StrCat("record length ", length, " is larger than ", kMaxTfRecordBytes);
    return view;
  }
  view.size = kHeaderBytes + static_cast<size_t>(length) + kFooterBytes;
  if (buffer.size() < view.size) return view;
  const absl::string_view data = buffer.substr(kHeaderBytes, static_cast<size_t>(length));
  const uint32_t data_crc =
      static_cast<uint32_t>(LoadLittleEndian(buffer.data() + kHeaderBytes + length, 4));
  if (MaskCrc32c(Crc32c(data)) != data_crc) {
    view.status = TfRecordStatus::kCorrupt;
    view.error = "data checksum mismatch";
    return view;
  }
  view.status = TfRecordStatus::kOk;
  view.data = data;
  return view;
}

std::string EncodeTfRecord(absl::string_view data) {
  std::string out;
  out.reserve(kHeaderBytes + data.size() + kFooterBytes);
  AppendLittleEndian(data.size(), 8, &out);
  AppendLittleEndian(MaskCrc32c(Crc32c(out)), 4, &out);
  out.append(data.data(), data.size());
  AppendLittleEndian(MaskCrc32c(Crc32c(data)), 4, &out);
  return out;
}

}  // namespace dlab
