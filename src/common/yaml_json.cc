#include "common/yaml_json.h"

#include <charconv>
#include <string>

#include "absl/strings/str_format.h"
#include "nlohmann/json.hpp"
#include "yaml-cpp/yaml.h"

namespace dlab {
namespace {

nlohmann::json ScalarToJson(const YAML::Node& node) {
  const std::string& s = node.Scalar();
  if (node.Tag() == "!") return s;  // quoted: always a string
  if (s == "null" || s == "~" || s.empty()) return nullptr;
  if (s == "true" || s == "True" || s == "TRUE") return true;
  if (s == "false" || s == "False" || s == "FALSE") return false;
  int64_t i = 0;
  auto [iend, iec] = std::from_chars(s.data(), s.data() + s.size(), i);
  if (iec == std::errc() && iend == s.data() + s.size()) return i;
  double d = 0;
  auto [dend, dec] = std::from_chars(s.data(), s.data() + s.size(), d);
  if (dec == std::errc() && dend == s.data() + s.size()) return d;
  return s;
}

// Aliases share nodes, so a short document can expand without end: `&a [*a]` refers to itself,
// and nested aliases grow exponentially ("billion laughs"). Real documents stay far inside these.
constexpr int kMaxDepth = 100;
constexpr int kMaxValues = 100000;

nlohmann::json NodeToJson(const YAML::Node& node, int depth, int* values) {
  if (depth > kMaxDepth || ++*values > kMaxValues) {
    throw YAML::ParserException(node.Mark(), "nested too deeply, or aliases expand too far");
  }
  switch (node.Type()) {
    case YAML::NodeType::Null:
    case YAML::NodeType::Undefined:
      return nullptr;
    case YAML::NodeType::Scalar:
      return ScalarToJson(node);
    case YAML::NodeType::Sequence: {
      nlohmann::json arr = nlohmann::json::array();
      for (const auto& item : node) arr.push_back(NodeToJson(item, depth + 1, values));
      return arr;
    }
    case YAML::NodeType::Map: {
      nlohmann::json obj = nlohmann::json::object();
      for (const auto& kv : node) {
        obj[kv.first.as<std::string>()] = NodeToJson(kv.second, depth + 1, values);
      }
      return obj;
    }
  }
  return nullptr;
}

}  // namespace

absl::StatusOr<nlohmann::json> ParseYamlOrJson(absl::string_view text) {
  try {
    YAML::Node root = YAML::Load(std::string(text));
    int values = 0;
    return NodeToJson(root, 0, &values);
  } catch (const YAML::Exception& e) {
    return absl::InvalidArgumentError(
        absl::StrFormat("cannot parse YAML/JSON at line %d, column %d: %s", e.mark.line + 1,
                        e.mark.column + 1, e.msg));
  }
}

}  // namespace dlab
