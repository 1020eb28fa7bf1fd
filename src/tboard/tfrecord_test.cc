#include "tboard/tfrecord.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <string>

#include "tboard/crc32c.h"

namespace dlab {
namespace {

using ::testing::HasSubstr;

TEST(Crc32cTest, KnownVectors) {
  EXPECT_EQ(Crc32c("123456789"), 0xe3069283u);
  EXPECT_EQ(Crc32c(std::string(32, '\0')), 0x8a9136aau);    // RFC 3720, B.4
  EXPECT_EQ(Crc32c(std::string(32, '\xff')), 0x62a8ab43u);  // ditto
  EXPECT_EQ(Crc32c(""), 0u);
  std::string ascending;
  for (int i = 0; i < 32; ++i) ascending.push_back(static_cast<char>(i));
  EXPECT_EQ(Crc32c(ascending), 0x46dd794eu);
}

TEST(TfRecordTest, EncodeThenParseRoundTrip) {
  const std::string data = "an event";
  const std::string bytes = EncodeTfRecord(data) + EncodeTfRecord("");
  TfRecordView first = ParseTfRecord(bytes);
  ASSERT_EQ(first.status, TfRecordStatus::kOk) << first.error;
  EXPECT_EQ(first.data, data);
  EXPECT_EQ(first.size, 12 + data.size() + 4);
  TfRecordView second = ParseTfRecord(absl::string_view(bytes).substr(first.size));
  ASSERT_EQ(second.status, TfRecordStatus::kOk);
  EXPECT_EQ(second.data, "");
  EXPECT_EQ(second.size, 16u);
}

TEST(TfRecordTest, KnownFraming) {
  // Masked CRCs of an empty record, as TensorFlow's record writer produces them.
  const std::string bytes = EncodeTfRecord("");
  ASSERT_EQ(bytes.size(), 16u);
  EXPECT_EQ(bytes.substr(0, 8), std::string(8, '\0'));
  EXPECT_EQ(MaskCrc32c(Crc32c(std::string(8, '\0'))),
            static_cast<uint32_t>(static_cast<unsigned char>(bytes[8])) |
                static_cast<uint32_t>(static_cast<unsigned char>(bytes[9])) << 8 |
                static_cast<uint32_t>(static_cast<unsigned char>(bytes[10])) << 16 |
                static_cast<uint32_t>(static_cast<unsigned char>(bytes[11])) << 24);
  EXPECT_EQ(MaskCrc32c(0), 0xa282ead8u);
  EXPECT_EQ(MaskCrc32c(0x12345678), ((0x12345678u >> 15) | (0x12345678u << 17)) + 0xa282ead8u);
}

TEST(TfRecordTest, EveryPrefixIsIncompleteAndSaysHowMuchItNeeds) {
  const std::string bytes = EncodeTfRecord("0123456789");
  for (size_t n = 0; n < bytes.size(); ++n) {
    TfRecordView view = ParseTfRecord(absl::string_view(bytes).substr(0, n));
    ASSERT_EQ(view.status, TfRecordStatus::kIncomplete) << n;
    EXPECT_EQ(view.size, n < 12 ? 12u : bytes.size()) << n;
  }
}

TEST(TfRecordTest, ChecksumMismatchesAreCorrupt) {
  std::string bad_data = EncodeTfRecord("payload");
  bad_data[14] ^= 1;
  TfRecordView view = ParseTfRecord(bad_data);
  EXPECT_EQ(view.status, TfRecordStatus::kCorrupt);
  EXPECT_THAT(view.error, HasSubstr("data checksum"));

  std::string bad_length = EncodeTfRecord("payload");
  bad_length[0] ^= 1;
  view = ParseTfRecord(bad_length);
  EXPECT_EQ(view.status, TfRecordStatus::kCorrupt);
  EXPECT_THAT(view.error, HasSubstr("length checksum"));
}

}  // namespace
}  // namespace dlab
