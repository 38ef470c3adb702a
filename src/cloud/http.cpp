// libcurl transport.
#include "cloud/http.h"

#include <curl/curl.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <cstring>
#include <cctype>
#include <mutex>

#include "core/interrupt.h"
#include "core/names.h"
#include "core/time.h"

namespace lifeboat::cloud {

namespace {

void global_init_once() {
  static std::once_flag once;
  std::call_once(once, [] { curl_global_init(CURL_GLOBAL_DEFAULT); });
}

// One easy handle per thread keeps its connections alive between requests (connection reuse).
struct ThreadHandle {
  CURL* curl = nullptr;
  ThreadHandle() {
    global_init_once();
    curl = curl_easy_init();
  }
  ~ThreadHandle() {
    if (curl) curl_easy_cleanup(curl);
  }
};

struct BodySink {
  Bytes* body;
  std::map<std::string, std::string>* headers;
  CURL* curl = nullptr;
  const std::function<Status(ByteView)>* stream = nullptr;  // HttpRequest::body_sink
  uint64_t* streamed = nullptr;
  Status failed;
  uint64_t received = 0;  // every body byte that arrived, whether kept, streamed or cut off
};

size_t on_body(char* ptr, size_t size, size_t n, void* user) {
  auto* sink = static_cast<BodySink*>(user);
  Bytes* out = sink->body;
  ByteView piece(reinterpret_cast<const uint8_t*>(ptr), size * n);
  sink->received += piece.size();
  if (sink->stream && *sink->stream) {
    long status = 0;
    curl_easy_getinfo(sink->curl, CURLINFO_RESPONSE_CODE, &status);
    if (status >= 200 && status < 300) {
      if (Status s = (*sink->stream)(piece); !s) {
        sink->failed = s;
        return 0;  // libcurl ends the transfer (CURLE_WRITE_ERROR)
      }
      *sink->streamed += piece.size();
      return piece.size();
    }
    // An error answer: kept for its message, not streamed and not grown without bound.
    if (out->size() < 64 * 1024) append_bytes(*out, piece.first(std::min(piece.size(), 64 * 1024 - out->size())));
    return piece.size();
  }
  if (out->empty()) {  // one allocation for the whole body instead of doubling copies
    auto cl = sink->headers->find("content-length");
    if (cl != sink->headers->end()) out->reserve(std::strtoull(cl->second.c_str(), nullptr, 10));
  }
  append_bytes(*out, piece);
  return size * n;
}

size_t on_header(char* ptr, size_t size, size_t n, void* user) {
  auto* headers = static_cast<std::map<std::string, std::string>*>(user);
  std::string line(ptr, size * n);
  if (line.rfind("HTTP/", 0) == 0) headers->clear();  // a new response (after 100-continue or a redirect)
  auto colon = line.find(':');
  if (colon != std::string::npos) {
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(), [](unsigned char c) { return std::tolower(c); });
    std::string value = line.substr(colon + 1);
    auto b = value.find_first_not_of(" \t");
    auto e = value.find_last_not_of(" \t\r\n");
    (*headers)[name] = b == std::string::npos ? "" : value.substr(b, e - b + 1);
  }
  return size * n;
}

struct UploadCursor {
  ByteView data;
  size_t pos = 0;
  const std::function<Result<size_t>(uint8_t*, size_t)>* reader = nullptr;
  Status failed;
};

size_t on_read(char* buf, size_t size, size_t n, void* user) {
  auto* c = static_cast<UploadCursor*>(user);
  if (c->reader && *c->reader) {
    auto got = (*c->reader)(reinterpret_cast<uint8_t*>(buf), size * n);
    if (!got) {
      c->failed = got.status();
      return CURL_READFUNC_ABORT;
    }
    return *got;
  }
  size_t take = std::min(size * n, c->data.size() - c->pos);
  std::memcpy(buf, c->data.data() + c->pos, take);
  c->pos += take;
  return take;
}

// Called by libcurl on every transfer step and about once a second while idle. After an interrupt a
// transfer that moves on runs to its end (the index and lock updates a stopping command still makes,
// an upload already under way), and one that has moved nothing for a second is ended: a server that
// stopped answering no longer holds the command for the stall limit and the retries.
struct TransferWatch {
  curl_off_t moved = -1;
  int64_t still_since_ns = 0;
};

int on_progress(void* user, curl_off_t, curl_off_t dlnow, curl_off_t, curl_off_t ulnow) {
  auto* w = static_cast<TransferWatch*>(user);
  int64_t now = monotonic_ns();
  if (dlnow + ulnow != w->moved) {
    w->moved = dlnow + ulnow;
    w->still_since_ns = now;
    return 0;
  }
  return interrupted() && now - w->still_since_ns > 1000000000LL ? 1 : 0;
}

}  // namespace

std::string HttpResponse::header(const std::string& lower_name) const {
  auto it = headers.find(lower_name);
  return it == headers.end() ? std::string() : it->second;
}

