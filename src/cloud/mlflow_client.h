// An MLflow tracking server's REST API (2.0): registered models, model versions and aliases, the
// experiments and runs a restore needs, and artifacts through the server's artifact proxy
// (`mlflow-artifacts:` URIs, /api/2.0/mlflow-artifacts/artifacts).
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <string>
#include <vector>

#include "cloud/http.h"
#include "core/bytes.h"
#include "core/status.h"

namespace lifeboat::cloud {

struct ArtifactFile {
  std::string path;  // relative to the listed root
  uint64_t size = 0;
};

class MlflowClient {
 public:
  explicit MlflowClient(std::string url);  // http://HOST:PORT (a trailing / is dropped)
  const std::string& url() const { return url_; }

  // GET/POST on /api/2.0/mlflow/<method>; an error answer becomes kNotFound (RESOURCE_DOES_NOT_EXIST),
  // kAlreadyExists (RESOURCE_ALREADY_EXISTS) or kIo, with the server's error code and message.
  Result<nlohmann::json> get(const std::string& method, const std::vector<std::pair<std::string, std::string>>& query) const;
  Result<nlohmann::json> post(const std::string& method, const nlohmann::json& body) const;
  // Another HTTP method with a JSON body (the API's PATCH …/update, DELETE …/delete-tag and …/alias).
  Result<nlohmann::json> send(const std::string& http_method, const std::string& method, const nlohmann::json& body) const;

  Status registered_models(const std::function<Status(const nlohmann::json&)>& fn) const;
  Result<nlohmann::json> registered_model(const std::string& name) const;
  // Every version of `name` (newest first, as the server lists them).
  Status model_versions(const std::string& name, const std::function<Status(const nlohmann::json&)>& fn) const;
  // The artifact proxy path (no scheme) of a version's artifacts: "0/models/m-…/artifacts".
  Result<std::string> artifact_root(const std::string& name, const std::string& version) const;
  // Every file below `root` (recursively), paths relative to it.
  Result<std::vector<ArtifactFile>> list_artifacts(const std::string& root) const;
  // An artifact's bytes handed to `sink` as they arrive (never whole in memory); returns its size. A
  // transfer cut short is kUnavailable after part of it was handed over.
  Result<uint64_t> download(const std::string& path, const std::function<Status(ByteView)>& sink) const;
  Status upload(const std::string& path, ByteView data) const;
  // The same, the body read piece by piece (HttpRequest::body_reader): a large artifact never sits in memory whole.
  Status upload_stream(const std::string& path, uint64_t size, std::function<Result<size_t>(uint8_t*, size_t)> reader) const;

 private:
  Result<nlohmann::json> answer(const Result<HttpResponse>& r, const std::string& what) const;
  std::string url_;
  std::string shown_;  // url_ as messages show it (core/names.h redact_url)
};

// "mlflow-artifacts:/0/x" or "mlflow-artifacts://host/0/x" → "0/x"; kInvalidArgument for other schemes.
Result<std::string> artifact_proxy_path(const std::string& uri);

}  // namespace lifeboat::cloud
