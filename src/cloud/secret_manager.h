// Secret Manager's REST API (v1): secrets with their labels, annotations, replication and version
// aliases; versions with their states; payloads read and written with their CRC32C. Payloads are
// returned to the caller only; no message here ever contains one.
#pragma once

#include <functional>
#include <memory>
#include <nlohmann/json.hpp>
#include <string>

#include "cloud/gcs_client.h"

namespace lifeboat::cloud {

class SecretManagerClient : public GoogleApiClient {
 public:
  // LIFEBOAT_SECRETMANAGER_ENDPOINT or Google's, with credentials from the environment (cloud/gcp_auth).
  static Result<std::shared_ptr<SecretManagerClient>> from_environment();
  using GoogleApiClient::GoogleApiClient;

  // Every secret of "projects/P", page by page (a failed page fails the listing).
  Status list_secrets(const std::string& project, const std::function<Status(const nlohmann::json&)>& fn) const;
  // Every version of "projects/P/secrets/S", newest first as the API lists them.
  Status list_versions(const std::string& secret, const std::function<Status(const nlohmann::json&)>& fn) const;
  // A version's payload, checked against the dataCrc32c the server sent (kCorrupt when it differs).
  Result<Bytes> access(const std::string& version) const;
  // kNotFound when absent.
  Result<nlohmann::json> get_secret(const std::string& secret) const;
  // Creates "projects/P/secrets/ID" from `resource` (replication, labels, annotations, …).
  Result<nlohmann::json> create_secret(const std::string& project, const std::string& id, const nlohmann::json& resource) const;
  Result<nlohmann::json> patch_secret(const std::string& secret, const nlohmann::json& resource, const std::string& update_mask) const;
  // Adds a version with `payload` (sent with its CRC32C); returns the new version's resource.
  Result<nlohmann::json> add_version(const std::string& secret, ByteView payload) const;
  // A version's resource (its state among others); kNotFound when absent.
  Result<nlohmann::json> get_version(const std::string& version) const;
  // "enable", "disable" or "destroy".
  Result<nlohmann::json> change_version(const std::string& version, const std::string& action) const;

 private:
  // Every item under `key` of every page of a list call (a failed page fails the listing).
  Status list_pages(const std::string& path, const std::string& key, const std::string& what,
                    const std::function<Status(const nlohmann::json&)>& fn) const;
  Result<nlohmann::json> call(const std::string& method, const std::string& path, const nlohmann::json* body,
                              const std::string& what) const;
};

// The number at the end of ".../versions/N", or a version alias's target ("3" or 3); 0 when there is
// none or it is not a number of at most 18 digits.
int64_t secret_version_number(const std::string& version_name);
int64_t secret_version_number(const nlohmann::json& alias_target);
// A secret id as Secret Manager allows them (letters, digits, '-' and '_', 1 to 255): anything else
// (a path, a name with '/', "..") is refused, naming `what`, before it goes into a URL or a path.
Status check_secret_id(const std::string& id, const std::string& what);
// The last component of a resource name ("projects/p/secrets/db-password" → "db-password").
std::string resource_id(const std::string& name);

}  // namespace lifeboat::cloud
