// The GCS JSON API client shared by the GCS storage backend (repository files) and the GCS bucket
// source (a bucket's objects with all their metadata): endpoint and credentials in one place, and
// the object calls both need, each retried on 429/5xx/transport failures.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>
#include <utility>
#include <vector>

#include "cloud/gcp_auth.h"
#include "cloud/http.h"
#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat::cloud {

// One object (or one version of it) as the JSON API lists it.
struct GcsObject {
  std::string name;
  int64_t generation = 0, metageneration = 0;
  uint64_t size_bytes = 0;
  std::string crc32c, md5;  // base64, as GCS gives them; md5 is empty for composite objects
  int64_t updated_ns = 0;
  bool live = true;         // false: a noncurrent version (listed with versions=true)
  nlohmann::json resource;  // the whole resource as the server sent it
};
GcsObject gcs_object_from_json(const nlohmann::json& j);

// The metadata a restore writes back: content type/encoding/disposition/language, cache control,
// custom metadata, storage class and custom time (generation and checksums belong to the server).
nlohmann::json gcs_writable_metadata(const nlohmann::json& resource);

// A multipart/related upload body (the object's metadata JSON, then its bytes) and its Content-Type.
std::pair<std::string, Bytes> gcs_multipart_upload(const std::string& metadata_json, const std::string& media_type, ByteView data);

// "gs://bucket/some/prefix" → {"bucket", "some/prefix"}; kInvalidArgument when it is not a gs:// URL.
Result<std::pair<std::string, std::string>> parse_gs_url(const std::string& url);

// A Google REST API at an endpoint, with credentials (none for an emulator): the requests every
// Google client here makes, retried the same way.
class GoogleApiClient {
 public:
  GoogleApiClient(std::string endpoint, std::shared_ptr<GcpAuth> auth);
  const std::string& endpoint() const { return endpoint_; }
  // One request with credentials; any HTTP status comes back as a response.
  Result<HttpResponse> send(const std::string& method, const std::string& url,
                            std::vector<std::pair<std::string, std::string>> headers, ByteView body) const;
  // As send, but 408/429/5xx answers and transport failures are retried with backoff (LIFEBOAT_RETRY_BASE_MS,
  // default 100 ms; LIFEBOAT_RETRY_ATTEMPTS, default 6); the last answer is returned.
  Result<HttpResponse> send_retrying(const std::string& method, const std::string& url,
                                     const std::vector<std::pair<std::string, std::string>>& headers, ByteView body) const;

 protected:
  std::string endpoint_;
  std::shared_ptr<GcpAuth> auth_;
};

class GcsClient : public GoogleApiClient {
 public:
  // CLOUD_STORAGE_EMULATOR_ENDPOINT (an emulator, no auth), else LIFEBOAT_GCS_ENDPOINT or Google's,
  // with credentials from the environment (cloud/gcp_auth).
  static Result<std::shared_ptr<GcsClient>> from_environment(const std::string& scope);
  using GoogleApiClient::GoogleApiClient;

  std::string object_url(const std::string& bucket, const std::string& name) const;

  // kNotFound when the bucket does not exist; a permission problem names the credentials.
  Status get_bucket(const std::string& bucket) const;
  // Every object under `prefix` (all versions with `versions`), page by page, each object handed to
  // `fn` as its page arrives; a page that cannot be read fails the whole listing (an error from `fn`
  // too). Callers commit or delete nothing until it returned OK: a backup downloads as it lists but
  // commits no snapshot, sync lists both sides whole before it changes anything.
  Status list_objects(const std::string& bucket, const std::string& prefix, bool versions,
                      const std::function<Status(const GcsObject&)>& fn) const;
  Result<GcsObject> stat(const std::string& bucket, const std::string& name) const;
  // Bytes [offset, offset+length) of one generation, stored bytes as they are (no transcoding of
  // gzip-encoded objects). A short answer before the object's end is kUnavailable.
  Result<Bytes> read_range(const std::string& bucket, const std::string& name, int64_t generation, uint64_t offset,
                           uint64_t length, uint64_t object_size) const;
  // Creates or replaces an object with `metadata` (gcs_writable_metadata's fields, plus "crc32c" so the
  // server rejects a body that does not match). `read` fills a buffer and returns bytes read, 0 at the end.
  using Reader = std::function<Result<size_t>(uint8_t*, size_t)>;
  Result<GcsObject> upload(const std::string& bucket, const std::string& name, const nlohmann::json& metadata,
                           uint64_t size_bytes, const Reader& read) const;
  // Server-side copy (rewrite, continued until done), metadata kept.
  Result<GcsObject> rewrite(const std::string& src_bucket, const std::string& src_name, int64_t src_generation,
                            const std::string& dst_bucket, const std::string& dst_name) const;
  // Deletes the live object, or one generation (absent is OK).
  Status remove(const std::string& bucket, const std::string& name, int64_t generation = 0) const;
};

}  // namespace lifeboat::cloud
