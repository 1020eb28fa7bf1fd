#include "cli/command_support.h"

#include <algorithm>

#include "absl/strings/str_cat.h"

namespace dlab {

using nlohmann::json;

void PrintJson(std::ostream& out, const json& value) {
  out << value.dump(2, ' ', false, json::error_handler_t::replace) << "\n";
}

absl::Status PrintReply(const CommandContext& ctx, OutputFormat format,
                        const absl::StatusOr<json>& reply,
                        const std::function<std::string(const json&)>& to_text) {
  if (!reply.ok()) return reply.status();
  if (format == OutputFormat::kJson) {
    PrintJson(*ctx.out, *reply);
  } else {
    *ctx.out << to_text(*reply);
  }
  return absl::OkStatus();
}

absl::StatusOr<json> ListPaged(const CommandContext& ctx, const std::string& path, const char* key,
                               const NameValues& query, int limit, int max_page_size) {
  json items = json::array();
  std::string cursor;
  while (static_cast<int>(items.size()) < limit) {
    int page_size = std::min(limit - static_cast<int>(items.size()), max_page_size);
    NameValues page_query = {{"limit", absl::StrCat(page_size)}};
    page_query.insert(page_query.end(), query.begin(), query.end());
    if (!cursor.empty()) page_query.emplace_back("cursor", cursor);
    auto page = ctx.client->GetJson(path, std::move(page_query));
    if (!page.ok()) return page.status();
    const json& page_items = page->value(key, json::array());
    for (const json& item : page_items) {
      if (static_cast<int>(items.size()) < limit) items.push_back(item);
    }
    json next = page->value("next_cursor", json());
    if (page_items.empty() || !next.is_string() || next.get<std::string>().empty()) break;
    cursor = next.get<std::string>();
  }
  return items;
}

}  // namespace dlab
