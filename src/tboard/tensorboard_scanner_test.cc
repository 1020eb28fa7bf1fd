#include "tboard/tensorboard_scanner.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>
#include <spdlog/sinks/ostream_sink.h>
#include <spdlog/spdlog.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "absl/strings/str_cat.h"
#include "common/testing/temp_dir.h"
#include "tboard/event.pb.h"
#include "tboard/testing/event_files.h"
#include "tboard/tfrecord.h"

namespace dlab {

void PrintTo(const ScalarEvent& e, std::ostream* os) {
  *os << "{" << e.tag << ", step " << e.step << ", wall_time " << e.wall_time << ", value "
      << e.value << "}";
}

namespace {

namespace fs = std::filesystem;
using ::testing::ElementsAre;
using ::testing::HasSubstr;
using ::testing::IsEmpty;

MATCHER_P4(Scalar, tag, step, wall_time, value, "") {
  return arg.tag == tag && arg.step == step && arg.wall_time == wall_time && arg.value == value;
}

using testing::AppendToFile;
using testing::VersionRecord;

std::string ScalarRecord(const std::string& tag, int64_t step, double wall_time, float value) {
  return testing::ScalarsRecord(step, wall_time, {{tag, value}});
}

class TensorBoardScannerTest : public ::testing::Test {
 protected:
  fs::path Dir() const { return temp_.path() / "tensorboard"; }
  testing::TempDir temp_;
};

TEST_F(TensorBoardScannerTest, ReadsScalarsOfEventFilesAtAnyDepthIncrementally) {
  const fs::path first = Dir() / "events.out.tfevents.1700000000.host.1.0";
  const fs::path nested = Dir() / "run/eval/events.out.tfevents.1700000001.host.1.1";
  AppendToFile(first, VersionRecord() + ScalarRecord("loss", 1, 10.5, 0.5) +
                          ScalarRecord("loss", 2, 11.5, 0.25));
  AppendToFile(nested, VersionRecord() + ScalarRecord("eval/accuracy", 2, 12.0, 0.75));
  AppendToFile(Dir() / "notes.txt", ScalarRecord("ignored", 1, 1, 1));

  TensorBoardScanner scanner(Dir().string());
  EXPECT_THAT(scanner.Poll(),
              ElementsAre(Scalar("loss", 1, 10.5, 0.5), Scalar("loss", 2, 11.5, 0.25),
                          Scalar("eval/accuracy", 2, 12.0, 0.75)));
  EXPECT_THAT(scanner.Poll(), IsEmpty());

  AppendToFile(first, ScalarRecord("loss", 3, 13.0, 0.125));
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("loss", 3, 13.0, 0.125)));
  EXPECT_THAT(scanner.Poll(), IsEmpty());
}

TEST_F(TensorBoardScannerTest, MissingDirectoryYieldsNothingUntilItAppears) {
  TensorBoardScanner scanner(Dir().string());
  EXPECT_THAT(scanner.Poll(), IsEmpty());
  AppendToFile(Dir() / "x.tfevents.y", ScalarRecord("loss", 7, 1, 2));
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("loss", 7, 1, 2)));
}

TEST_F(TensorBoardScannerTest, PartialRecordIsReadOnceItIsComplete) {
  const fs::path file = Dir() / "events.out.tfevents.1";
  const std::string record = ScalarRecord("loss", 5, 20, 1.5);
  AppendToFile(file, VersionRecord());
  TensorBoardScanner scanner(Dir().string());
  EXPECT_THAT(scanner.Poll(), IsEmpty());
  // A writer mid-write: the record appears a byte at a time.
  for (size_t i = 0; i + 1 < record.size(); ++i) {
    AppendToFile(file, record.substr(i, 1));
    ASSERT_THAT(scanner.Poll(), IsEmpty()) << "after " << i + 1 << " bytes";
  }
  AppendToFile(file, record.substr(record.size() - 1));
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("loss", 5, 20, 1.5)));
  EXPECT_THAT(scanner.Poll(), IsEmpty());
}

