// GCP credentials: service-account JWT flow, static tokens, metadata server.
#include "cloud/gcp_auth.h"

#include <fmt/format.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <cstdlib>
#include <fstream>
#include <nlohmann/json.hpp>
#include <sstream>

#include "cloud/http.h"
#include "core/bytes.h"
#include "core/time.h"

namespace lifeboat::cloud {

std::string base64url(std::string_view data) {
  std::string s = base64_encode(as_bytes(data));
  for (auto& c : s) c = c == '+' ? '-' : c == '/' ? '_' : c;
  while (!s.empty() && s.back() == '=') s.pop_back();
  return s;
}

Result<std::string> sign_jwt_rs256(const std::string& claims_json, const std::string& pem) {
  std::string input = base64url(R"({"alg":"RS256","typ":"JWT"})") + "." + base64url(claims_json);
  BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  EVP_PKEY* key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
  BIO_free(bio);
  if (!key) return Error(Code::kInvalidArgument, "service-account private_key is not a PEM private key");
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  size_t len = 0;
  std::string sig;
  bool ok = EVP_DigestSignInit(ctx, nullptr, EVP_sha256(), nullptr, key) == 1 &&
            EVP_DigestSign(ctx, nullptr, &len, reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
  if (ok) {
    sig.resize(len);
    ok = EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(sig.data()), &len,
                        reinterpret_cast<const unsigned char*>(input.data()), input.size()) == 1;
    sig.resize(len);
  }
  EVP_MD_CTX_free(ctx);
  EVP_PKEY_free(key);
  if (!ok) return Error(Code::kFatal, "signing the service-account JWT failed");
  return input + "." + base64url(sig);
}

std::shared_ptr<GcpAuth> GcpAuth::from_service_account_json(const std::string& text, const std::string& scope,
                                                           Status* error) {
  auto j = nlohmann::json::parse(text, nullptr, false);
  if (j.is_discarded() || j.value("type", "") != "service_account" || !j.contains("private_key") ||
      !j.contains("client_email")) {
    *error = Error(Code::kInvalidArgument, "not a service-account key file (needs type service_account, "
                                           "client_email, private_key)");
    return nullptr;
  }
  auto a = std::make_shared<GcpAuth>();
  a->kind_ = Kind::kServiceAccount;
  a->scope_ = scope;
  a->client_email_ = j["client_email"];
  a->private_key_pem_ = j["private_key"];
  a->token_uri_ = j.value("token_uri", "https://oauth2.googleapis.com/token");
  return a;
}

Result<std::shared_ptr<GcpAuth>> GcpAuth::from_environment(const std::string& scope) {
  if (const char* t = std::getenv("GOOGLE_OAUTH_ACCESS_TOKEN"); t && *t) {
    auto a = std::make_shared<GcpAuth>();
    a->kind_ = Kind::kStatic;
    a->token_ = t;
    a->refresh_at_ns_ = INT64_MAX;
    return a;
  }
  if (const char* path = std::getenv("GOOGLE_APPLICATION_CREDENTIALS"); path && *path) {
    std::ifstream in(path);
    if (!in) return Error(Code::kInvalidArgument, fmt::format("GOOGLE_APPLICATION_CREDENTIALS: cannot read {}", path));
    std::stringstream ss;
    ss << in.rdbuf();
    Status err;
    auto a = from_service_account_json(ss.str(), scope, &err);
    if (!a) return err.with_context(path);
    return a;
  }
  auto a = std::make_shared<GcpAuth>();
  a->kind_ = Kind::kMetadata;
  const char* host = std::getenv("GCE_METADATA_HOST");
  a->metadata_host_ = host && *host ? host : "metadata.google.internal";
  return a;
}

Result<std::pair<std::string, int64_t>> GcpAuth::fetch_token() {
  HttpRequest req;
  req.timeout_s = 30;
  if (kind_ == Kind::kMetadata) {
    req.url = fmt::format("http://{}/computeMetadata/v1/instance/service-accounts/default/token", metadata_host_);
    req.headers = {{"Metadata-Flavor", "Google"}};
  } else {
    int64_t now = now_unix_ns() / 1000000000LL;
    nlohmann::json claims = {{"iss", client_email_}, {"scope", scope_}, {"aud", token_uri_}, {"iat", now}, {"exp", now + 3600}};
    LB_ASSIGN_OR_RETURN(std::string jwt, sign_jwt_rs256(claims.dump(), private_key_pem_));
    req.method = "POST";
    req.url = token_uri_;
    req.headers = {{"Content-Type", "application/x-www-form-urlencoded"}};
    static thread_local std::string form;
    form = "grant_type=" + url_encode("urn:ietf:params:oauth:grant-type:jwt-bearer") + "&assertion=" + jwt;
    req.body = as_bytes(form);
  }
  auto r = http_send(req);
  // No metadata server by that name: not a Google Cloud machine, and retrying will not make one. Say which
  // credentials to set instead of retrying for seconds.
  if (!r && kind_ == Kind::kMetadata && is_unresolved_host(r.status()))
    return Error(
        Code::kInvalidArgument,
        fmt::format("no Google credentials: GOOGLE_OAUTH_ACCESS_TOKEN and GOOGLE_APPLICATION_CREDENTIALS are "
                    "not set, and the metadata server {} does not resolve (not a Google Cloud machine); set "
                    "GOOGLE_APPLICATION_CREDENTIALS to a service-account key file, or GOOGLE_OAUTH_ACCESS_TOKEN "
                    "to an access token",
                    metadata_host_));
  if (!r) return r.status().with_context("getting a Google access token");
  if (r->status != 200) return http_status_error(*r, fmt::format("getting a Google access token from {}", req.url));
  auto j = nlohmann::json::parse(r->body.begin(), r->body.end(), nullptr, false);
  if (j.is_discarded() || !j.contains("access_token"))
    return Error(Code::kIo, fmt::format("token endpoint {} answered without an access_token", req.url));
  return std::make_pair(j["access_token"].get<std::string>(), j.value("expires_in", int64_t{3600}));
}

Result<std::string> GcpAuth::authorization() {
  std::lock_guard lk(mu_);
  int64_t now = now_unix_ns();
  if (token_.empty() || now >= refresh_at_ns_) {
    LB_ASSIGN_OR_RETURN(auto t, fetch_token());
    token_ = t.first;
    int64_t margin = std::min<int64_t>(300, t.second / 10);
    refresh_at_ns_ = now + (t.second - margin) * 1000000000LL;
  }
  return "Bearer " + token_;
}

}  // namespace lifeboat::cloud
