// S3 objects over HTTP with SigV4: put (create-only, object lock, multipart), ranged get, head,
// ListObjectsV2 with pagination, delete, retention.
#include <fmt/format.h>
#include <openssl/evp.h>

#include <cstdlib>
#include <ctime>

#include "cloud/http.h"
#include "cloud/object_store.h"
#include "cloud/sigv4.h"
#include "core/names.h"

namespace lifeboat::cloud {

std::string rfc3339_seconds(int64_t unix_ns) {
  std::time_t t = static_cast<std::time_t>(unix_ns / 1000000000LL);
  std::tm tm{};
  gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buf;
}

int64_t parse_http_time(const std::string& text) {
  std::tm tm{};
  const char* end = strptime(text.c_str(), "%Y-%m-%dT%H:%M:%S", &tm);
  if (!end) end = strptime(text.c_str(), "%a, %d %b %Y %H:%M:%S", &tm);
  if (!end) return 0;
  return static_cast<int64_t>(timegm(&tm)) * 1000000000LL;
}

namespace {

std::string xml_unescape(std::string s) {
  const std::pair<const char*, const char*> ents[] = {{"&lt;", "<"}, {"&gt;", ">"}, {"&quot;", "\""}, {"&apos;", "'"}, {"&amp;", "&"}};
  for (const auto& [from, to] : ents)
    for (size_t p = 0; (p = s.find(from, p)) != std::string::npos; p += std::strlen(to)) s.replace(p, std::strlen(from), to);
  return s;
}

// The text of each <tag>…</tag> inside `xml`, in order (S3 replies are flat enough for this).
std::vector<std::string> xml_all(const std::string& xml, const std::string& tag) {
  std::vector<std::string> out;
  std::string open = "<" + tag + ">", close = "</" + tag + ">";
  for (size_t p = 0; (p = xml.find(open, p)) != std::string::npos;) {
    size_t e = xml.find(close, p);
    if (e == std::string::npos) break;
    out.push_back(xml.substr(p + open.size(), e - p - open.size()));
    p = e + close.size();
  }
  return out;
}

std::string xml_first(const std::string& xml, const std::string& tag) {
  auto v = xml_all(xml, tag);
  return v.empty() ? "" : xml_unescape(v[0]);
}

std::string md5_base64(ByteView data) {
  unsigned char md[16];
  unsigned int len = 0;
  EVP_Digest(data.data(), data.size(), md, &len, EVP_md5(), nullptr);
  return base64_encode(ByteView(md, len));
}

constexpr const char* kBucketNameRule =
    " (S3 bucket names are 3-63 characters of lowercase letters, digits, dots and hyphens, starting and ending "
    "with a letter or digit: check the name in the repository URL)";

// S3 says what went wrong in <Code>; a 404 is "not found" only for NoSuchKey/NoSuchBucket (versitygw
// answers an unknown access key with 404 XAdminUserNotFound, which must not read as "no repository").
Status s3_error(const HttpResponse& r, const std::string& what) {
  std::string xml(r.body.begin(), r.body.end());
  std::string code = xml_first(xml, "Code");
  if (r.status == 404 && !code.empty() && code != "NoSuchKey" && code != "NoSuchBucket" && code != "NoSuchUpload")
    return Error(Code::kIo, fmt::format("{}: HTTP 404 {} ({}) (check the credentials and that they may use this bucket)",
                                        what, code, xml_first(xml, "Message")));
  Status s = http_status_error(r, what);
  if (code.empty()) return s;
  // S3's XML error, said in one line (its code keeps the status's meaning: retryable, not found, …).
  std::string msg = fmt::format("{}: HTTP {} {}: {}", what, r.status, code, xml_first(xml, "Message"));
  if (code == "InvalidBucketName") msg += kBucketNameRule;
  return Error(s.code(), msg);
}

class S3Store final : public ObjectStore {
 public:
  S3Store(std::string endpoint, std::string bucket, AwsCredentials creds, std::string region)
      : endpoint_(std::move(endpoint)), bucket_(std::move(bucket)), creds_(std::move(creds)), region_(std::move(region)) {
    auto scheme = endpoint_.find("://");
    host_ = endpoint_.substr(scheme == std::string::npos ? 0 : scheme + 3);
    if (!host_.empty() && host_.back() == '/') host_.pop_back();
    if (!endpoint_.empty() && endpoint_.back() == '/') endpoint_.pop_back();
    if (const char* t = std::getenv("LIFEBOAT_S3_MULTIPART_THRESHOLD")) multipart_threshold_ = std::strtoull(t, nullptr, 10);
    if (const char* t = std::getenv("LIFEBOAT_LIST_PAGE_SIZE")) page_size_ = std::strtoull(t, nullptr, 10);
  }

  std::string location() const override { return fmt::format("s3:{}/{}", redact_url(endpoint_), bucket_); }