TEST_F(TensorBoardScannerTest, ChecksumMismatchIsLoggedAndTheRestOfTheFileSkipped) {
  std::ostringstream log;
  auto previous = spdlog::default_logger();
  spdlog::set_default_logger(std::make_shared<spdlog::logger>(
      "test", std::make_shared<spdlog::sinks::ostream_sink_st>(log)));

  const fs::path bad = Dir() / "a.tfevents";
  const fs::path good = Dir() / "b.tfevents";
  std::string corrupt = ScalarRecord("loss", 2, 2, 2);
  corrupt[corrupt.size() - 6] ^= 0x40;  // a data byte: the data checksum no longer matches
  AppendToFile(bad, ScalarRecord("loss", 1, 1, 1) + corrupt + ScalarRecord("loss", 3, 3, 3));
  AppendToFile(good, ScalarRecord("acc", 1, 1, 0.5));
  TensorBoardScanner scanner(Dir().string());
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("loss", 1, 1, 1), Scalar("acc", 1, 1, 0.5)));
  EXPECT_THAT(log.str(), HasSubstr("data checksum mismatch"));
  EXPECT_THAT(log.str(), HasSubstr(bad.string()));

  // The broken file is not read again, even when it grows; the others go on.
  AppendToFile(bad, ScalarRecord("loss", 4, 4, 4));
  AppendToFile(good, ScalarRecord("acc", 2, 2, 0.75));
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("acc", 2, 2, 0.75)));
  spdlog::set_default_logger(previous);
}

TEST_F(TensorBoardScannerTest, Tf2TensorScalarsOfTheScalarsPlugin) {
  tfevent::Event event;
  event.set_wall_time(30);
  event.set_step(9);
  // The first value of a tag carries the metadata; later ones do not.
  tfevent::Summary::Value* loss = event.mutable_summary()->add_value();
  loss->set_tag("loss");
  loss->mutable_metadata()->mutable_plugin_data()->set_plugin_name("scalars");
  loss->mutable_tensor()->set_dtype(1);  // DT_FLOAT
  const float content = 0.375f;
  loss->mutable_tensor()->set_tensor_content(
      std::string(reinterpret_cast<const char*>(&content), 4));
  tfevent::Summary::Value* lr = event.mutable_summary()->add_value();
  lr->set_tag("lr");
  lr->mutable_metadata()->set_data_class(1);  // DATA_CLASS_SCALAR
  lr->mutable_tensor()->set_dtype(2);         // DT_DOUBLE
  lr->mutable_tensor()->add_double_val(1e-4);
  tfevent::Summary::Value* text = event.mutable_summary()->add_value();
  text->set_tag("notes");
  text->mutable_metadata()->mutable_plugin_data()->set_plugin_name("text");
  text->mutable_tensor()->set_dtype(1);
  text->mutable_tensor()->add_float_val(1);

  tfevent::Event later;
  later.set_wall_time(31);
  later.set_step(10);
  tfevent::Summary::Value* loss2 = later.mutable_summary()->add_value();
  loss2->set_tag("loss");
  loss2->mutable_tensor()->set_dtype(1);
  loss2->mutable_tensor()->add_float_val(0.25f);
  tfevent::Summary::Value* text2 = later.mutable_summary()->add_value();
  text2->set_tag("notes");
  text2->mutable_tensor()->set_dtype(1);
  text2->mutable_tensor()->add_float_val(2);

  AppendToFile(Dir() / "events.out.tfevents.2", VersionRecord() +
                                                    EncodeTfRecord(event.SerializeAsString()) +
                                                    EncodeTfRecord(later.SerializeAsString()));
  TensorBoardScanner scanner(Dir().string());
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("loss", 9, 30, 0.375), Scalar("lr", 9, 30, 1e-4),
                                          Scalar("loss", 10, 31, 0.25)));
}

TEST_F(TensorBoardScannerTest, RecordThatIsNotAnEventIsSkipped) {
  AppendToFile(Dir() / "events.out.tfevents.3",
               EncodeTfRecord("\xff\xff\xff") + ScalarRecord("loss", 1, 1, 1));
  TensorBoardScanner scanner(Dir().string());
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("loss", 1, 1, 1)));
}

// tests/e2e/tboard_writer.py (used by the end-to-end tests) writes files this scanner reads.
TEST_F(TensorBoardScannerTest, FilesOfThePythonWriterAreRead) {
  if (!fs::exists("/usr/bin/python3")) GTEST_SKIP() << "no /usr/bin/python3";
  const std::string command = absl::StrCat(
      "/usr/bin/python3 ", DLAB_SOURCE_DIR, "/tests/e2e/tboard_writer.py ", Dir().string(),
      " loss=0.5@1 loss=0.25@2 accuracy=0.75@2 big=1e6@4294967296", " >/dev/null");
  ASSERT_EQ(std::system(command.c_str()), 0) << command;
  TensorBoardScanner scanner(Dir().string());
  EXPECT_THAT(scanner.Poll(), ElementsAre(Scalar("loss", 1, 1700000001.0, 0.5),
                                          Scalar("loss", 2, 1700000002.0, 0.25),
                                          Scalar("accuracy", 2, 1700000002.0, 0.75),
                                          Scalar("big", 4294967296, 5994967296.0, 1e6)));
}

}  // namespace
}  // namespace dlab
