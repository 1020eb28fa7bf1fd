// TFRecord framing, the container of TensorBoard event files. Each record is
//   uint64 length | uint32 masked CRC-32C of the 8 length bytes | data | uint32 masked CRC-32C
//   of the data
// with integers little-endian. Pure functions; thread-safe.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>

#include "absl/strings/string_view.h"

namespace dlab {

// Records longer than this are taken as corruption (TensorBoard's own are far smaller).
inline constexpr uint64_t kMaxTfRecordBytes = uint64_t{256} << 20;

enum class TfRecordStatus {
  kOk,          // a whole record: data and size are set
  kIncomplete,  // buffer ends inside the record (a writer may be mid-write); size is set
  kCorrupt,     // a checksum does not match, or the length is absurd; error is set
};

struct TfRecordView {
  TfRecordStatus status = TfRecordStatus::kIncomplete;
  absl::string_view data;  // kOk: the record's data, pointing into the buffer
  // kOk: bytes the record takes (framing included); kIncomplete: bytes the buffer needs to hold
  // to go on (the whole record once its length is known, else the 12-byte header).
  size_t size = 0;
  std::string error;  // kCorrupt: what is wrong
};

// Parses the record at the start of buffer.
TfRecordView ParseTfRecord(absl::string_view buffer);

// The framed bytes of one record holding data.
std::string EncodeTfRecord(absl::string_view data);

}  // namespace dlab
