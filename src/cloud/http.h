// HTTP over libcurl: one reused connection cache per thread, timeouts, and errors sorted into
// retryable (kUnavailable: 429, 5xx, resets, timeouts, truncated bodies) and final ones.
#pragma once

#include <functional>
#include <map>
#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat::cloud {

struct HttpRequest {
  std::string method = "GET";
  std::string url;
  std::vector<std::pair<std::string, std::string>> headers;
  ByteView body;
  // Instead of `body`: the request body read piece by piece as it is sent (`body_size` bytes in all),
  // so a large upload never sits in memory whole. It fills up to `max` bytes and returns how many; an
  // error aborts the request and is returned by http_send.
  std::function<Result<size_t>(uint8_t* buf, size_t max)> body_reader;
  uint64_t body_size = 0;
  // A success's (2xx) response body handed over piece by piece as it arrives instead of kept in
  // HttpResponse::body, so a large download never sits in memory whole (other answers are kept, up to
  // 64 KiB, for their error message). An error it returns aborts the transfer and is http_send's.
  std::function<Status(ByteView)> body_sink;
  long timeout_s = 300;  // whole request; a stalled transfer fails sooner (low-speed limit)
};

struct HttpResponse {
  long status = 0;
  std::map<std::string, std::string> headers;  // names lower-cased
  Bytes body;
  uint64_t streamed = 0;  // bytes handed to HttpRequest::body_sink
  std::string header(const std::string& lower_name) const;
};

// Performs the request. A transport failure (connection refused/reset, timeout, body shorter than
// Content-Length) is kUnavailable; any HTTP status is returned as a response, not an error.
Result<HttpResponse> http_send(const HttpRequest& request);

// Whether http_send failed because the host name does not resolve (kUnavailable like any transport failure;
// a caller for which that means "not on this network", such as the GCE metadata server, fails at once).
bool is_unresolved_host(const Status& s);

// The error for a response that is not a success: kUnavailable for 408/429/5xx, kNotFound for 404,
// kAlreadyExists for 412 (a create-only write found the name taken), kWrongPassword-free kIo else.
Status http_status_error(const HttpResponse& r, const std::string& what);

std::string url_encode(std::string_view s, bool keep_slash = false);

}  // namespace lifeboat::cloud
