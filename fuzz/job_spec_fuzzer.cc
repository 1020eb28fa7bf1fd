// libFuzzer target for the job spec (src/common/job_spec.h): YAML or JSON text through
// ParseYamlOrJson and ParseJobSpec, as POST /api/v1/jobs takes it. Besides the sanitizers, it
// checks the promise of JobSpecToJson: every spec that parses normalizes to JSON that parses
// back to the same spec.
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <string>

#include "absl/strings/str_cat.h"
#include "absl/strings/string_view.h"
#include "common/job_spec.h"
#include "common/yaml_json.h"
#include "nlohmann/json.hpp"

namespace dlab {
namespace {

using nlohmann::json;

[[noreturn]] void Fail(absl::string_view what, const json& normalized) {
  std::fprintf(stderr, "job_spec_fuzzer: %.*s\nnormalized spec: %s\n",
               static_cast<int>(what.size()), what.data(),
               normalized.dump(-1, ' ', false, json::error_handler_t::replace).c_str());
  std::abort();
}

void FuzzOne(absl::string_view text) {
  auto doc = ParseYamlOrJson(text);
  if (!doc.ok()) return;
  auto spec = ParseJobSpec(*doc);
  if (!spec.ok()) return;
  json normalized = JobSpecToJson(*spec);
  auto again = ParseJobSpec(normalized);
  if (!again.ok()) {
    Fail(absl::StrCat("the normalized spec does not parse: ", again.status().message()),
         normalized);
  }
  if (JobSpecToJson(*again) != normalized || again->resources != spec->resources ||
      again->task_groups != spec->task_groups) {
    Fail("the normalized spec parses to a different spec", normalized);
  }
}

}  // namespace
}  // namespace dlab

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  dlab::FuzzOne(absl::string_view(reinterpret_cast<const char*>(data), size));
  return 0;
}
