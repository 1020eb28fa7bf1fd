// gzip (RFC 1952) for HTTP bodies: whole bodies (the console's static files) and streams
// (Server-Sent Events), where each chunk is flushed so that the client can decode it at once.
#pragma once

#include <memory>
#include <string>
#include <string_view>

#include "api/http_server.h"

namespace dlab {

// The whole of data, compressed at the best level; empty on failure.
std::string Gzip(std::string_view data);

// Whether the request's Accept-Encoding names gzip.
bool AcceptsGzip(const HttpRequest& req);

// When the client accepts gzip, makes response->stream send its chunks compressed (each one
// flushed with Z_SYNC_FLUSH) and sets Content-Encoding and Vary. Otherwise leaves it as it is.
void GzipStreamIfAccepted(const HttpRequest& req, HttpResponse* response);

}  // namespace dlab
