// Plain-text tables and the JSON-to-text helpers the CLI's formatters share: columns aligned by
// display width (UTF-8 aware), scalars as text with "-" for missing values. Pure functions,
// thread-safe.
#pragma once

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

#include "nlohmann/json.hpp"

namespace dlab::table {

// object[key], or null when object is not an object or lacks the key.
const nlohmann::json& Field(const nlohmann::json& object, const char* key);

// A scalar as text: strings as they are, null or absent as "-", anything else as JSON.
std::string Text(const nlohmann::json& value);
std::string Text(const nlohmann::json& object, const char* key);

// How many characters (not bytes) s is wide.
size_t DisplayWidth(std::string_view s);

// At most `width` characters, ending in "..." when cut; never splits a UTF-8 sequence.
std::string Truncate(std::string s, size_t width);

// s with its newlines as spaces.
std::string OneLine(std::string s);

// Left-aligned columns separated by two spaces, each line after `indent`; the first row is the
// header.
std::string RenderTable(const std::vector<std::vector<std::string>>& rows,
                        std::string_view indent = "");

}  // namespace dlab::table
