#include "api/gzip.h"

#include <zlib.h>

#include <deque>
#include <string>

#include "gtest/gtest.h"

namespace dlab {
namespace {

// Inflates a gzip stream fed piece by piece, as a browser does.
class Gunzipper {
 public:
  Gunzipper() { EXPECT_EQ(inflateInit2(&z_, 15 + 16), Z_OK); }
  ~Gunzipper() { inflateEnd(&z_); }
  // What the piece decodes to; `ended` becomes true at the end of the gzip stream.
  std::string Feed(const std::string& piece) {
    std::string out;
    z_.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(piece.data()));
    z_.avail_in = static_cast<uInt>(piece.size());
    char buf[4096];
    while (z_.avail_in > 0 || !ended) {
      z_.next_out = reinterpret_cast<Bytef*>(buf);
      z_.avail_out = sizeof buf;
      int rc = inflate(&z_, Z_SYNC_FLUSH);
      out.append(buf, sizeof buf - z_.avail_out);
      if (rc == Z_STREAM_END) ended = true;
      if (rc == Z_BUF_ERROR || rc == Z_STREAM_END || (rc == Z_OK && z_.avail_out > 0)) break;
      EXPECT_EQ(rc, Z_OK);
      if (rc != Z_OK) break;
    }
    return out;
  }
  bool ended = false;

 private:
  z_stream z_{};
};

class ScriptedStream : public StreamSource {
 public:
  explicit ScriptedStream(std::deque<StreamChunk> chunks) : chunks_(std::move(chunks)) {}
  StreamChunk Next() override {
    StreamChunk c = chunks_.front();
    chunks_.pop_front();
    return c;
  }

 private:
  std::deque<StreamChunk> chunks_;
};

TEST(GzipTest, WholeBodyRoundTrips) {
  std::string text;
  for (int i = 0; i < 1000; ++i) text += "data: {\"id\": " + std::to_string(i) + "}\n\n";
  std::string zipped = Gzip(text);
  ASSERT_FALSE(zipped.empty());
  EXPECT_LT(zipped.size(), text.size() / 5);
  Gunzipper g;
  EXPECT_EQ(g.Feed(zipped), text);
  EXPECT_TRUE(g.ended);
}

TEST(GzipTest, AStreamIsCompressedOnlyForClientsThatAcceptGzip) {
  HttpRequest plain;
  HttpResponse r{.stream = std::make_shared<ScriptedStream>(std::deque<StreamChunk>{{"a", true}})};
  GzipStreamIfAccepted(plain, &r);
  EXPECT_TRUE(r.headers.empty());
  EXPECT_EQ(r.stream->Next().data, "a");

  HttpRequest gzip;
  gzip.headers["accept-encoding"] = "gzip, deflate";
  HttpResponse no_stream{.body = "x"};
  GzipStreamIfAccepted(gzip, &no_stream);  // whole bodies are not this function's business
  EXPECT_TRUE(no_stream.headers.empty());
}

TEST(GzipTest, EachStreamChunkDecodesOnArrivalAndTheLastEndsTheGzipStream) {
  HttpRequest req;
  req.headers["accept-encoding"] = "gzip";
  HttpResponse r{.stream = std::make_shared<ScriptedStream>(
                     std::deque<StreamChunk>{{"event: jobs\ndata: {\"jobs\": []}\n\n", false},
                                             {"", false},  // nothing new this poll: nothing sent
                                             {": keepalive\n\n", false},
                                             {"event: end\ndata: {}\n\n", true}})};
  GzipStreamIfAccepted(req, &r);
  ASSERT_EQ(r.headers.size(), 2u);
  EXPECT_EQ(r.headers[0], (std::pair<std::string, std::string>{"Content-Encoding", "gzip"}));
  Gunzipper g;
  StreamChunk c = r.stream->Next();
  EXPECT_EQ(g.Feed(c.data), "event: jobs\ndata: {\"jobs\": []}\n\n");  // not held back
  c = r.stream->Next();
  EXPECT_TRUE(c.data.empty());
  EXPECT_FALSE(c.done);
  EXPECT_EQ(g.Feed(r.stream->Next().data), ": keepalive\n\n");
  c = r.stream->Next();
  EXPECT_TRUE(c.done);
  EXPECT_EQ(g.Feed(c.data), "event: end\ndata: {}\n\n");
  EXPECT_TRUE(g.ended);
}

}  // namespace
}  // namespace dlab
