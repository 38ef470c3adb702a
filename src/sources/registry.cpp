// Source kinds and their plan checks.
#include "sources/registry.h"

#include <fmt/format.h>

namespace lifeboat::sources {

namespace {

void require_string(const nlohmann::json& s, const char* key, bool env, std::vector<std::string>& p) {
  if (!s.contains(key)) {
    if (!env) p.push_back(fmt::format("{}: required", key));
  } else if (!s[key].is_string() || s[key].get<std::string>().empty()) {
    p.push_back(fmt::format("{}: expected a non-empty string", key));
  }
}

void optional_string_list(const nlohmann::json& s, const char* key, bool required, std::vector<std::string>& p) {
  if (!s.contains(key)) {
    if (required) p.push_back(fmt::format("{}: required (a list)", key));
    return;
  }
  const auto& v = s[key];
  if (!v.is_array() || (required && v.empty())) {
    p.push_back(fmt::format("{}: expected a {}list of strings", key, required ? "non-empty " : ""));
    return;
  }
  for (const auto& x : v)
    if (!x.is_string()) p.push_back(fmt::format("{}: expected strings only", key));
}

void unknown_keys(const nlohmann::json& s, const std::vector<std::string>& known, std::vector<std::string>& p) {
  for (const auto& [k, v] : s.items())
    if (std::find(known.begin(), known.end(), k) == known.end())
      p.push_back(fmt::format("{}: unknown setting (known: {})", k, fmt::join(known, ", ")));
}

std::function<void(const nlohmann::json&, bool, std::vector<std::string>&)> not_built(const std::string& kind) {
  return [kind](const nlohmann::json&, bool, std::vector<std::string>& p) {
    p.push_back(fmt::format("kind: source kind {} is not built yet in this Lifeboat: remove the source or upgrade", kind));
  };
}

}  // namespace

const std::vector<SourceKind>& source_kinds() {
  static const std::vector<SourceKind> kinds = {
      {"files", true, "files and directories",
       [](const nlohmann::json& s, bool env, std::vector<std::string>& p) {
         optional_string_list(s, "paths", !env, p);
         optional_string_list(s, "exclude", false, p);
         if (s.contains("target") && !s["target"].is_string()) p.push_back("target: expected a directory path");
         unknown_keys(s, {"paths", "exclude", "target"}, p);
       }},
      {"mongodb", true, "MongoDB: full backups, continuous oplog capture, point-in-time restore",
       [](const nlohmann::json& s, bool env, std::vector<std::string>& p) {
         require_string(s, "uri", env, p);
         optional_string_list(s, "databases", false, p);
         if (s.contains("rename") && !s["rename"].is_object()) p.push_back("rename: expected a map OLD: NEW");
         unknown_keys(s, {"uri", "databases", "rename", "to_dir"}, p);
       }},
      {"firestore", false, "Firestore consistent export", not_built("firestore")},
      {"gcs_bucket", false, "Google Cloud Storage bucket", not_built("gcs_bucket")},
      {"models", false, "ML model artifacts", not_built("models")},
      {"config", false, "application configuration and secrets", not_built("config")},
  };
  return kinds;
}

const SourceKind* find_source_kind(const std::string& name) {
  for (const auto& k : source_kinds())
    if (k.name == name) return &k;
  return nullptr;
}

}  // namespace lifeboat::sources
