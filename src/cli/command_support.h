// What the `dlab` subcommands share: the context they run in (the client, where output goes, how
// to ask a person), printing a reply as text or JSON, and fetching a list the server pages.
// Not thread-safe: one command at a time per context.
#pragma once

#include <functional>
#include <ostream>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "cli/http_client.h"
#include "cli/prompter.h"
#include "nlohmann/json.hpp"

namespace dlab {

struct CommandContext {
  HttpClient* client = nullptr;
  std::ostream* out = nullptr;   // results: ids, tables, JSON, log lines
  Prompter* prompter = nullptr;  // for commands that ask for a user name or password
};

enum class OutputFormat { kText, kJson };

// The options of a command that takes nothing but --json.
struct FormatOptions {
  OutputFormat format = OutputFormat::kText;
};

void PrintJson(std::ostream& out, const nlohmann::json& value);

// Prints a reply as JSON, or for people as `to_text` renders it; a failed reply's status.
absl::Status PrintReply(const CommandContext& ctx, OutputFormat format,
                        const absl::StatusOr<nlohmann::json>& reply,
                        const std::function<std::string(const nlohmann::json&)>& to_text);

// A paged list: GET path with `query` plus limit and cursor, page after page, until `limit`
// items of the reply's `key` array or the last page (no next_cursor). The items as an array.
absl::StatusOr<nlohmann::json> ListPaged(const CommandContext& ctx, const std::string& path,
                                         const char* key, const NameValues& query, int limit,
                                         int max_page_size);

}  // namespace dlab