  Status ensure_bucket(bool create, bool object_lock) override {
    LB_ASSIGN_OR_RETURN(auto r, send("HEAD", "", {}, {}, {}));
    if (r.status == 200) return Status::ok();
    // A HEAD reply has no body, so the server cannot say why it refuses; 400 is what S3 answers for a
    // name it does not accept.
    if (r.status == 400)
      return Error(Code::kInvalidArgument,
                   fmt::format("bucket {:?}: {} answered HTTP 400 (bad request) without a reason{}", bucket_, endpoint_,
                               kBucketNameRule));
    if (r.status != 404 || !create) return s3_error(r, fmt::format("bucket {}", bucket_));
    std::vector<std::pair<std::string, std::string>> h;
    if (object_lock) h.emplace_back("x-amz-bucket-object-lock-enabled", "true");
    LB_ASSIGN_OR_RETURN(auto c, send("PUT", "", {}, h, {}));
    if (c.status != 200) return s3_error(c, fmt::format("creating bucket {}", bucket_));
    return Status::ok();
  }

  Status put(const std::string& key, ByteView data, const PutOptions& o) override {
    if (data.size() > multipart_threshold_) return put_multipart(key, data, o);
    std::vector<std::pair<std::string, std::string>> h;
    if (o.create_only) h.emplace_back("If-None-Match", "*");
    add_lock_headers(h, o, data);
    LB_ASSIGN_OR_RETURN(auto r, send("PUT", key, {}, h, data));
    if (r.status != 200) return s3_error(r, fmt::format("storing {}", key));
    return Status::ok();
  }

  Result<Bytes> get(const std::string& key, uint64_t offset, uint64_t length) override {
    std::vector<std::pair<std::string, std::string>> h;
    if (offset > 0 || length > 0)
      h.emplace_back("Range", length ? fmt::format("bytes={}-{}", offset, offset + length - 1) : fmt::format("bytes={}-", offset));
    LB_ASSIGN_OR_RETURN(auto r, send("GET", key, {}, h, {}));
    if (r.status != 200 && r.status != 206) return s3_error(r, fmt::format("reading {}", key));
    if (length && r.body.size() != length)
      return Error(Code::kUnavailable, fmt::format("reading {}: got {} bytes of {}", key, r.body.size(), length));
    return std::move(r.body);
  }

  Result<ObjectInfo> head(const std::string& key) override {
    LB_ASSIGN_OR_RETURN(auto r, send("HEAD", key, {}, {}, {}));
    if (r.status != 200) return s3_error(r, fmt::format("stat {}", key));
    ObjectInfo info;
    info.key = key;
    info.size_bytes = std::strtoull(r.header("content-length").c_str(), nullptr, 10);
    info.mtime_ns = parse_http_time(r.header("last-modified"));
    info.retain_until_ns = parse_http_time(r.header("x-amz-object-lock-retain-until-date"));
    return info;
  }

  Status list(const std::string& prefix, const std::function<Status(const ObjectInfo&)>& fn) override {
    std::string token;
    while (true) {
      std::vector<std::pair<std::string, std::string>> q = {{"list-type", "2"}, {"prefix", prefix}, {"max-keys", std::to_string(page_size_)}};
      if (!token.empty()) q.emplace_back("continuation-token", token);
      LB_ASSIGN_OR_RETURN(auto r, send("GET", "", q, {}, {}));
      if (r.status != 200) return s3_error(r, fmt::format("listing {}", prefix));
      std::string xml(r.body.begin(), r.body.end());
      for (const auto& c : xml_all(xml, "Contents")) {
        ObjectInfo info;
        info.key = xml_first(c, "Key");
        info.size_bytes = std::strtoull(xml_first(c, "Size").c_str(), nullptr, 10);
        info.mtime_ns = parse_http_time(xml_first(c, "LastModified"));
        LB_RETURN_IF_ERROR(fn(info));
      }
      if (xml_first(xml, "IsTruncated") != "true") return Status::ok();
      token = xml_first(xml, "NextContinuationToken");
      if (token.empty()) return Error(Code::kIo, "S3 listing truncated without a continuation token");
    }
  }

  Status remove(const std::string& key) override {
    LB_ASSIGN_OR_RETURN(auto r, send("DELETE", key, {}, {}, {}));
    if (r.status == 204 || r.status == 200 || r.status == 404) return Status::ok();
    return s3_error(r, fmt::format("deleting {}", key));
  }

  Status set_retention(const std::string& key, int64_t until_ns) override {
    std::string xml = fmt::format(
        R"(<?xml version="1.0" encoding="UTF-8"?><Retention xmlns="http://s3.amazonaws.com/doc/2006-03-01/"><Mode>{}</Mode><RetainUntilDate>{}</RetainUntilDate></Retention>)",
        lock_mode(), rfc3339_seconds(until_ns));
    std::vector<std::pair<std::string, std::string>> h = {{"Content-MD5", md5_base64(as_bytes(xml))}};
    LB_ASSIGN_OR_RETURN(auto r, send("PUT", key, {{"retention", ""}}, h, as_bytes(xml)));
    if (r.status != 200 && r.status != 204) return s3_error(r, fmt::format("setting retention on {}", key));
    return Status::ok();
  }

