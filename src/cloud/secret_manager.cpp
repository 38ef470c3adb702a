#include "cloud/secret_manager.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>
#include <cstdlib>

#include "core/crc32c.h"

namespace lifeboat::cloud {

namespace {
constexpr const char* kCloudPlatformScope = "https://www.googleapis.com/auth/cloud-platform";

// The API's error body: {"error": {"code", "message", "status"}} → "STATUS: message".
std::string api_error(const HttpResponse& r) {
  try {
    auto j = nlohmann::json::parse(r.body.begin(), r.body.end());
    const auto& e = j.at("error");
    return fmt::format("{}: {}", e.value("status", std::to_string(r.status)), e.value("message", ""));
  } catch (const std::exception&) {
    return fmt::format("HTTP {}", r.status);
  }
}
}  // namespace

Result<std::shared_ptr<SecretManagerClient>> SecretManagerClient::from_environment() {
  const char* ep = std::getenv("LIFEBOAT_SECRETMANAGER_ENDPOINT");
  LB_ASSIGN_OR_RETURN(auto auth, GcpAuth::from_environment(kCloudPlatformScope));
  return std::make_shared<SecretManagerClient>(ep && *ep ? ep : "https://secretmanager.googleapis.com", auth);
}

Result<nlohmann::json> SecretManagerClient::call(const std::string& method, const std::string& path, const nlohmann::json* body,
                                                 const std::string& what) const {
  std::string text = body ? body->dump() : "";
  std::vector<std::pair<std::string, std::string>> headers;
  if (body) headers.emplace_back("Content-Type", "application/json");
  LB_ASSIGN_OR_RETURN(auto r, send_retrying(method, endpoint_ + "/v1/" + path, headers, as_bytes(text)));
  if (r.status >= 200 && r.status < 300) {
    try {
      return r.body.empty() ? nlohmann::json::object() : nlohmann::json::parse(r.body.begin(), r.body.end());
    } catch (const std::exception&) {
      return Error(Code::kIo, fmt::format("Secret Manager: {}: the answer is not JSON", what));
    }
  }
  std::string msg = fmt::format("Secret Manager: {}: {}", what, api_error(r));
  switch (r.status) {
    case 401:
    case 403:
      return Error(Code::kIo, msg + " (the credentials need the Secret Manager Admin role, or Secret Accessor to back up)");
    case 404: return Error(Code::kNotFound, msg);
    case 409: return Error(Code::kAlreadyExists, msg);
    case 429: return Error(Code::kUnavailable, msg + " (quota exhausted after retries: try again later)");
    default: return Error(r.status >= 500 ? Code::kUnavailable : Code::kIo, msg);
  }
}

Status SecretManagerClient::list_pages(const std::string& path, const std::string& key, const std::string& what,
                                       const std::function<Status(const nlohmann::json&)>& fn) const {
  std::string token;
  do {
    std::string page_path = path + "?pageSize=250" + (token.empty() ? "" : "&pageToken=" + url_encode(token));
    LB_ASSIGN_OR_RETURN(auto page, call("GET", page_path, nullptr, what));
    for (const auto& item : page.value(key, nlohmann::json::array())) LB_RETURN_IF_ERROR(fn(item));
    token = page.value("nextPageToken", "");
  } while (!token.empty());
  return Status::ok();
}

Status SecretManagerClient::list_secrets(const std::string& project, const std::function<Status(const nlohmann::json&)>& fn) const {
  return list_pages(project + "/secrets", "secrets", "listing secrets of " + project, fn);
}

Status SecretManagerClient::list_versions(const std::string& secret, const std::function<Status(const nlohmann::json&)>& fn) const {
  return list_pages(secret + "/versions", "versions", "listing versions of " + secret, fn);
}

Result<Bytes> SecretManagerClient::access(const std::string& version) const {
  LB_ASSIGN_OR_RETURN(auto j, call("GET", version + ":access", nullptr, "reading " + version));
  const auto& payload = j.value("payload", nlohmann::json::object());
  auto data = base64_decode(payload.value("data", ""));
  if (!data) return Error(Code::kIo, fmt::format("Secret Manager: {}: the payload is not base64", version));
  if (payload.contains("dataCrc32c")) {
    const auto& c = payload["dataCrc32c"];
    uint64_t want = c.is_string() ? std::strtoull(c.get<std::string>().c_str(), nullptr, 10) : c.get<uint64_t>();
    if (crc32c(*data) != want)
      return Error(Code::kCorrupt, fmt::format("Secret Manager: {}: the payload does not match its CRC32C", version));
  }
  return std::move(*data);
}

Result<nlohmann::json> SecretManagerClient::get_secret(const std::string& secret) const {
  return call("GET", secret, nullptr, "reading " + secret);
}

Result<nlohmann::json> SecretManagerClient::create_secret(const std::string& project, const std::string& id,
                                                          const nlohmann::json& resource) const {
  return call("POST", project + "/secrets?secretId=" + url_encode(id), &resource, fmt::format("creating {}/secrets/{}", project, id));
}

Result<nlohmann::json> SecretManagerClient::patch_secret(const std::string& secret, const nlohmann::json& resource,
                                                         const std::string& update_mask) const {
  return call("PATCH", secret + "?updateMask=" + url_encode(update_mask), &resource, "updating " + secret);
}

Result<nlohmann::json> SecretManagerClient::add_version(const std::string& secret, ByteView payload) const {
  nlohmann::json body = {{"payload", {{"data", base64_encode(payload)}, {"dataCrc32c", std::to_string(crc32c(payload))}}}};
  return call("POST", secret + ":addVersion", &body, "adding a version to " + secret);
}

Result<nlohmann::json> SecretManagerClient::get_version(const std::string& version) const {
  return call("GET", version, nullptr, "reading " + version);
}

Result<nlohmann::json> SecretManagerClient::change_version(const std::string& version, const std::string& action) const {
  nlohmann::json body = nlohmann::json::object();
  return call("POST", version + ":" + action, &body, fmt::format("{} of {}", action, version));
}

int64_t secret_version_number(const std::string& name) {
  size_t slash = name.rfind('/');
  std::string n = slash == std::string::npos ? name : name.substr(slash + 1);
  return n.empty() || n.size() > 18 || n.find_first_not_of("0123456789") != std::string::npos ? 0 : std::stoll(n);
}

int64_t secret_version_number(const nlohmann::json& alias_target) {
  if (alias_target.is_string()) return secret_version_number(alias_target.get<std::string>());
  return alias_target.is_number_integer() ? alias_target.get<int64_t>() : 0;
}

Status check_secret_id(const std::string& id, const std::string& what) {
  bool ok = !id.empty() && id.size() <= 255 &&
            std::all_of(id.begin(), id.end(), [](char c) { return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_'; });
  if (ok) return Status::ok();
  return Error(Code::kInvalidArgument, fmt::format("{} with the id {:?}: a secret id is letters, digits, '-' and '_' (1 to 255); "
                                                   "refusing it", what, id));
}

std::string resource_id(const std::string& name) {
  size_t slash = name.rfind('/');
  return slash == std::string::npos ? name : name.substr(slash + 1);
}

}  // namespace lifeboat::cloud