Result<HttpResponse> http_send(const HttpRequest& req) {
  thread_local ThreadHandle handle;
  CURL* curl = handle.curl;
  if (!curl) return Error(Code::kFatal, "libcurl could not be initialised");
  curl_easy_reset(curl);
  HttpResponse resp;
  UploadCursor upload{req.body, 0, &req.body_reader, Status::ok()};
  struct curl_slist* headers = nullptr;
  for (const auto& [k, v] : req.headers) headers = curl_slist_append(headers, (k + ": " + v).c_str());
  headers = curl_slist_append(headers, "Expect:");  // no 100-continue round trip
  curl_easy_setopt(curl, CURLOPT_URL, req.url.c_str());
  curl_easy_setopt(curl, CURLOPT_HTTPHEADER, headers);
  curl_easy_setopt(curl, CURLOPT_WRITEFUNCTION, on_body);
  BodySink sink{&resp.body, &resp.headers, curl, &req.body_sink, &resp.streamed, Status::ok()};
  curl_easy_setopt(curl, CURLOPT_WRITEDATA, &sink);
  curl_easy_setopt(curl, CURLOPT_HEADERFUNCTION, on_header);
  curl_easy_setopt(curl, CURLOPT_HEADERDATA, &resp.headers);
  curl_easy_setopt(curl, CURLOPT_NOSIGNAL, 1L);
  TransferWatch watch;
  watch.still_since_ns = monotonic_ns();
  curl_easy_setopt(curl, CURLOPT_XFERINFOFUNCTION, on_progress);
  curl_easy_setopt(curl, CURLOPT_XFERINFODATA, &watch);
  curl_easy_setopt(curl, CURLOPT_NOPROGRESS, 0L);
  curl_easy_setopt(curl, CURLOPT_CONNECTTIMEOUT, 10L);
  curl_easy_setopt(curl, CURLOPT_TIMEOUT, req.timeout_s);
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_LIMIT, 1024L);  // under 1 KiB/s for 30 s: stalled
  curl_easy_setopt(curl, CURLOPT_LOW_SPEED_TIME, 30L);
  // A private CA (an on-premises endpoint, or a test server's own certificate); verification stays on.
  static const char* ca_file = std::getenv("LIFEBOAT_CA_FILE");
  if (ca_file && *ca_file) curl_easy_setopt(curl, CURLOPT_CAINFO, ca_file);
  if (req.method == "GET") {
    curl_easy_setopt(curl, CURLOPT_HTTPGET, 1L);
  } else if (req.method == "HEAD") {
    curl_easy_setopt(curl, CURLOPT_NOBODY, 1L);
  } else if (req.method == "PUT" || req.method == "POST" || req.method == "PATCH" ||
             (req.method == "DELETE" && (req.body_reader || !req.body.empty()))) {  // a DELETE with a body: MLflow's API
    curl_easy_setopt(curl, CURLOPT_UPLOAD, 1L);
    curl_easy_setopt(curl, CURLOPT_READFUNCTION, on_read);
    curl_easy_setopt(curl, CURLOPT_READDATA, &upload);
    curl_easy_setopt(curl, CURLOPT_INFILESIZE_LARGE,
                     static_cast<curl_off_t>(req.body_reader ? req.body_size : req.body.size()));
    if (req.method != "PUT") curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  } else {
    curl_easy_setopt(curl, CURLOPT_CUSTOMREQUEST, req.method.c_str());
  }
  CURLcode rc = curl_easy_perform(curl);
  curl_slist_free_all(headers);
  if (!upload.failed) return upload.failed.with_context(fmt::format("{} {}: reading the body to send", req.method, redact_url(req.url)));
  if (!sink.failed) return sink.failed.with_context(fmt::format("{} {}: taking the body received", req.method, redact_url(req.url)));
  if (rc == CURLE_ABORTED_BY_CALLBACK) return Error(Code::kInterrupted, fmt::format("{} {}: interrupted", req.method, redact_url(req.url)));
  if (rc != CURLE_OK)
    return Error(Code::kUnavailable, fmt::format("{} {}: {}", req.method, redact_url(req.url), curl_easy_strerror(rc)));
  curl_easy_getinfo(curl, CURLINFO_RESPONSE_CODE, &resp.status);
  if (req.method != "HEAD") {
    std::string cl = resp.header("content-length");
    char* end = nullptr;
    unsigned long long said = cl.empty() ? 0 : std::strtoull(cl.c_str(), &end, 10);
    if (!cl.empty() && (end == cl.c_str() || *end != '\0'))
      return Error(Code::kUnavailable, fmt::format("{} {}: the server sent Content-Length {:?}, not a number", req.method,
                                                   redact_url(req.url), cl));
    if (!cl.empty() && resp.header("content-encoding").empty() && said != sink.received)
      return Error(Code::kUnavailable, fmt::format("{} {}: body of {} bytes, Content-Length said {}", req.method,
                                                   redact_url(req.url), sink.received, cl));
  }
  return resp;
}

bool is_unresolved_host(const Status& s) {
  return s.code() == Code::kUnavailable &&
         s.message().find(curl_easy_strerror(CURLE_COULDNT_RESOLVE_HOST)) != std::string::npos;
}

Status http_status_error(const HttpResponse& r, const std::string& what) {
  std::string body(reinterpret_cast<const char*>(r.body.data()), std::min<size_t>(r.body.size(), 400));
  std::string msg = fmt::format("{}: HTTP {} {}", what, r.status, body);
  if (r.status == 408 || r.status == 429 || r.status >= 500) return Error(Code::kUnavailable, msg);
  if (r.status == 404) return Error(Code::kNotFound, msg);
  if (r.status == 412) return Error(Code::kAlreadyExists, msg);
  if (r.status == 401 || r.status == 403)
    return Error(Code::kIo, msg + " (check the credentials and that they may use this bucket)");
  return Error(Code::kIo, msg);
}

std::string url_encode(std::string_view s, bool keep_slash) {
  std::string out;
  for (unsigned char c : s) {
    if (std::isalnum(c) || c == '-' || c == '_' || c == '.' || c == '~' || (keep_slash && c == '/')) out += static_cast<char>(c);
    else out += fmt::format("%{:02X}", c);
  }
  return out;
}

}  // namespace lifeboat::cloud
