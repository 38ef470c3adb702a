// The object operations both S3 and GCS offer, as the storage layer and cloud sources need them.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat::cloud {

struct ObjectInfo {
  std::string key;
  uint64_t size_bytes = 0;
  int64_t mtime_ns = 0;
  int64_t retain_until_ns = 0;  // 0: no retention known
};

struct PutOptions {
  bool create_only = true;           // S3: If-None-Match: *; GCS: ifGenerationMatch=0
  int64_t retain_until_ns = 0;       // object lock / object retention until then (0: none)
};

class ObjectStore {
 public:
  virtual ~ObjectStore() = default;
  virtual std::string location() const = 0;  // "s3:http://host/bucket", "gs:bucket"
  // Checks the bucket exists (creates it when `create` and absent; with object lock when asked).
  virtual Status ensure_bucket(bool create, bool object_lock) = 0;
  virtual Status put(const std::string& key, ByteView data, const PutOptions& options) = 0;
  // length 0: to the end. kNotFound when absent.
  virtual Result<Bytes> get(const std::string& key, uint64_t offset, uint64_t length) = 0;
  virtual Result<ObjectInfo> head(const std::string& key) = 0;
  virtual Status list(const std::string& prefix, const std::function<Status(const ObjectInfo&)>& fn) = 0;
  virtual Status remove(const std::string& key) = 0;  // absent is OK
  // Extends (never shortens) an object's retention.
  virtual Status set_retention(const std::string& key, int64_t retain_until_ns) = 0;
};

// "s3:http://127.0.0.1:7070/bucket" (path-style; region from AWS_REGION / AWS_DEFAULT_REGION, default
// us-east-1). The prefix inside the bucket is the caller's business.
Result<std::unique_ptr<ObjectStore>> open_s3(const std::string& endpoint, const std::string& bucket);
// Endpoint from CLOUD_STORAGE_EMULATOR_ENDPOINT (no auth) or LIFEBOAT_GCS_ENDPOINT, else Google's.
Result<std::unique_ptr<ObjectStore>> open_gcs(const std::string& bucket);

std::string rfc3339_seconds(int64_t unix_ns);
int64_t parse_http_time(const std::string& text);  // RFC 3339 / ISO 8601 or RFC 1123; 0 if unparsable

}  // namespace lifeboat::cloud
