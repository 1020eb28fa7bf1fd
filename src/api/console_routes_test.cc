#include "api/console_routes.h"

#include <filesystem>
#include <fstream>
#include <string>

#include "api/gzip.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace dlab {
namespace {

namespace fs = std::filesystem;
using ::testing::HasSubstr;

std::string Header(const HttpResponse& r, const std::string& name) {
  for (const auto& [k, v] : r.headers) {
    if (k == name) return v;
  }
  return "";
}

class ConsoleRoutesTest : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = fs::path(::testing::TempDir()) /
           ::testing::UnitTest::GetInstance()->current_test_info()->name();
    fs::remove_all(dir_);
    fs::create_directories(dir_ / "assets");
  }
  void Write(const fs::path& rel, const std::string& text) {
    std::ofstream(dir_ / rel, std::ios::binary) << text;
  }
  HttpResponse Get(const Router& router, const std::string& path, bool gzip = false) {
    auto match = router.Find("GET", path);
    EXPECT_NE(match.handler, nullptr) << path;
    if (match.handler == nullptr) return {.status = match.error_status};
    HttpRequest req{.method = "GET", .path = path, .path_params = match.path_params};
    if (gzip) req.headers["accept-encoding"] = "gzip, deflate, br";
    return (*match.handler)(req);
  }
  fs::path dir_;
};

TEST_F(ConsoleRoutesTest, ServesIndexAssetsAndTopLevelFiles) {
  std::string js;
  for (int i = 0; i < 200; ++i)
    js += "console.log('dlab console line " + std::to_string(i) + "');\n";
  Write("index.html", "<!doctype html><title>dlab</title><script src=/assets/index-abc.js>");
  Write("assets/index-abc.js", js);
  Write("favicon.svg", "<svg/>");
  Router router;
  EXPECT_EQ(RegisterConsoleRoutes(dir_.string(), &router), 3);

  for (const char* path : {"/", "/index.html"}) {
    HttpResponse index = Get(router, path);
    EXPECT_EQ(index.status, 200);
    EXPECT_EQ(index.content_type, "text/html; charset=utf-8");
    EXPECT_THAT(index.body, HasSubstr("/assets/index-abc.js"));
    EXPECT_EQ(Header(index, "Cache-Control"), "no-cache");  // a new build is seen at once
    EXPECT_THAT(Header(index, "Content-Security-Policy"), HasSubstr("default-src 'self'"));
  }

  HttpResponse asset = Get(router, "/assets/index-abc.js");
  EXPECT_EQ(asset.status, 200);
  EXPECT_EQ(asset.body, js);
  EXPECT_EQ(asset.content_type, "text/javascript; charset=utf-8");
  EXPECT_THAT(Header(asset, "Cache-Control"), HasSubstr("immutable"));
  EXPECT_EQ(Header(asset, "Content-Encoding"), "");

  HttpResponse zipped = Get(router, "/assets/index-abc.js", /*gzip=*/true);
  EXPECT_EQ(Header(zipped, "Content-Encoding"), "gzip");
  EXPECT_LT(zipped.body.size(), js.size() / 4);
  EXPECT_EQ(zipped.body, Gzip(js));  // gzip_test checks that it decodes

  HttpResponse icon = Get(router, "/favicon.svg");
  EXPECT_EQ(icon.body, "<svg/>");
  EXPECT_EQ(icon.content_type, "image/svg+xml");

  HttpResponse missing = Get(router, "/assets/nope.js");
  EXPECT_EQ(missing.status, 404);
  EXPECT_THAT(missing.body, HasSubstr("nope.js"));
}

TEST_F(ConsoleRoutesTest, WithoutABuiltConsoleTheRootSaysHowToBuildIt) {
  Router router;
  EXPECT_EQ(RegisterConsoleRoutes((dir_ / "absent").string(), &router), 0);
  HttpResponse r = Get(router, "/");
  EXPECT_EQ(r.status, 503);
  EXPECT_THAT(r.body, HasSubstr("not built"));
  EXPECT_THAT(r.body, HasSubstr("console.dir"));
  EXPECT_EQ(router.Find("GET", "/assets/x.js").handler, nullptr);
}

}  // namespace
}  // namespace dlab
