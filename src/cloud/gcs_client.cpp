// GCS JSON API calls with credentials and retries (see gcs_client.h).
#include "cloud/gcs_client.h"

#include <fmt/format.h>

#include <chrono>
#include <cstdlib>
#include <random>
#include <thread>

#include "cloud/object_store.h"
#include "core/interrupt.h"

namespace lifeboat::cloud {

namespace {

int64_t env_int(const char* name, int64_t fallback) {
  const char* v = std::getenv(name);
  return v && *v ? std::strtoll(v, nullptr, 10) : fallback;
}

int64_t json_int(const nlohmann::json& j, const char* key) {
  auto it = j.find(key);
  if (it == j.end()) return 0;
  if (it->is_string()) return std::strtoll(it->get<std::string>().c_str(), nullptr, 10);
  if (it->is_number()) return it->get<int64_t>();
  return 0;
}

Result<nlohmann::json> parse_body(const HttpResponse& r, const std::string& what) {
  auto j = nlohmann::json::parse(r.body.begin(), r.body.end(), nullptr, false);
  if (j.is_discarded() || !j.is_object()) return Error(Code::kUnavailable, fmt::format("{}: unreadable reply", what));
  return j;
}

// 501 (not implemented) will not change by asking again.
bool retryable(long status) { return status == 408 || status == 429 || (status >= 500 && status != 501); }

}  // namespace

GcsObject gcs_object_from_json(const nlohmann::json& j) {
  GcsObject o;
  o.name = j.value("name", "");
  o.generation = json_int(j, "generation");
  o.metageneration = json_int(j, "metageneration");
  o.size_bytes = static_cast<uint64_t>(json_int(j, "size"));
  o.crc32c = j.value("crc32c", "");
  o.md5 = j.value("md5Hash", "");
  o.updated_ns = parse_http_time(j.value("updated", ""));
  o.live = !j.contains("timeDeleted");
  o.resource = j;
  return o;
}

nlohmann::json gcs_writable_metadata(const nlohmann::json& resource) {
  static const char* kFields[] = {"contentType", "contentEncoding", "contentDisposition", "contentLanguage",
                                  "cacheControl", "metadata",        "storageClass",       "customTime"};
  nlohmann::json m = nlohmann::json::object();
  for (const char* f : kFields)
    if (resource.contains(f) && !resource[f].is_null()) m[f] = resource[f];
  return m;
}

std::pair<std::string, Bytes> gcs_multipart_upload(const std::string& metadata_json, const std::string& media_type, ByteView data) {
  const std::string boundary = "lifeboat_part_5b1e0c7d";
  std::string head = fmt::format("--{}\r\nContent-Type: application/json; charset=UTF-8\r\n\r\n{}\r\n--{}\r\n"
                                 "Content-Type: {}\r\n\r\n", boundary, metadata_json, boundary, media_type);
  std::string tail = fmt::format("\r\n--{}--\r\n", boundary);
  Bytes body;
  body.reserve(head.size() + data.size() + tail.size());
  append_bytes(body, as_bytes(head));
  append_bytes(body, data);
  append_bytes(body, as_bytes(tail));
  return {"multipart/related; boundary=" + boundary, std::move(body)};
}

Result<std::pair<std::string, std::string>> parse_gs_url(const std::string& url) {
  if (!url.starts_with("gs://") || url.size() == 5 || url[5] == '/')
    return Error(Code::kInvalidArgument, fmt::format("{}: expected gs://BUCKET or gs://BUCKET/PREFIX", url));
  std::string rest = url.substr(5);
  size_t slash = rest.find('/');
  if (slash == std::string::npos) return std::make_pair(rest, std::string());
  return std::make_pair(rest.substr(0, slash), rest.substr(slash + 1));
}

Result<std::shared_ptr<GcsClient>> GcsClient::from_environment(const std::string& scope) {
  if (const char* emu = std::getenv("CLOUD_STORAGE_EMULATOR_ENDPOINT"); emu && *emu)
    return std::make_shared<GcsClient>(emu, nullptr);
  const char* ep = std::getenv("LIFEBOAT_GCS_ENDPOINT");
  LB_ASSIGN_OR_RETURN(auto auth, GcpAuth::from_environment(scope));
  return std::make_shared<GcsClient>(ep && *ep ? ep : "https://storage.googleapis.com", auth);
}

GoogleApiClient::GoogleApiClient(std::string endpoint, std::shared_ptr<GcpAuth> auth)
    : endpoint_(std::move(endpoint)), auth_(std::move(auth)) {
  while (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
}

Result<HttpResponse> GoogleApiClient::send(const std::string& method, const std::string& url,
                                           std::vector<std::pair<std::string, std::string>> headers, ByteView body) const {
  if (auth_) {
    LB_ASSIGN_OR_RETURN(std::string a, auth_->authorization());
    headers.emplace_back("Authorization", a);
  }
  HttpRequest req;
  req.method = method;
  req.url = url;
  req.headers = std::move(headers);
  req.body = body;
  return http_send(req);
}

Result<HttpResponse> GoogleApiClient::send_retrying(const std::string& method, const std::string& url,
                                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                                    ByteView body) const {
  static const int64_t base_ms = env_int("LIFEBOAT_RETRY_BASE_MS", 100);
  static const int attempts = static_cast<int>(std::max<int64_t>(1, env_int("LIFEBOAT_RETRY_ATTEMPTS", 6)));
  thread_local std::mt19937_64 rng(std::random_device{}());
  for (int attempt = 1;; ++attempt) {
    auto r = send(method, url, headers, body);
    bool again = r ? retryable(r->status) : r.status().code() == Code::kUnavailable;
    if (!again || attempt >= attempts || interrupted()) {
      if (!r && again)
        return r.status().with_context(fmt::format("after {} attempts (the server kept failing)", attempt));
      return r;
    }
    int64_t cap = std::min<int64_t>(10000, base_ms << std::min(attempt, 16));
    if (!sleep_unless_interrupted(std::uniform_int_distribution<int64_t>(cap / 4, cap)(rng))) return r;
  }
}

std::string GcsClient::object_url(const std::string& bucket, const std::string& name) const {
  return fmt::format("{}/storage/v1/b/{}/o/{}", endpoint_, url_encode(bucket), url_encode(name));
}

Status GcsClient::get_bucket(const std::string& bucket) const {
  LB_ASSIGN_OR_RETURN(auto r, send_retrying("GET", fmt::format("{}/storage/v1/b/{}", endpoint_, url_encode(bucket)), {}, {}));
  if (r.status == 200) return Status::ok();
  if (r.status == 404) return Error(Code::kNotFound, fmt::format("bucket gs://{} does not exist (check the name)", bucket));
  return http_status_error(r, fmt::format("bucket gs://{}", bucket));
}

Status GcsClient::list_objects(const std::string& bucket, const std::string& prefix, bool versions,
                               const std::function<Status(const GcsObject&)>& fn) const {
  std::string token;
  while (true) {
    std::string url = fmt::format("{}/storage/v1/b/{}/o?maxResults=1000&prefix={}{}", endpoint_, url_encode(bucket),
                                  url_encode(prefix), versions ? "&versions=true" : "");
    if (!token.empty()) url += "&pageToken=" + url_encode(token);
    std::string what = fmt::format("listing gs://{}/{}", bucket, prefix);
    LB_ASSIGN_OR_RETURN(auto r, send_retrying("GET", url, {}, {}));
    if (r.status == 404) return Error(Code::kNotFound, fmt::format("{}: the bucket does not exist", what));
    if (r.status != 200) return http_status_error(r, what);
    LB_ASSIGN_OR_RETURN(auto j, parse_body(r, what));
    auto items = j.find("items");
    if (items != j.end()) {
      if (!items->is_array()) return Error(Code::kUnavailable, fmt::format("{}: unreadable reply", what));
      for (const auto& item : *items) LB_RETURN_IF_ERROR(fn(gcs_object_from_json(item)));
    }
    token = j.value("nextPageToken", "");
    if (token.empty()) return Status::ok();
  }
}

Result<GcsObject> GcsClient::stat(const std::string& bucket, const std::string& name) const {
  LB_ASSIGN_OR_RETURN(auto r, send_retrying("GET", object_url(bucket, name), {}, {}));
  if (r.status != 200) return http_status_error(r, fmt::format("stat gs://{}/{}", bucket, name));
  LB_ASSIGN_OR_RETURN(auto j, parse_body(r, "stat " + name));
  return gcs_object_from_json(j);
}

Result<Bytes> GcsClient::read_range(const std::string& bucket, const std::string& name, int64_t generation, uint64_t offset,
                                    uint64_t length, uint64_t object_size) const {
  if (length == 0) return Bytes{};
  std::string url = object_url(bucket, name) + "?alt=media";
  if (generation) url += fmt::format("&generation={}", generation);
  // Accept-Encoding: gzip asks for the stored bytes; without it GCS decompresses gzip-encoded objects.
  std::vector<std::pair<std::string, std::string>> h = {{"Accept-Encoding", "gzip"}};
  bool whole = offset == 0 && length >= object_size;
  if (!whole) h.emplace_back("Range", fmt::format("bytes={}-{}", offset, offset + length - 1));
  LB_ASSIGN_OR_RETURN(auto r, send_retrying("GET", url, h, {}));
  std::string what = fmt::format("reading gs://{}/{} (generation {})", bucket, name, generation);
  if (r.status != 200 && r.status != 206) return http_status_error(r, what);
  if (r.status == 200 && !whole) {  // a server that ignored the range: take our part of the whole
    if (r.body.size() < offset + length) return Error(Code::kUnavailable, fmt::format("{}: short reply", what));
    return Bytes(r.body.begin() + static_cast<ptrdiff_t>(offset), r.body.begin() + static_cast<ptrdiff_t>(offset + length));
  }
  if (r.body.size() != length)
    return Error(Code::kUnavailable, fmt::format("{}: got {} bytes of {} at offset {}", what, r.body.size(), length, offset));
  return std::move(r.body);
}

Result<GcsObject> GcsClient::upload(const std::string& bucket, const std::string& name, const nlohmann::json& metadata,
                                    uint64_t size_bytes, const Reader& read) const {
  static const uint64_t kSimpleMax = static_cast<uint64_t>(env_int("LIFEBOAT_GCS_RESUMABLE_THRESHOLD", 8 << 20));
  std::string what = fmt::format("uploading gs://{}/{}", bucket, name);
  nlohmann::json meta = metadata;
  meta["name"] = name;
  std::string base = fmt::format("{}/upload/storage/v1/b/{}/o?", endpoint_, url_encode(bucket));
  auto read_exact = [&](Bytes& buf, size_t n) -> Status {
    buf.resize(n);
    size_t got = 0;
    while (got < n) {
      LB_ASSIGN_OR_RETURN(size_t k, read(buf.data() + got, n - got));
      if (k == 0) return Error(Code::kCorrupt, fmt::format("{}: the stored object ended after {} of {} bytes", what, got, n));
      got += k;
    }
    return Status::ok();
  };
  auto finish = [&](const HttpResponse& r) -> Result<GcsObject> {
    if (r.status != 200 && r.status != 201) return http_status_error(r, what);
    LB_ASSIGN_OR_RETURN(auto j, parse_body(r, what));
    return gcs_object_from_json(j);
  };
  if (size_bytes <= kSimpleMax) {
    Bytes data;
    LB_RETURN_IF_ERROR(read_exact(data, size_bytes));
    auto [type, body] = gcs_multipart_upload(meta.dump(), meta.value("contentType", "application/octet-stream"), data);
    LB_ASSIGN_OR_RETURN(auto r, send_retrying("POST", base + "uploadType=multipart", {{"Content-Type", type}}, body));
    return finish(r);
  }
  std::string m = meta.dump();
  LB_ASSIGN_OR_RETURN(auto start, send_retrying("POST", base + "uploadType=resumable",
                                                {{"Content-Type", "application/json; charset=UTF-8"},
                                                 {"X-Upload-Content-Length", std::to_string(size_bytes)}},
                                                as_bytes(m)));
  if (start.status != 200) return http_status_error(start, what + " (starting a resumable upload)");
  std::string session = start.header("location");
  if (session.empty()) return Error(Code::kIo, what + ": no session URI in the reply");
  const uint64_t chunk = 8 << 20;  // a multiple of 256 KiB, as the API requires
  Bytes buf;
  for (uint64_t off = 0; off < size_bytes; off += chunk) {
    uint64_t n = std::min(chunk, size_bytes - off);
    LB_RETURN_IF_ERROR(read_exact(buf, n));
    LB_ASSIGN_OR_RETURN(auto r, send_retrying("PUT", session,
                                              {{"Content-Range", fmt::format("bytes {}-{}/{}", off, off + n - 1, size_bytes)}},
                                              buf));
    if (off + n == size_bytes) return finish(r);
    if (r.status != 308 && r.status != 200) return http_status_error(r, fmt::format("{} (at byte {})", what, off));
  }
  return Error(Code::kFatal, what + ": nothing to upload");  // unreachable: size 0 goes the simple way
}

Result<GcsObject> GcsClient::rewrite(const std::string& src_bucket, const std::string& src_name, int64_t src_generation,
                                     const std::string& dst_bucket, const std::string& dst_name) const {
  std::string what = fmt::format("copying gs://{}/{} to gs://{}/{}", src_bucket, src_name, dst_bucket, dst_name);
  std::string token;
  for (int round = 0; round < 10000; ++round) {
    std::string url = fmt::format("{}/rewriteTo/b/{}/o/{}?sourceGeneration={}", object_url(src_bucket, src_name),
                                  url_encode(dst_bucket), url_encode(dst_name), src_generation);
    if (!token.empty()) url += "&rewriteToken=" + url_encode(token);
    LB_ASSIGN_OR_RETURN(auto r, send_retrying("POST", url, {{"Content-Type", "application/json"}}, as_bytes(std::string("{}"))));
    if (r.status != 200) return http_status_error(r, what);
    LB_ASSIGN_OR_RETURN(auto j, parse_body(r, what));
    if (j.value("done", false)) {
      if (!j.contains("resource")) return Error(Code::kUnavailable, what + ": no resource in the reply");
      return gcs_object_from_json(j["resource"]);
    }
    token = j.value("rewriteToken", "");
    if (token.empty()) return Error(Code::kUnavailable, what + ": neither done nor a rewrite token");
  }
  return Error(Code::kUnavailable, what + ": the rewrite never finished");
}

Status GcsClient::remove(const std::string& bucket, const std::string& name, int64_t generation) const {
  std::string url = object_url(bucket, name);
  if (generation) url += fmt::format("?generation={}", generation);
  LB_ASSIGN_OR_RETURN(auto r, send_retrying("DELETE", url, {}, {}));
  if (r.status == 204 || r.status == 200 || r.status == 404) return Status::ok();
  return http_status_error(r, fmt::format("deleting gs://{}/{}", bucket, name));
}

}  // namespace lifeboat::cloud
