#include "cli/sse_parser.h"

#include <gtest/gtest.h>

#include <string>
#include <vector>

namespace dlab {
namespace {

constexpr char kStream[] =
    ": keep-alive\n"
    "data: epoch 1 loss=0.52\n\n"
    "data: \n\n"
    "data:no space\r\n\r\n"
    "data: first\ndata: second\n\n"
    "id: 7\revent: ignored-without-data\r\r"
    "data:  two leading spaces\r\rdata: ü unicode ✓\n\n"
    "event: end\n"
    "data: {\"state\": \"FAILED\", \"exit_code\": 3}\n\n";

std::vector<SseEvent> Expected() {
  return {
      {"message", "epoch 1 loss=0.52", ""},
      {"message", "", ""},
      {"message", "no space", ""},
      {"message", "first\nsecond", ""},
      {"message", " two leading spaces", "7"},
      {"message", "ü unicode ✓", "7"},
      {"end", "{\"state\": \"FAILED\", \"exit_code\": 3}", "7"},
  };
}

void ExpectSame(const std::vector<SseEvent>& got, const std::vector<SseEvent>& want) {
  ASSERT_EQ(got.size(), want.size());
  for (size_t i = 0; i < got.size(); ++i) {
    EXPECT_EQ(got[i].event, want[i].event) << "event " << i;
    EXPECT_EQ(got[i].data, want[i].data) << "event " << i;
    EXPECT_EQ(got[i].id, want[i].id) << "event " << i;
  }
}

std::vector<SseEvent> FeedInPieces(const std::string& stream, const std::vector<size_t>& cuts) {
  SseParser parser;
  std::vector<SseEvent> events;
  size_t start = 0;
  for (size_t cut : cuts) {
    for (SseEvent& e : parser.Feed(std::string_view(stream).substr(start, cut - start))) {
      events.push_back(std::move(e));
    }
    start = cut;
  }
  for (SseEvent& e : parser.Feed(std::string_view(stream).substr(start))) {
    events.push_back(std::move(e));
  }
  return events;
}

TEST(SseParserTest, WholeStreamAtOnce) { ExpectSame(FeedInPieces(kStream, {}), Expected()); }

TEST(SseParserTest, OneByteAtATime) {
  std::string stream = kStream;
  std::vector<size_t> cuts;
  for (size_t i = 1; i < stream.size(); ++i) cuts.push_back(i);
  ExpectSame(FeedInPieces(stream, cuts), Expected());
}

TEST(SseParserTest, EverySplitIntoTwoOrThreeChunks) {
  std::string stream = kStream;
  for (size_t a = 0; a <= stream.size(); ++a) {
    ExpectSame(FeedInPieces(stream, {a}), Expected());
    for (size_t b = a; b <= stream.size(); b += 7) {
      ExpectSame(FeedInPieces(stream, {a, b}), Expected());
    }
  }
}

TEST(SseParserTest, IncompleteEventIsHeldUntilItsBlankLine) {
  SseParser parser;
  EXPECT_TRUE(parser.Feed("data: partial").empty());
  EXPECT_TRUE(parser.Feed(" line\n").empty());
  std::vector<SseEvent> events = parser.Feed("\n");
  ASSERT_EQ(events.size(), 1u);
  EXPECT_EQ(events[0].data, "partial line");
}

TEST(SseParserTest, CarriageReturnAtChunkEndIsOneLineBreakWithFollowingNewline) {
  SseParser parser;
  EXPECT_TRUE(parser.Feed("data: a\r").empty());
  // "\n" completes the "\r\n" pair, so only the next "\r\n" is the blank line.
  EXPECT_TRUE(parser.Feed("\n").empty());
  EXPECT_EQ(parser.Feed("\r\n").size(), 1u);
}

}  // namespace
}  // namespace dlab
