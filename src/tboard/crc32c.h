// CRC-32C (Castagnoli), in software, and the masking that TFRecord files apply to it.
// Pure functions; thread-safe.
#pragma once

#include <cstdint>

#include "absl/strings/string_view.h"

namespace dlab {

// The CRC-32C of data; Crc32c("123456789") is 0xe3069283.
uint32_t Crc32c(absl::string_view data);

// TFRecord's masked CRC: rotated right by 15 bits plus a constant, so that a CRC stored inside
// CRC-checked data does not weaken the check.
uint32_t MaskCrc32c(uint32_t crc);

}  // namespace dlab
