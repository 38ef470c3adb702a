// AWS Signature Version 4 for S3 requests (OpenSSL HMAC-SHA-256), and where credentials come from.
#pragma once

#include <string>
#include <utility>
#include <vector>

#include "core/bytes.h"
#include "core/environment.h"
#include "core/status.h"

namespace lifeboat::cloud {

struct AwsCredentials {
  std::string access_key_id, secret_access_key, session_token;
};

// AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN, else the shared credentials file
// (AWS_SHARED_CREDENTIALS_FILE or ~/.aws/credentials, profile AWS_PROFILE or "default"), as `env`
// has them (the process's by default).
Result<AwsCredentials> aws_credentials_from_environment(const Environment& env = process_environment());

struct SigV4Request {
  std::string method;
  std::string host;        // with :port when not default
  std::string path;        // already URI-encoded, e.g. /bucket/data/ab/ab12…
  std::vector<std::pair<std::string, std::string>> query;  // unencoded
  std::vector<std::pair<std::string, std::string>> headers;  // extra headers to sign (and send)
  std::string payload_sha256_hex;
};

// Returns every header to send: the given ones plus host, x-amz-date, x-amz-content-sha256,
// x-amz-security-token (with a session token) and Authorization. `amz_date` is YYYYMMDD'T'HHMMSS'Z'.
std::vector<std::pair<std::string, std::string>> sigv4_sign(const SigV4Request& r, const AwsCredentials& creds,
                                                           const std::string& region, const std::string& service,
                                                           const std::string& amz_date);

std::string canonical_query_string(const std::vector<std::pair<std::string, std::string>>& query);
std::string amz_date_now();
std::string sha256_hex(ByteView data);

}  // namespace lifeboat::cloud
