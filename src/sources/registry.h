// The source kinds a plan may name: which are built, and how each checks its own plan section. A new
// source joins by adding its entry here; plan, daemon, drill and report code stay as they are.
#pragma once

#include <functional>
#include <nlohmann/json.hpp>
#include <optional>
#include <string>
#include <vector>

#include "core/progress.h"
#include "repo/repository.h"

namespace lifeboat::sources {

// Every snapshot a plan source makes carries this tag, so drills, retention and reports find them.
std::string source_tag(const std::string& source_name);

struct CheckResult {
  std::string name;  // "counts", "hashes", …
  bool ok = false;
  std::string detail;
};

struct SourceBackup {
  std::string snapshot_id;
  nlohmann::json summary;
  std::vector<std::string> warnings;
};

struct SourceRestore {
  int64_t point_ns = 0;      // the restored state is the source's state as of this instant
  std::string snapshot_id;   // the snapshot (full backup) it came from
  std::string limit;         // why point_ns lies before the requested instant, when it does
  std::vector<CheckResult> checks;
  nlohmann::json details = nlohmann::json::object();
};

struct SourceKind {
  std::string name;
  bool built = false;
  std::string summary;
  // Appends "key: problem" lines for the kind-specific settings of one source (or of an environment
  // override when `environment` is true: then nothing is required).
  std::function<void(const nlohmann::json& settings, bool environment, std::vector<std::string>& problems)> check;
  // Built kinds only. `settings` are the plan's (for restore: merged with the environment's).
  std::function<Result<SourceBackup>(repo::Repository&, const std::string& name, const nlohmann::json& settings,
                                     ProgressCounters&)>
      backup;
  // Restores the state as of `at_ns` (default: newest) where the settings say (uri, target) and runs
  // the named validation checks on what was restored.
  std::function<Result<SourceRestore>(repo::Repository&, const std::string& name, const nlohmann::json& settings,
                                      std::optional<int64_t> at_ns, const std::vector<std::string>& validation,
                                      ProgressCounters&)>
      restore;
  // The newest instant a restore can reach now (for RPO); nullopt without any backup.
  std::function<std::optional<int64_t>(const std::vector<repo::SnapshotRef>&, const std::string& name)> newest_point;
};

const std::vector<SourceKind>& source_kinds();
const SourceKind* find_source_kind(const std::string& name);

}  // namespace lifeboat::sources
