// The web console: the static files that `web/` builds (index.html, assets/...), served by dlabd
// at `/`. They are read into memory at start (a few hundred KiB) and sent gzip-compressed to
// clients that accept it. Every page of the console works from the REST API alone.
#pragma once

#include <string>

#include "api/http_server.h"

namespace dlab {

// Registers GET / (index.html), the top-level files of dir (favicon.svg, ...) and
// GET /assets/{file}. When dir has no index.html, GET / answers 503 with a page that says how
// to build the console; the API is unaffected. Returns how many files it serves.
int RegisterConsoleRoutes(const std::string& dir, Router* router);

}  // namespace dlab