 private:
  static std::string lock_mode() {
    const char* m = std::getenv("LIFEBOAT_S3_LOCK_MODE");  // COMPLIANCE in production; GOVERNANCE lets an admin lift it
    return m && *m ? m : "GOVERNANCE";
  }

  void add_lock_headers(std::vector<std::pair<std::string, std::string>>& h, const PutOptions& o, ByteView data) {
    if (!o.retain_until_ns) return;
    h.emplace_back("x-amz-object-lock-mode", lock_mode());
    h.emplace_back("x-amz-object-lock-retain-until-date", rfc3339_seconds(o.retain_until_ns));
    h.emplace_back("Content-MD5", md5_base64(data));  // S3 demands an integrity header with object lock
  }

  Status put_multipart(const std::string& key, ByteView data, const PutOptions& o) {
    std::vector<std::pair<std::string, std::string>> h;
    add_lock_headers(h, o, {});
    h.erase(std::remove_if(h.begin(), h.end(), [](const auto& p) { return p.first == "Content-MD5"; }), h.end());
    LB_ASSIGN_OR_RETURN(auto init, send("POST", key, {{"uploads", ""}}, h, {}));
    if (init.status != 200) return s3_error(init, fmt::format("starting multipart upload of {}", key));
    std::string upload_id = xml_first(std::string(init.body.begin(), init.body.end()), "UploadId");
    std::string complete = "<CompleteMultipartUpload>";
    const size_t part = 8 << 20;
    Status s;
    for (size_t off = 0, n = 1; off < data.size(); off += part, ++n) {
      ByteView chunk = data.subspan(off, std::min(part, data.size() - off));
      auto r = send("PUT", key, {{"partNumber", std::to_string(n)}, {"uploadId", upload_id}}, {}, chunk);
      if (!r) s = r.status();
      else if (r->status != 200) s = s3_error(*r, fmt::format("uploading part {} of {}", n, key));
      if (!s.is_ok()) break;
      complete += fmt::format("<Part><PartNumber>{}</PartNumber><ETag>{}</ETag></Part>", n, r->header("etag"));
    }
    if (s.is_ok()) {
      complete += "</CompleteMultipartUpload>";
      std::vector<std::pair<std::string, std::string>> ch;
      if (o.create_only) ch.emplace_back("If-None-Match", "*");
      auto r = send("POST", key, {{"uploadId", upload_id}}, ch, as_bytes(complete));
      if (!r) s = r.status();
      else if (r->status != 200 || xml_all(std::string(r->body.begin(), r->body.end()), "Error").size())
        s = s3_error(*r, fmt::format("completing multipart upload of {}", key));
      if (s.is_ok()) return s;
    }
    (void)send("DELETE", key, {{"uploadId", upload_id}}, {}, {});  // abort: no orphaned parts
    return s;
  }

  Result<HttpResponse> send(const std::string& method, const std::string& key,
                            const std::vector<std::pair<std::string, std::string>>& query,
                            const std::vector<std::pair<std::string, std::string>>& headers, ByteView body) {
    SigV4Request r;
    r.method = method;
    r.host = host_;
    r.path = "/" + url_encode(bucket_) + (key.empty() ? "" : "/" + url_encode(key, true));
    r.query = query;
    r.headers = headers;
    r.payload_sha256_hex = sha256_hex(body);
    HttpRequest req;
    req.method = method;
    std::string qs = canonical_query_string(query);
    req.url = endpoint_ + r.path + (qs.empty() ? "" : "?" + qs);
    req.headers = sigv4_sign(r, creds_, region_, "s3", amz_date_now());
    req.headers.erase(std::remove_if(req.headers.begin(), req.headers.end(), [](const auto& p) { return p.first == "host"; }),
                      req.headers.end());
    req.body = body;
    return http_send(req);
  }

  std::string endpoint_, bucket_, host_;
  AwsCredentials creds_;
  std::string region_;
  uint64_t multipart_threshold_ = 64ull << 20;
  uint64_t page_size_ = 1000;  // LIFEBOAT_LIST_PAGE_SIZE: tests make pagination happen
};

}  // namespace

Result<std::unique_ptr<ObjectStore>> open_s3(const std::string& endpoint, const std::string& bucket) {
  LB_ASSIGN_OR_RETURN(auto creds, aws_credentials_from_environment());
  std::string region = "us-east-1";
  for (const char* n : {"AWS_REGION", "AWS_DEFAULT_REGION"})
    if (const char* v = std::getenv(n); v && *v) {
      region = v;
      break;
    }
  return std::unique_ptr<ObjectStore>(new S3Store(endpoint, bucket, std::move(creds), region));
}

}  // namespace lifeboat::cloud
