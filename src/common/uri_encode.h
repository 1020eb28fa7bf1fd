// RFC 3986 percent-encoding: every byte except the unreserved characters A-Z a-z 0-9 - . _ ~
// becomes %XY (upper-case hex). Used for query parameters and for canonical signed requests.
#pragma once

#include <string>

#include "absl/strings/string_view.h"

namespace dlab {

std::string UriEncode(absl::string_view text);

}  // namespace dlab
