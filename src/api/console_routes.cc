#include "api/console_routes.h"

#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <sstream>

#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "api/gzip.h"
#include "spdlog/spdlog.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;

struct StaticFile {
  std::string content_type;
  std::string body;
  std::string gzipped;  // empty when compression does not pay
  std::string cache_control;
};

std::string ContentType(const fs::path& path) {
  static const std::map<std::string, std::string> kTypes = {
      {".html", "text/html; charset=utf-8"},
      {".js", "text/javascript; charset=utf-8"},
      {".css", "text/css; charset=utf-8"},
      {".svg", "image/svg+xml"},
      {".png", "image/png"},
      {".ico", "image/x-icon"},
      {".json", "application/json"},
      {".woff2", "font/woff2"},
      {".map", "application/json"},
      {".txt", "text/plain; charset=utf-8"}};
  auto it = kTypes.find(path.extension().string());
  return it == kTypes.end() ? "application/octet-stream" : it->second;
}

std::shared_ptr<const StaticFile> Load(const fs::path& path, std::string cache_control) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return nullptr;
  std::ostringstream buf;
  buf << in.rdbuf();
  auto file = std::make_shared<StaticFile>();
  file->content_type = ContentType(path);
  file->body = buf.str();
  file->cache_control = std::move(cache_control);
  bool compressible = !absl::StartsWith(file->content_type, "image/png") &&
                      !absl::StartsWith(file->content_type, "font/");
  if (compressible && file->body.size() > 512) {
    std::string z = Gzip(file->body);
    if (!z.empty() && z.size() < file->body.size()) file->gzipped = std::move(z);
  }
  return file;
}

HttpResponse Serve(const StaticFile& file, const HttpRequest& req) {
  HttpResponse r{.status = 200, .content_type = file.content_type};
  r.headers = {{"Cache-Control", file.cache_control},
               {"X-Content-Type-Options", "nosniff"},
               {"Vary", "Accept-Encoding"}};
  if (absl::StartsWith(file.content_type, "text/html")) {
    // The console talks only to this origin; inline styles are uPlot's.
    r.headers.push_back({"Content-Security-Policy",
                         "default-src 'self'; style-src 'self' 'unsafe-inline'; "
                         "img-src 'self' data:; frame-ancestors 'none'"});
    r.headers.push_back({"X-Frame-Options", "DENY"});
  }
  if (!file.gzipped.empty() && AcceptsGzip(req)) {
    r.body = file.gzipped;
    r.headers.push_back({"Content-Encoding", "gzip"});
  } else {
    r.body = file.body;
  }
  return r;
}

HttpResponse NotBuilt(const std::string& dir) {
  return HttpResponse{
      .status = 503,
      .content_type = "text/html; charset=utf-8",
      .body = absl::StrCat(
          "<!doctype html><title>dlab</title><h1>The web console is not built</h1>"
          "<p>dlabd found no <code>index.html</code> in <code>",
          dir,
          "</code>. Build it with <code>make</code> (it needs Node.js and npm; "
          "<code>scripts/install-deps.sh</code> installs them), or point <code>console.dir</code> "
          "in the server config at a built console. The REST API under <code>/api/v1</code> "
          "works without it.</p>")};
}

}  // namespace

int RegisterConsoleRoutes(const std::string& dir, Router* router) {
  const fs::path root(dir);
  auto index = Load(root / "index.html", "no-cache");
  if (!index) {
    spdlog::warn("console: no index.html in {}; GET / says how to build the console", dir);
    router->Add("GET", "/", [dir](const HttpRequest&) { return NotBuilt(dir); });
    return 0;
  }
  int served = 1;
  auto serve_index = [index](const HttpRequest& req) { return Serve(*index, req); };
  router->Add("GET", "/", serve_index);
  router->Add("GET", "/index.html", serve_index);
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator(root, ec)) {
    const std::string name = entry.path().filename().string();
    if (!entry.is_regular_file() || name == "index.html" || name.starts_with(".")) continue;
    if (auto file = Load(entry.path(), "no-cache")) {
      router->Add("GET", absl::StrCat("/", name),
                  [file](const HttpRequest& req) { return Serve(*file, req); });
      ++served;
    }
  }
  // Vite names assets by their content hash: a name never changes meaning, so cache for a year.
  auto assets = std::make_shared<std::map<std::string, std::shared_ptr<const StaticFile>>>();
  for (const auto& entry : fs::directory_iterator(root / "assets", ec)) {
    if (!entry.is_regular_file()) continue;
    if (auto file = Load(entry.path(), "public, max-age=31536000, immutable")) {
      (*assets)[entry.path().filename().string()] = file;
      ++served;
    }
  }
  router->Add("GET", "/assets/{file}", [assets](const HttpRequest& req) {
    auto it = assets->find(req.path_params.at("file"));
    if (it == assets->end()) {
      return ErrorResponse(404, "NOT_FOUND",
                           absl::StrCat("no console asset ", req.path_params.at("file")));
    }
    return Serve(*it->second, req);
  });
  spdlog::info("console: serving {} files from {}", served, dir);
  return served;
}

}  // namespace dlab
