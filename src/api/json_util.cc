#include "api/json_util.h"

#include <charconv>

#include "absl/strings/str_cat.h"
#include "nlohmann/json.hpp"

namespace dlab {

HttpResponse JsonResponse(int status, const nlohmann::json& body) {
  return HttpResponse{.status = status,
                      .body = body.dump(-1, ' ', false, nlohmann::json::error_handler_t::replace)};
}

absl::StatusOr<int64_t> JobIdParam(const HttpRequest& req) {
  const std::string& text = req.path_params.at("id");
  int64_t id = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), id);
  if (ec != std::errc() || ptr != text.data() + text.size() || id <= 0) {
    return absl::NotFoundError(
        absl::StrCat("job '", text, "' not found (ids are positive integers)"));
  }
  return id;
}

std::string FormatRfc3339(absl::Time t) {
  return absl::FormatTime("%Y-%m-%dT%H:%M:%E3SZ", t, absl::UTCTimeZone());
}

absl::StatusOr<int64_t> IntQuery(const HttpRequest& req, absl::string_view key, int64_t dflt,
                                 int64_t min, int64_t max) {
  auto v = req.Query(std::string_view(key.data(), key.size()));
  if (!v) return dflt;
  int64_t n = 0;
  auto [ptr, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
  if (ec != std::errc() || ptr != v->data() + v->size() || n < min || n > max) {
    return absl::InvalidArgumentError(
        absl::StrCat(key, ": must be an integer between ", min, " and ", max, ", got '", *v, "'"));
  }
  return n;
}

}  // namespace dlab
