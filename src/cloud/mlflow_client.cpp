#include "cloud/mlflow_client.h"

#include <fmt/format.h>

#include "cloud/http.h"
#include "core/names.h"

namespace lifeboat::cloud {

namespace {
std::string query_string(const std::vector<std::pair<std::string, std::string>>& query) {
  std::string q;
  for (const auto& [k, v] : query) q += (q.empty() ? "?" : "&") + url_encode(k) + "=" + url_encode(v);
  return q;
}
}  // namespace

MlflowClient::MlflowClient(std::string url) : url_(std::move(url)) {
  while (!url_.empty() && url_.back() == '/') url_.pop_back();
  shown_ = redact_url(url_);
}

Result<nlohmann::json> MlflowClient::answer(const Result<HttpResponse>& r, const std::string& what) const {
  if (!r) return r.status().with_context(fmt::format("MLflow at {}: {}", shown_, what));
  nlohmann::json j;
  try {
    j = r->body.empty() ? nlohmann::json::object() : nlohmann::json::parse(r->body.begin(), r->body.end());
  } catch (const std::exception&) {
    if (r->status == 200) return Error(Code::kIo, fmt::format("MLflow at {}: {}: the answer is not JSON", shown_, what));
  }
  if (r->status == 200) return j;
  std::string code = j.is_object() ? j.value("error_code", "") : "";
  std::string msg = fmt::format("MLflow at {}: {}: HTTP {} {} {}", shown_, what, r->status, code,
                                j.is_object() ? j.value("message", "") : "");
  if (code == "RESOURCE_DOES_NOT_EXIST" || r->status == 404) return Error(Code::kNotFound, msg);
  if (code == "RESOURCE_ALREADY_EXISTS") return Error(Code::kAlreadyExists, msg);
  if (r->status == 429 || r->status >= 500) return Error(Code::kUnavailable, msg);
  return Error(Code::kIo, msg);
}

Result<nlohmann::json> MlflowClient::get(const std::string& method, const std::vector<std::pair<std::string, std::string>>& query) const {
  HttpRequest req;
  req.url = url_ + "/api/2.0/mlflow/" + method + query_string(query);
  req.timeout_s = 120;
  return answer(http_send(req), method);
}

Result<nlohmann::json> MlflowClient::post(const std::string& method, const nlohmann::json& body) const {
  return send("POST", method, body);
}

Result<nlohmann::json> MlflowClient::send(const std::string& http_method, const std::string& method, const nlohmann::json& body) const {
  std::string text = body.dump();
  HttpRequest req;
  req.method = http_method;
  req.url = url_ + "/api/2.0/mlflow/" + method;
  req.headers = {{"Content-Type", "application/json"}};
  req.body = as_bytes(text);
  req.timeout_s = 120;
  return answer(http_send(req), method);
}

Status MlflowClient::registered_models(const std::function<Status(const nlohmann::json&)>& fn) const {
  std::string token;
  do {
    std::vector<std::pair<std::string, std::string>> q = {{"max_results", "100"}};
    if (!token.empty()) q.emplace_back("page_token", token);
    LB_ASSIGN_OR_RETURN(auto page, get("registered-models/search", q));
    for (const auto& m : page.value("registered_models", nlohmann::json::array())) LB_RETURN_IF_ERROR(fn(m));
    token = page.value("next_page_token", "");
  } while (!token.empty());
  return Status::ok();
}

Result<nlohmann::json> MlflowClient::registered_model(const std::string& name) const {
  LB_ASSIGN_OR_RETURN(auto j, get("registered-models/get", {{"name", name}}));
  return j.value("registered_model", nlohmann::json::object());
}

Status MlflowClient::model_versions(const std::string& name, const std::function<Status(const nlohmann::json&)>& fn) const {
  std::string token;
  std::string quoted = "'" + name + "'";
  do {
    std::vector<std::pair<std::string, std::string>> q = {{"filter", "name=" + quoted}, {"max_results", "200"}};
    if (!token.empty()) q.emplace_back("page_token", token);
    LB_ASSIGN_OR_RETURN(auto page, get("model-versions/search", q));
    for (const auto& v : page.value("model_versions", nlohmann::json::array())) LB_RETURN_IF_ERROR(fn(v));
    token = page.value("next_page_token", "");
  } while (!token.empty());
  return Status::ok();
}

Result<std::string> MlflowClient::artifact_root(const std::string& name, const std::string& version) const {
  LB_ASSIGN_OR_RETURN(auto j, get("model-versions/get-download-uri", {{"name", name}, {"version", version}}));
  return artifact_proxy_path(j.value("artifact_uri", ""));
}

Result<std::vector<ArtifactFile>> MlflowClient::list_artifacts(const std::string& root) const {
  std::vector<ArtifactFile> out;
  std::vector<std::string> dirs = {""};
  while (!dirs.empty()) {
    std::string rel = dirs.back();
    dirs.pop_back();
    HttpRequest req;
    req.url = url_ + "/api/2.0/mlflow-artifacts/artifacts" + query_string({{"path", rel.empty() ? root : root + "/" + rel}});
    LB_ASSIGN_OR_RETURN(auto j, answer(http_send(req), "listing artifacts " + root + "/" + rel));
    for (const auto& f : j.value("files", nlohmann::json::array())) {
      std::string p = f.value("path", "");
      size_t slash = p.rfind('/');
      std::string leaf = slash == std::string::npos ? p : p.substr(slash + 1);
      std::string child = rel.empty() ? leaf : rel + "/" + leaf;
      if (leaf.empty() || leaf == "." || leaf == "..") return Error(Code::kIo, fmt::format("MLflow listed an artifact named '{}'", p));
      if (f.value("is_dir", false)) dirs.push_back(child);
      else out.push_back({child, f.value("file_size", uint64_t{0})});
    }
  }
  std::sort(out.begin(), out.end(), [](const ArtifactFile& a, const ArtifactFile& b) { return a.path < b.path; });
  return out;
}

Result<uint64_t> MlflowClient::download(const std::string& path, const std::function<Status(ByteView)>& sink) const {
  HttpRequest req;
  req.url = url_ + "/api/2.0/mlflow-artifacts/artifacts/" + url_encode(path, true);
  req.timeout_s = 6 * 3600;  // a model of many GB; a stalled transfer still fails within a minute (low-speed limit)
  req.body_sink = sink;
  LB_ASSIGN_OR_RETURN(auto r, http_send(req));
  if (r.status != 200) return answer(r, "downloading " + path).status();
  return r.streamed;
}

Status MlflowClient::upload(const std::string& path, ByteView data) const {
  HttpRequest req;
  req.method = "PUT";
  req.url = url_ + "/api/2.0/mlflow-artifacts/artifacts/" + url_encode(path, true);
  req.headers = {{"Content-Type", "application/octet-stream"}};
  req.body = data;
  req.timeout_s = 3600;
  return answer(http_send(req), "uploading " + path).status();
}

Status MlflowClient::upload_stream(const std::string& path, uint64_t size,
                                  std::function<Result<size_t>(uint8_t*, size_t)> reader) const {
  HttpRequest req;
  req.method = "PUT";
  req.url = url_ + "/api/2.0/mlflow-artifacts/artifacts/" + url_encode(path, true);
  req.headers = {{"Content-Type", "application/octet-stream"}};
  req.body_reader = std::move(reader);
  req.body_size = size;
  req.timeout_s = 3600;
  return answer(http_send(req), "uploading " + path).status();
}

Result<std::string> artifact_proxy_path(const std::string& uri) {
  const std::string scheme = "mlflow-artifacts:";
  if (uri.rfind(scheme, 0) != 0)
    return Error(Code::kInvalidArgument, fmt::format("artifacts at {} are not served by the tracking server's artifact proxy "
                                                     "(start it with --artifacts-destination, or back up with --path)", uri));
  std::string rest = uri.substr(scheme.size());
  if (rest.rfind("//", 0) == 0) {  // mlflow-artifacts://host:port/path
    size_t slash = rest.find('/', 2);
    rest = slash == std::string::npos ? "" : rest.substr(slash);
  }
  while (!rest.empty() && rest.front() == '/') rest.erase(0, 1);
  return rest;
}

}  // namespace lifeboat::cloud
