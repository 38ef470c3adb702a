// Google Cloud credentials in one place (GCS backend, Firestore, Secret Manager): a service-account
// key (RS256 JWT exchanged for an OAuth2 token, refreshed before expiry), a token from the
// environment, or the metadata server.
#pragma once

#include <memory>
#include <mutex>
#include <string>

#include "core/status.h"

namespace lifeboat::cloud {

class GcpAuth {
 public:
  // GOOGLE_OAUTH_ACCESS_TOKEN, else GOOGLE_APPLICATION_CREDENTIALS (service-account JSON; its
  // token_uri may point at a local endpoint), else the metadata server (GCE_METADATA_HOST or
  // metadata.google.internal).
  static Result<std::shared_ptr<GcpAuth>> from_environment(const std::string& scope);
  static std::shared_ptr<GcpAuth> from_service_account_json(const std::string& json, const std::string& scope,
                                                           Status* error);
  // "Bearer <token>", refreshing when less than a tenth of the lifetime (at most 5 minutes) remains.
  Result<std::string> authorization();

 private:
  enum class Kind { kStatic, kServiceAccount, kMetadata };
  Result<std::pair<std::string, int64_t>> fetch_token();  // token, lifetime in seconds
  Kind kind_ = Kind::kStatic;
  std::string scope_, client_email_, private_key_pem_, token_uri_, metadata_host_;
  std::mutex mu_;
  std::string token_;
  int64_t refresh_at_ns_ = 0;
};

// base64url without padding (JWT segments).
std::string base64url(std::string_view data);
// An RS256 JWT for the given claims JSON, signed with a PEM private key.
Result<std::string> sign_jwt_rs256(const std::string& claims_json, const std::string& private_key_pem);

}  // namespace lifeboat::cloud
