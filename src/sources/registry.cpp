// Source kinds and their plan checks.
#include "sources/registry.h"

#include <fmt/format.h>

#include "core/platform_user.h"
#include "core/time.h"
#include "repo/snapshot_select.h"
#include "sources/files/files_backup.h"
#include "sources/files/files_restore.h"
#include "sources/mongodb/mongo_backup.h"
#include "sources/mongodb/mongo_restore.h"

namespace lifeboat::sources {

std::string source_tag(const std::string& source_name) { return "source:" + source_name; }

namespace {

std::vector<std::string> strings(const nlohmann::json& j, const char* key) {
  std::vector<std::string> out;
  if (j.contains(key) && j[key].is_array())
    for (const auto& v : j[key]) out.push_back(v.get<std::string>());
  return out;
}

// ---- files ----

Result<SourceBackup> files_backup(repo::Repository& repo, const std::string& name, const nlohmann::json& settings,
                                  ProgressCounters& progress) {
  files::FilesBackupOptions o;
  for (const auto& p : strings(settings, "paths")) o.paths.push_back(files::absolute_path(p));
  o.excludes = strings(settings, "exclude");
  o.tags = {source_tag(name)};
  o.hostname = platform::hostname();
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  repo::SnapshotFilter f;
  f.source = "files";
  f.tags = o.tags;
  if (auto parent = repo::select_snapshot(all, "latest", std::nullopt, f)) o.parent = *parent;
  LB_ASSIGN_OR_RETURN(auto r, files::backup_files(repo, o, progress));
  SourceBackup out{r.snapshot_id, r.snapshot.summary, {}};
  for (const auto& u : r.unreadable) out.warnings.push_back("unreadable: " + u);
  return out;
}

std::optional<repo::SnapshotRef> newest_tagged(const std::vector<repo::SnapshotRef>& all, const std::string& name,
                                               const std::string& source, std::optional<int64_t> at_ns) {
  repo::SnapshotFilter f;
  f.source = source;
  f.tags = {source_tag(name)};
  auto r = repo::select_snapshot(all, "latest", at_ns, f);
  if (!r) return std::nullopt;
  return *r;
}

Result<SourceRestore> files_restore(repo::Repository& repo, const std::string& name, const nlohmann::json& settings,
                                    std::optional<int64_t> at_ns, const std::vector<std::string>& validation,
                                    ProgressCounters& progress) {
  if (!settings.contains("target") || !settings["target"].is_string())
    return Error(Code::kInvalidArgument, fmt::format("source {}: the environment needs a target directory (target:)", name));
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  auto snap = newest_tagged(all, name, "files", at_ns);
  if (!snap)
    return Error(Code::kNotFound, fmt::format("source {}: no backup{}", name,
                                              at_ns ? " at or before " + format_rfc3339(*at_ns) : ""));
  files::FilesRestoreOptions o;
  o.target = settings["target"].get<std::string>();
  bool hashes = std::find(validation.begin(), validation.end(), "hashes") != validation.end();
  o.verify = hashes;
  LB_ASSIGN_OR_RETURN(auto r, files::restore_files(repo, snap->snapshot, o, progress));
  SourceRestore out;
  out.point_ns = snap->snapshot.time_ns;
  out.snapshot_id = snap->id;
  out.details = {{"target", o.target}, {"files", r.files}, {"bytes", r.bytes}};
  uint64_t expected = snap->snapshot.summary.value("files_new", uint64_t{0}) +
                      snap->snapshot.summary.value("files_changed", uint64_t{0}) +
                      snap->snapshot.summary.value("files_unmodified", uint64_t{0});
  for (const auto& v : validation) {
    if (v == "hashes")
      out.checks.push_back({"hashes", r.errors.empty() && r.files_verified == r.files,
                            fmt::format("{} of {} files re-read and equal to the backup", r.files_verified, r.files)});
    else if (v == "counts")
      out.checks.push_back({"counts", r.files == expected, fmt::format("{} files restored, {} backed up", r.files, expected)});
  }
  if (!r.errors.empty()) return Error(Code::kFatal, fmt::format("source {}: {} file(s) failed: {}", name, r.errors.size(), r.errors[0]));
  return out;
}

// ---- mongodb ----

Result<SourceBackup> mongodb_backup(repo::Repository& repo, const std::string& name, const nlohmann::json& settings,
                                    ProgressCounters& progress) {
  mongodb::MongoBackupOptions o;
  o.uri = settings.value("uri", "");
  o.databases = strings(settings, "databases");
  o.name = name;
  o.tags = {source_tag(name)};
  LB_ASSIGN_OR_RETURN(auto r, mongodb::backup_mongodb(repo, o, progress));
  return SourceBackup{r.snapshot_id, r.snapshot.summary, {}};
}

Result<SourceRestore> mongodb_restore(repo::Repository& repo, const std::string& name, const nlohmann::json& settings,
                                      std::optional<int64_t> at_ns, const std::vector<std::string>& validation,
                                      ProgressCounters& progress) {
  LB_ASSIGN_OR_RETURN(auto all, repo.list_snapshots());
  LB_ASSIGN_OR_RETURN(auto plan, mongodb::plan_mongodb_restore(all, name, at_ns));
  mongodb::MongoRestoreOptions o;
  o.uri = settings.value("uri", "");
  o.to_dir = settings.value("to_dir", "");
  if (!o.to_dir.empty()) o.uri.clear();
  o.drop = true;  // a restore into an environment replaces what is there
  o.databases = strings(settings, "databases");
  if (settings.contains("rename") && settings["rename"].is_object())
    for (const auto& [from, to] : settings["rename"].items()) o.rename.emplace_back(from, to.get<std::string>());
  LB_ASSIGN_OR_RETURN(auto r, mongodb::restore_mongodb(repo, plan, o, progress));
  SourceRestore out;
  out.point_ns = plan.point_ns;
  out.snapshot_id = plan.full.id;
  out.limit = plan.limit;
  uint64_t expected = 0;
  bool hashes_ok = true;
  for (const auto& c : r.collections) {
    expected += c.count;
    hashes_ok = hashes_ok && c.hash_ok;
  }
  out.details = {{"target", o.to_dir.empty() ? mongodb::redact_uri(o.uri) : o.to_dir}, {"collections", r.collections.size()},
                 {"documents", r.documents}, {"oplog_entries_applied", r.ops_applied}, {"slices", plan.slices.size()}};
  for (const auto& v : validation) {
    if (v == "counts")
      out.checks.push_back({"counts", r.documents == expected,
                            fmt::format("{} documents in {} collections, as recorded at backup", r.documents, r.collections.size())});
    else if (v == "hashes")
      out.checks.push_back({"hashes", hashes_ok, "every collection's content hash equals the one recorded at backup"});
  }
  return out;
}

std::optional<int64_t> mongodb_newest_point(const std::vector<repo::SnapshotRef>& all, const std::string& name) {
  auto plan = mongodb::plan_mongodb_restore(all, name, std::nullopt);
  if (!plan) return std::nullopt;
  return plan->point_ns;
}

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
  return [kind](const nlohmann::json&, bool, std::vector<std::string>& p) {  // NOLINT
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
       },
       files_backup, files_restore,
       [](const std::vector<repo::SnapshotRef>& all, const std::string& name) -> std::optional<int64_t> {
         auto s = newest_tagged(all, name, "files", std::nullopt);
         if (!s) return std::nullopt;
         return s->snapshot.time_ns;
       }},
      {"mongodb", true, "MongoDB: full backups, continuous oplog capture, point-in-time restore",
       [](const nlohmann::json& s, bool env, std::vector<std::string>& p) {
         require_string(s, "uri", env, p);
         optional_string_list(s, "databases", false, p);
         if (s.contains("rename") && !s["rename"].is_object()) p.push_back("rename: expected a map OLD: NEW");
         unknown_keys(s, {"uri", "databases", "rename", "to_dir"}, p);
       },
       mongodb_backup, mongodb_restore, mongodb_newest_point},
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
