// The list of source kinds: one line per kind.
#include "sources/registry.h"

#include <fmt/format.h>

#include "core/time.h"
#include "repo/snapshot_select.h"
#include "sources/config/config_source.h"
#include "sources/files/files_source.h"
#include "sources/firestore/firestore_source.h"
#include "sources/gcs_bucket/gcs_bucket_source.h"
#include "sources/models/models_source.h"
#include "sources/mongodb/mongodb_source.h"

namespace lifeboat::sources {

std::string source_tag(const std::string& source_name) { return "source:" + source_name; }

std::string backup_check_line(const nlohmann::json& check) {
  const char* verdict = check.value("skipped", false) ? "skipped" : check.value("ok", false) ? "ok" : "FAILED";
  return fmt::format("Check {}: {} — {}", check.value("check", ""), verdict, check.value("detail", ""));
}

std::string flag_of(const KindOption& option) {
  if (!option.flag.empty()) {
    // "-t,--target": the long name; "url": a positional argument, named as written.
    std::string f = option.flag;
    if (auto comma = f.rfind(','); comma != std::string::npos) f = f.substr(comma + 1);
    return f;
  }
  std::string f = "--" + option.key;
  for (auto& ch : f)
    if (ch == '_') ch = '-';
  return f;
}

std::vector<CheckResult> all_failed(const std::vector<std::string>& checks, const std::string& why) {
  std::vector<CheckResult> out;
  for (const auto& c : checks) out.push_back({c, false, why});
  return out;
}

std::string problems_as_flags(const std::vector<KindOption>& options, const std::vector<SettingsProblem>& problems) {
  std::vector<std::string> said;
  for (const auto& p : problems) {
    std::string where = p.key;
    for (const auto& o : options)
      if (p.key == o.key || p.key.rfind(o.key + ".", 0) == 0) where = flag_of(o);
    said.push_back(fmt::format("{}: {}", where, p.message));
  }
  return fmt::format("{}", fmt::join(said, "; "));
}

Status no_backup_error(const std::string& source_name, std::optional<int64_t> at_ns, const std::vector<repo::SnapshotRef>& all,
                       const std::string& snapshot_source) {
  if (at_ns) {
    // Why there is none, as the snapshot selection says it (the oldest one, and by how much it missed).
    repo::SnapshotFilter f;
    f.source = snapshot_source;
    f.tags = {source_tag(source_name)};
    if (auto why = repo::select_snapshot(all, "latest", at_ns, f); !why) return why.status().with_context("source " + source_name);
  }
  return Error(Code::kNotFound, fmt::format("source {}: no backup{}", source_name, at_ns ? " at or before " + format_rfc3339(*at_ns) : ""));
}

std::optional<repo::SnapshotRef> newest_snapshot(const std::vector<repo::SnapshotRef>& all, const std::string& snapshot_source,
                                                 const std::string& name, std::optional<int64_t> at_ns) {
  repo::SnapshotFilter f;
  f.source = snapshot_source;
  f.tags = {source_tag(name)};
  auto r = repo::select_snapshot(all, "latest", at_ns, f);
  if (!r) return std::nullopt;
  return *r;
}

const std::vector<const SourceKind*>& source_kinds() {
  static const std::vector<const SourceKind*> kinds = {
      &files::files_source_kind(),
      &mongodb::mongodb_source_kind(),
      &gcs_bucket::gcs_bucket_source_kind(),
      &config::config_source_kind(),
      &models::models_source_kind(),
      &firestore::firestore_source_kind(),
  };
  return kinds;
}

const std::vector<std::string>& planned_source_kinds() {
  static const std::vector<std::string> planned = {};
  return planned;
}

const SourceKind* find_source_kind(const std::string& name) {
  for (const auto* k : source_kinds())
    if (k->name == name) return k;
  return nullptr;
}

}  // namespace lifeboat::sources
