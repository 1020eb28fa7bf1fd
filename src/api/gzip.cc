#include "api/gzip.h"

#include <zlib.h>

#include "absl/strings/match.h"

namespace dlab {
namespace {

// Appends what deflate produces for the input with `flush` to out.
bool Deflate(z_stream* z, std::string_view in, int flush, std::string* out) {
  z->next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  z->avail_in = static_cast<uInt>(in.size());
  char buf[16384];
  do {
    z->next_out = reinterpret_cast<Bytef*>(buf);
    z->avail_out = sizeof buf;
    int rc = deflate(z, flush);
    if (rc == Z_STREAM_ERROR) return false;
    out->append(buf, sizeof buf - z->avail_out);
  } while (z->avail_out == 0);
  return true;
}

class GzipStreamSource final : public StreamSource {
 public:
  explicit GzipStreamSource(std::shared_ptr<StreamSource> inner) : inner_(std::move(inner)) {
    ok_ = deflateInit2(&z_, 6, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY) == Z_OK;
  }
  ~GzipStreamSource() override {
    if (ok_) deflateEnd(&z_);
  }

  StreamChunk Next() override {
    StreamChunk chunk = inner_->Next();
    if (!ok_ || (chunk.data.empty() && !chunk.done)) return chunk;
    std::string out;
    if (!Deflate(&z_, chunk.data, chunk.done ? Z_FINISH : Z_SYNC_FLUSH, &out)) {
      return {.data = "", .done = true};  // cannot go on without a valid gzip stream
    }
    return {.data = std::move(out), .done = chunk.done};
  }

 private:
  std::shared_ptr<StreamSource> inner_;
  z_stream z_{};
  bool ok_ = false;
};

}  // namespace

std::string Gzip(std::string_view data) {
  z_stream z{};
  if (deflateInit2(&z, Z_BEST_COMPRESSION, Z_DEFLATED, 15 + 16, 9, Z_DEFAULT_STRATEGY) != Z_OK) {
    return {};
  }
  std::string out;
  bool ok = Deflate(&z, data, Z_FINISH, &out);
  deflateEnd(&z);
  return ok ? out : std::string();
}

bool AcceptsGzip(const HttpRequest& req) {
  auto accept = req.Header("accept-encoding");
  return accept && absl::StrContains(*accept, "gzip");
}

void GzipStreamIfAccepted(const HttpRequest& req, HttpResponse* response) {
  if (!response->stream || !AcceptsGzip(req)) return;
  response->stream = std::make_shared<GzipStreamSource>(std::move(response->stream));
  response->headers.push_back({"Content-Encoding", "gzip"});
  response->headers.push_back({"Vary", "Accept-Encoding"});
}

}  // namespace dlab
